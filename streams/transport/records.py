"""The raw record: what every collector and receiver publishes on the raw topic.

A raw record is a plain ``dict`` (cheap to build, cheap to serialize with orjson):

    {
      "id":        stable event id (see ``event_id``): the same line always gets the same id,
      "message":   the log line's content, runtime framing removed (docker json / CRI),
      "time":      RFC 3339 time given by the runtime or the sender, or None,
      "observed":  RFC 3339 time the collector read it,
      "stream":    "stdout" | "stderr" | None,
      "source":    {"type": "file" | "syslog" | "gelf" | "fluentd" | "journald" | "python" | "stdin",
                    "path": ..., "offset": int, "host": ...}  (keys as they apply),
      "kubernetes": {"namespace": ..., "pod": {"name": ...}, "container": {"name": ...}}  (optional),
      "container":  {"id": ..., "runtime": ...}  (optional),
      "fields":     extra structured fields a receiver already knows (optional),
      "flags":      ["invalid_utf8", "truncated", "runtime_parse_error", ...]  (optional),
      "original":   the original text when it was changed on the way (optional)
    }

On Kafka, records travel in batches: one message value is ``{"v": 1, "records": [...]}``,
all records of one message from the same stream (the message key), so order holds per stream
and the per-message overhead is paid once per batch, not once per line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

BATCH_VERSION = 1

Record = dict[str, Any]

# Flags a record or an event can carry. Kept in one place so schemas and tests agree.
FLAG_INVALID_UTF8 = "invalid_utf8"
FLAG_TRUNCATED = "truncated"
FLAG_RUNTIME_PARSE_ERROR = "runtime_parse_error"
FLAG_EMPTY = "empty"


def event_id(*parts: object) -> str:
    """Deterministic id of a log line from its identity (e.g. file identity + byte offset).

    24 hex characters (96 bits of BLAKE2b): collisions are negligible at any realistic volume.
    """
    h = hashlib.blake2b(digest_size=12)
    for i, p in enumerate(parts):
        if i:
            h.update(b"\x1f")
        h.update(p if isinstance(p, bytes) else str(p).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def decode_text(data: bytes) -> tuple[str, bool]:
    """Decode bytes as UTF-8; invalid sequences are replaced. Returns (text, was_valid)."""
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace"), False


def add_flag(record: Record, flag: str) -> None:
    flags = record.get("flags")
    if flags is None:
        record["flags"] = [flag]
    elif flag not in flags:
        flags.append(flag)


def encode_batch(records: Iterable[Record]) -> bytes:
    return orjson.dumps({"v": BATCH_VERSION, "records": list(records)})


class BatchDecodeError(ValueError):
    """A Kafka message on the raw topic is not a record batch."""


def decode_batch(value: bytes) -> list[Record]:
    """Decode one raw-topic message. Raises BatchDecodeError with a clear reason."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise BatchDecodeError(f"not JSON: {exc}") from None
    if isinstance(obj, dict) and isinstance(obj.get("records"), list):
        records = obj["records"]
        for r in records:
            if not isinstance(r, dict) or not isinstance(r.get("message"), str) or not r.get("id"):
                raise BatchDecodeError("a record lacks 'id' or a string 'message'")
        return records
    raise BatchDecodeError("not a record batch: expected an object with a 'records' list")
