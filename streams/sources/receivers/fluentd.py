"""Fluentd forward protocol receiver (Docker's ``fluentd`` log driver, fluent-bit/fluentd
``forward`` outputs), over TCP: a stream of msgpack arrays in the four modes of the Forward
Protocol Specification v1:

- Message: ``[tag, time, record, option?]``
- Forward: ``[tag, [[time, record], ...], option?]``
- PackedForward: ``[tag, bin(msgpack stream of [time, record]), option?]``
- CompressedPackedForward: the same with ``option.compressed == "gzip"``

``time`` is an integer or the EventTime extension (type 0: uint32 seconds, uint32 nanos).
When ``option.chunk`` is set, ``{"ack": chunk}`` is written back once the records of the
frame were published, so the sender resends what we did not take (at-least-once).

The message of a record is its ``log`` field (Docker) or ``message``/``msg``; the other
fields go to ``record["fields"]``. Docker's ``source`` gives the stream and
``container_id`` the container. A frame bigger than ``max_connection_bytes`` or malformed
msgpack cannot be resynchronised: it is counted and the connection closed (the sender
reconnects and resends unacked chunks). A well-formed frame of the wrong shape, or an entry
that is not ``[time, map]``, is forwarded as a record flagged ``fluentd_invalid``.

Ids: with a chunk id, ``(tag, chunk, entry index)`` - a resent chunk keeps its ids exactly;
without, the sender host + event time + a hash of the entry + occurrence (see ``base``).
Shared-key authentication (HELO/PING/PONG) is not implemented.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from datetime import UTC, datetime
from typing import Any

import msgpack
import orjson

from streams.records import (
    FLAG_INVALID_UTF8,
    FLAG_TRUNCATED,
    Record,
    add_flag,
    decode_text,
    event_id,
)
from streams.sources.receivers.base import Receiver

FLAG_FLUENTD_INVALID = "fluentd_invalid"
MESSAGE_KEYS = ("log", "message", "msg")
# Invalid entries of one frame forwarded one record each; the rest go as one record (a frame of
# a million junk entries must not become a million records).
MAX_INVALID_RECORDS = 100


class EventTime:
    """Fluentd's EventTime (msgpack ext type 0)."""

    __slots__ = ("nanoseconds", "seconds")

    def __init__(self, seconds: int, nanoseconds: int) -> None:
        self.seconds = seconds
        self.nanoseconds = nanoseconds

    def rfc3339(self) -> str | None:
        try:
            base = datetime.fromtimestamp(self.seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        except (OverflowError, OSError, ValueError):
            return None
        return f"{base}.{self.nanoseconds:09d}Z"

    def __str__(self) -> str:
        return f"{self.seconds}.{self.nanoseconds:09d}"


def _ext_hook(code: int, data: bytes) -> Any:
    if code == 0 and len(data) == 8:
        return EventTime(*struct.unpack(">II", data))
    return msgpack.ExtType(code, data)


def pack_event_time(seconds: int, nanoseconds: int) -> msgpack.ExtType:
    """EventTime as a msgpack extension (for clients and tests)."""
    return msgpack.ExtType(0, struct.pack(">II", seconds, nanoseconds))


def _unpacker(max_bytes: int) -> msgpack.Unpacker:
    return msgpack.Unpacker(
        raw=True,
        ext_hook=_ext_hook,
        max_buffer_size=max_bytes,
        strict_map_key=False,
        use_list=True,
    )


def _time(value: Any) -> tuple[str | None, object]:
    """(RFC 3339 time, identity part) of a forward ``time`` value."""
    if isinstance(value, EventTime):
        return value.rfc3339(), value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            ts = datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None, value
        return ts.isoformat(timespec="microseconds").replace("+00:00", "Z"), value
    return None, value


def _plain(value: Any, bad: list[bool]) -> Any:
    """msgpack value (raw bytes) -> JSON-ready value; invalid UTF-8 noted in ``bad``."""
    if isinstance(value, bytes):
        text, ok = decode_text(value)
        if not ok:
            bad[0] = True
        return text
    if isinstance(value, dict):
        return {str(_plain(k, bad)): _plain(v, bad) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, bad) for v in value]
    if isinstance(value, (EventTime, msgpack.ExtType)):
        return str(value)
    return value


def _unpack_all(data: bytes, max_bytes: int) -> list[Any]:
    """The entries of a PackedForward stream. Raises ValueError at the first object that is
    not an entry (``[time, record, ...]``): bytes that are not entries (garbage, another mode)
    would otherwise unpack into one object per byte, each forwarded as an invalid entry."""
    unpacker = _unpacker(max_bytes)
    unpacker.feed(data)
    out = []
    for obj in unpacker:
        if not isinstance(obj, list) or len(obj) < 2:
            raise ValueError("packed stream holds a non-entry")
        out.append(obj)
    return out


def gunzip(data: bytes, max_bytes: int) -> bytes:
    """Decompress (possibly concatenated) gzip members, at most ``max_bytes``."""
    out = bytearray()
    while data:
        d = zlib.decompressobj(31)
        out += d.decompress(data, max_bytes + 1 - len(out))
        if len(out) > max_bytes:
            raise ValueError("decompressed entries over the limit")
        if not d.eof:
            raise ValueError("truncated gzip data")
        data = d.unused_data
    return bytes(out)


