"""The raw record: what every collector and receiver publishes on the raw topic.

A raw record is a plain ``dict`` (cheap to build, cheap to serialize with orjson):

    {
      "id":        stable event id (see ``event_id``): the same line always gets the same id,
      "message":   the log line's content, runtime framing removed (docker json / CRI),
      "time":      RFC 3339 time given by the runtime or the sender, or None,
      "observed":  RFC 3339 time the collector read it,
      "stream":    "stdout" | "stderr" | None,
      "source":    {"type": "file" | "syslog" | "gelf" | "fluentd" | "journald" | "splunk" |
                            "cloudwatch" | "python" | "stdin",
                    "path": ..., "offset": int, "host": ...}  (keys as they apply),
      "kubernetes": {"namespace": ..., "pod": {"name": ...}, "container": {"name": ...}}  (optional),
      "container":  {"id": ..., "runtime": ...}  (optional),
      "aws", "cloud": ECS fields a receiver knows (optional; CloudWatch: aws.cloudwatch.*),
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
from typing import Any, NamedTuple

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


class EventIds:
    """``event_id(*prefix, last)`` for many ``last`` values with the same ``prefix`` (a file's
    host and identity, then each line's offset): the prefix is hashed once and the hash state
    copied per id. Same ids as :func:`event_id`, at about half the cost per line."""

    __slots__ = ("_state",)

    def __init__(self, *prefix: object) -> None:
        h = hashlib.blake2b(digest_size=12)
        for p in prefix:
            h.update(p if isinstance(p, bytes) else str(p).encode("utf-8", "surrogatepass"))
            h.update(b"\x1f")
        self._state = h

    def __call__(self, last: object) -> str:
        h = self._state.copy()
        h.update(last if isinstance(last, bytes) else str(last).encode("utf-8", "surrogatepass"))
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


_BATCH_HEAD = b'{"v":%d,"records":[' % BATCH_VERSION
_BATCH_TAIL = b"]}"
# Bytes a batch adds around its records (head, tail): a message of one record is this much
# larger than the record.
BATCH_OVERHEAD = len(_BATCH_HEAD) + len(_BATCH_TAIL)


class RecordRejected(NamedTuple):
    """A record that cannot go on the raw topic: its index in the batch, a reason code for the
    dead letter (``record_unencodable``, ``record_too_large``) and a human detail."""

    index: int
    reason: str
    detail: str


def encode_records(
    records: list[Record], max_record_bytes: int | None = None
) -> tuple[list[tuple[int, bytes]], list[RecordRejected]]:
    """Each record encoded alone: ``([(index, bytes)], [rejected])``. One record that cannot be
    serialized (nesting deeper than orjson's 255 levels, a value of no JSON type) or that is
    larger than ``max_record_bytes`` is rejected alone; its neighbours are kept."""
    out: list[tuple[int, bytes]] = []
    rejected: list[RecordRejected] = []
    dumps = orjson.dumps
    for i, record in enumerate(records):
        try:
            data = dumps(record)
        except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
            rejected.append(RecordRejected(i, "record_unencodable", str(exc)))
            continue
        if max_record_bytes is not None and len(data) > max_record_bytes:
            rejected.append(RecordRejected(
                i, "record_too_large",
                f"{len(data)} bytes encoded, over the {max_record_bytes} a record may take"))
            continue
        out.append((i, data))
    return out, rejected


def encode_batches(
    records: list[Record], max_bytes: int, max_record_bytes: int, offset: int = 0
) -> tuple[list[bytes], list[RecordRejected]]:
    """Records -> raw-topic messages of at most ``max_bytes`` (a record larger than that
    goes alone) and the records rejected (``encode_records``' reasons; indexes from
    ``offset``). Fast path: the whole batch in one ``orjson`` call, halved while too large;
    records are encoded one by one only in a batch holding one that fails."""
    try:
        whole = encode_batch(records)
    except TypeError:
        encoded, rejected = encode_records(records, max_record_bytes)
        rejected = [r._replace(index=r.index + offset) for r in rejected]
        return pack_batches([b for _, b in encoded], max_bytes), rejected
    if len(whole) <= max_bytes or len(records) == 1:
        if len(records) == 1 and len(whole) - BATCH_OVERHEAD > max_record_bytes:
            return [], [RecordRejected(offset, "record_too_large",
                                       f"{len(whole) - BATCH_OVERHEAD} bytes encoded, over "
                                       f"the {max_record_bytes} a record may take")]
        return [whole], []
    mid = len(records) // 2
    first, rejected = encode_batches(records[:mid], max_bytes, max_record_bytes, offset)
    second, more = encode_batches(records[mid:], max_bytes, max_record_bytes, offset + mid)
    return first + second, rejected + more


def pack_batches(parts: list[bytes], max_bytes: int) -> list[bytes]:
    """Encoded records -> raw-topic messages of at most ``max_bytes`` each, in order (a record
    larger than that goes alone). Byte for byte what ``encode_batch`` gives for each group."""
    out: list[bytes] = []
    group: list[bytes] = []
    size = BATCH_OVERHEAD
    for part in parts:
        if group and size + len(part) + 1 > max_bytes:
            out.append(_BATCH_HEAD + b",".join(group) + _BATCH_TAIL)
            group, size = [], BATCH_OVERHEAD
        group.append(part)
        size += len(part) + 1
    if group:
        out.append(_BATCH_HEAD + b",".join(group) + _BATCH_TAIL)
    return out


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
