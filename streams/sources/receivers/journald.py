"""journald source (Docker's ``journald`` log driver, systemd units): follows
``journalctl -o json --all`` output in a subprocess and turns each entry into a raw record
(``--all``: without it journalctl prints fields over 4,096 bytes as null, so a Docker line of
16 KiB would arrive empty and flagged ``truncated``). ``namespace`` follows a journal
namespace (``journalctl --namespace``, systemd 245+) instead of the system journal.

``journal_record`` is the pure conversion. ``MESSAGE`` may be a string, an array of byte
values (journalctl's form for binary or invalid UTF-8 data, flagged ``invalid_utf8`` when it
is not UTF-8) or null (journalctl's form for a field too large to show: flagged
``truncated``). The id is derived from ``__CURSOR``, which journald guarantees unique and
stable for an entry: rereading the journal yields the same ids. Docker's journald driver
fills ECS ``container.*`` (``CONTAINER_ID_FULL``, ``CONTAINER_NAME``, ``IMAGE_NAME``), the
stream from ``PRIORITY`` (3 stderr, 6 stdout), and its ``CONTAINER_PARTIAL_*`` fields join a
line over 16 KiB again (``partials``). ``JournaldFollower`` keeps
the last published cursor (``cursor``): start it with ``after_cursor`` to resume; when
journalctl exits it is restarted from that cursor, so the follower never dies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.framing.runtime import valid_time
from streams.sources.receivers.base import Receiver, docker_container, stream_of_severity
from streams.sources.receivers.framing import Framer
from streams.transport.records import (
    FLAG_INVALID_UTF8,
    FLAG_TRUNCATED,
    Record,
    add_flag,
    decode_text,
    event_id,
    now_rfc3339,
)

log = logging.getLogger(__name__)

FLAG_JOURNALD_PARSE_ERROR = "journald_parse_error"
# Fields kept out of record["fields"]: they fill the record itself or are bookkeeping.
_CONSUMED = {"MESSAGE", "__CURSOR", "__REALTIME_TIMESTAMP", "__MONOTONIC_TIMESTAMP"}


def _value(v: Any) -> tuple[Any, bool]:
    """A journal field value as text when it is bytes; (value, was_valid_utf8)."""
    if isinstance(v, list) and v and all(isinstance(b, int) and 0 <= b < 256 for b in v):
        return decode_text(bytes(v))
    return v, True


def entry_time(entry: dict[str, Any]) -> str | None:
    """When the entry was written, best source first: ``SYSLOG_TIMESTAMP`` when it is RFC 3339
    (Docker's journald driver puts the copier's time there, to the nanosecond; syslog()
    callers put a BSD header time, which is not), then ``_SOURCE_REALTIME_TIMESTAMP`` (the
    earliest trusted time journald knows), then ``__REALTIME_TIMESTAMP`` (when journald
    received it)."""
    declared = entry.get("SYSLOG_TIMESTAMP")
    if isinstance(declared, str):
        checked = valid_time(declared.strip())
        if checked is not None:
            return checked
    for name in ("_SOURCE_REALTIME_TIMESTAMP", "__REALTIME_TIMESTAMP"):
        us = entry.get(name)
        if isinstance(us, str) and us.isdigit():
            ts = datetime.fromtimestamp(int(us) // 1_000_000, UTC)
            return ts.strftime("%Y-%m-%dT%H:%M:%S") + f".{int(us) % 1_000_000:06d}Z"
    return None


def journal_record(entry: dict[str, Any]) -> tuple[bytes, Record] | None:
    """One ``journalctl -o json`` entry -> ``(key, record)``; None without ``__CURSOR``."""
    cursor = entry.get("__CURSOR")
    if not isinstance(cursor, str) or not cursor:
        return None
    record: Record = {
        "id": event_id("journald", cursor),
        "message": "",
        "time": None,
        "observed": now_rfc3339(),
        "stream": None,
        "source": {"type": "journald", "cursor": cursor},
    }
    message, ok = _value(entry.get("MESSAGE"))
    if message is None:
        add_flag(record, FLAG_TRUNCATED)
        message = ""
    elif not isinstance(message, str):
        message = orjson.dumps(message).decode()
    if not ok:
        add_flag(record, FLAG_INVALID_UTF8)
    record["message"] = message
    record["time"] = entry_time(entry)
    fields: dict[str, Any] = {}
    for k, v in entry.items():
        if k not in _CONSUMED:
            fields[k], valid = _value(v)
            if not valid:
                add_flag(record, FLAG_INVALID_UTF8)
    record["fields"] = fields
    host = fields.get("_HOSTNAME")
    if isinstance(host, str):
        record["source"]["host"] = host
    container = docker_container(fields.get("CONTAINER_ID_FULL") or fields.get("CONTAINER_ID"),
                                 fields.get("CONTAINER_NAME"), fields.get("IMAGE_NAME"))
    if "id" in container:
        record["container"] = container
        priority = fields.get("PRIORITY")
        record["stream"] = stream_of_severity(int(priority) if str(priority).isdigit() else None)
        key = f"journald/{container['id']}"
    else:
        unit = fields.get("_SYSTEMD_UNIT") or fields.get("SYSLOG_IDENTIFIER") or fields.get("_COMM")
        key = f"journald/{unit if isinstance(unit, str) else '-'}"
    return key.encode(), record


class JournaldFollower(Receiver):
    """Runs ``command`` (by default ``journalctl -o json --all -f``, with ``--namespace`` when
    ``namespace`` is given) and publishes its entries.

    Output lines over ``max_message_bytes`` are skipped (counted ``line_too_long``); lines
    that are not journal entries are forwarded flagged ``journald_parse_error``.
    """

    source_type = "journald"

    def __init__(
        self,
        publisher: Any,
        *,
        command: Sequence[str] | None = None,
        namespace: str | None = None,
        after_cursor: str | None = None,
        restart_delay: float = 1.0,
        batch_size: int = 500,
        **kw: Any,
    ) -> None:
        kw.setdefault("max_message_bytes", 4 * 1024 * 1024)
        super().__init__(publisher, **kw)
        self.command = (
            list(command) if command else ["journalctl", "-o", "json", "--all", "-f", "--no-pager"]
        )
        if namespace:
            self.command.append(f"--namespace={namespace}")
        self.cursor = after_cursor
        self.restart_delay = restart_delay
        self.batch_size = batch_size
        self.restarts = 0
        self.process: asyncio.subprocess.Process | None = None

    def _argv(self) -> list[str]:
        if self.cursor and self.command[0].endswith("journalctl"):
            return [*self.command, f"--after-cursor={self.cursor}"]
        return self.command

    async def start(self) -> None:
        self._spawn(self._run())
        self._ensure_janitor()  # publishes partial lines whose next piece is overdue

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
        await super().stop()

    async def _run(self) -> None:
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except OSError as exc:  # journalctl missing or not runnable
                log.warning("journald: cannot run %s: %s", self.command[0], exc)
                self.count("command_failed")
            except Exception:
                log.exception("journald: follower failed")
                self.count("internal_error")
            self.restarts += 1
            await asyncio.sleep(self.restart_delay)

    async def _follow(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self._argv(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        stdout = self.process.stdout
        assert stdout is not None
        framer = Framer(b"\n", self.max_message_bytes)
        try:
            while True:
                data = await stdout.read(65536)
                items = []
                for line, cut in framer.feed(data) if data else framer.finish():
                    if cut:  # a cut JSON entry cannot parse; the rest of it is discarded
                        self.count("line_too_long")
                    elif item := self.entry(line):
                        items.extend(self.joined(item))
                if not await self.publish_grouped(items):
                    return  # restart from the last published cursor
                for _, record in reversed(items):
                    if "cursor" in record["source"]:
                        self.cursor = record["source"]["cursor"]
                        break
                if not data:
                    return
        finally:
            if self.process.returncode is None:
                self.process.terminate()
            await self.process.wait()

    def joined(self, item: tuple[bytes, Record]) -> list[tuple[bytes, Record]]:
        """A piece of a line dockerd cut (``CONTAINER_PARTIAL_ID``) goes to the joiner."""
        key, record = item
        fields = record.get("fields") or {}
        pid = fields.pop("CONTAINER_PARTIAL_ID", None)
        if not isinstance(pid, str):
            return [item]
        ordinal = str(fields.pop("CONTAINER_PARTIAL_ORDINAL", "0"))
        last = fields.pop("CONTAINER_PARTIAL_LAST", "true") != "false"
        fields.pop("CONTAINER_PARTIAL_MESSAGE", None)
        return self.partials.add(key, pid, int(ordinal) if ordinal.isdigit() else 0, last,
                                 record)

    def entry(self, line: bytes) -> tuple[bytes, Record] | None:
        """One output line -> ``(key, record)``; blank lines give None. Never raises."""
        line = line.strip()
        if not line:
            return None
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            obj = None
        item = journal_record(obj) if isinstance(obj, dict) else None
        if item is None:
            return b"journald/-", self.error_record(FLAG_JOURNALD_PARSE_ERROR, line, "local")
        return item