class FluentdReceiver(Receiver):
    """Forward protocol over TCP (``port``: 0 = any free; set after ``start``)."""

    source_type = "fluentd"

    async def start(self) -> None:
        self.port = await self._start_tcp(self._connection)

    def entries(self, frame: Any) -> tuple[str, list[Any], dict[str, Any]] | None:
        """``(tag, [[time, record], ...], option)`` of a frame, or None if it has no mode."""
        if not isinstance(frame, list) or len(frame) < 2 or not isinstance(frame[0], bytes):
            return None
        tag = decode_text(frame[0])[0]
        second = frame[1]
        option: Any = None
        if isinstance(second, list):  # Forward
            entries, option = second, frame[2] if len(frame) > 2 else None
        elif isinstance(second, bytes):  # (Compressed)PackedForward
            option = frame[2] if len(frame) > 2 else None
            compressed = isinstance(option, dict) and option.get(b"compressed") == b"gzip"
            try:
                data = gunzip(second, self.max_connection_bytes) if compressed else second
                entries = _unpack_all(data, self.max_connection_bytes)
            except (ValueError, TypeError, zlib.error, msgpack.UnpackException):
                self.count("packed_entries_malformed")
                entries = [None]  # forwarded as one invalid entry
        elif len(frame) >= 3:  # Message
            entries, option = [[second, frame[2]]], frame[3] if len(frame) > 3 else None
        else:
            return None
        return tag, entries, option if isinstance(option, dict) else {}

    def records(
        self, frame: Any, sender: str
    ) -> tuple[list[tuple[bytes, Record]], bytes | str | None]:
        """One decoded frame -> (``(key, record)`` items, chunk id to ack or None)."""
        parsed = self.entries(frame)
        if parsed is None:
            item = self._invalid(frame, sender, "fluentd", "frame_invalid")
            return [item], None
        tag, entries, option = parsed
        chunk = option.get(b"chunk")
        chunk = chunk if isinstance(chunk, (bytes, str)) else None
        out = []
        invalid = 0
        rest: list[Any] = []  # invalid entries past MAX_INVALID_RECORDS: forwarded as one record
        for index, entry in enumerate(entries):
            if not isinstance(entry, list) or len(entry) < 2 or not isinstance(entry[1], dict):
                invalid += 1
                if invalid < MAX_INVALID_RECORDS:
                    out.append(self._invalid(entry, sender, tag, "entry_invalid"))
                else:
                    self.count("entry_invalid")
                    rest.append(entry)
                continue
            out.append(self._record(tag, entry[0], entry[1], sender, chunk, index))
        if rest:
            out.append(self._invalid(rest, sender, tag, "entry_invalid"))
            self.errors["entry_invalid"] -= 1  # each was counted above
        return out, chunk

    def _invalid(self, obj: Any, sender: str, tag: str, reason: str) -> tuple[bytes, Record]:
        bad = [False]
        data = orjson.dumps(_plain(obj, bad), default=str)
        record = self.error_record(reason, data, sender)
        add_flag(record, FLAG_FLUENTD_INVALID)
        record["source"]["tag"] = tag
        return f"fluentd/{tag}".encode(), record

    def _record(
        self, tag: str, when: Any, body: dict[Any, Any], sender: str, chunk: Any, index: int
    ) -> tuple[bytes, Record]:
        bad = [False]
        fields = _plain(body, bad)
        message: Any = None
        for k in MESSAGE_KEYS:
            if k in fields:
                message = fields.pop(k)
                break
        if message is None:
            message = orjson.dumps(fields, default=str).decode()
        elif not isinstance(message, str):
            message = orjson.dumps(message, default=str).decode()
        stream = fields.get("source") if fields.get("source") in ("stdout", "stderr") else None
        record = self.new_record({"host": sender, "tag": tag}, stream)
        if bad[0]:
            add_flag(record, FLAG_INVALID_UTF8)
        data = message.encode("utf-8", "surrogatepass")
        if len(data) > self.max_message_bytes:
            self.count("message_truncated")
            add_flag(record, FLAG_TRUNCATED)
            message = decode_text(data[: self.max_message_bytes])[0]
        record["message"] = message
        record["time"], ident = _time(when)
        if chunk is not None:
            record["id"] = event_id("fluentd", self.name, tag, chunk, index)
        else:
            record["id"] = self.stable_id(
                f"{sender}/{tag}", ident, msgpack.packb(body, default=str)
            )
        if fields:
            record["fields"] = fields
        cid = fields.get("container_id")
        if isinstance(cid, str) and cid:
            record["container"] = {"id": cid, "runtime": "docker"}
        return f"fluentd/{tag}".encode(), record

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sender = str(writer.get_extra_info("peername")[0])
        unpacker = _unpacker(self.max_connection_bytes)
        fed = 0
        while True:
            data = await reader.read(65536)
            if not data:
                if unpacker.tell() != fed:
                    self.count("frame_incomplete")
                return
            frames: list[Any] = []
            error = None
            try:
                unpacker.feed(data)
                fed += len(data)
                for frame in unpacker:
                    frames.append(frame)  # noqa: PERF402 - keeps frames decoded before an error
            except msgpack.BufferFull:
                error = "frame_too_large"
            except (msgpack.UnpackException, ValueError, TypeError):  # TypeError: unhashable key
                error = "frame_malformed"
            for frame in frames:
                try:
                    items, chunk = self.records(frame, sender)
                except (TypeError, ValueError, OverflowError):  # data the mapping cannot take
                    self.count("frame_invalid")
                    continue
                if not await self.publish_grouped(items):
                    return  # no ack: the sender resends the chunk
                if chunk is not None:
                    ack = chunk if isinstance(chunk, str) else decode_text(chunk)[0]
                    writer.write(msgpack.packb({"ack": ack}))
                    await writer.drain()
            if error is not None:
                self.count(error)  # the stream cannot be resynchronised: close it
                return
