"""GELF receiver (Docker's ``gelf`` log driver, Graylog clients): UDP datagrams, plain,
gzip or zlib compressed, possibly chunked (magic ``0x1e 0x0f``, 8-byte message id, sequence
number, sequence count, at most 128 chunks); TCP with NUL-delimited uncompressed frames.

Decompression is bounded by ``max_message_bytes`` (no zip bombs). Incomplete chunked messages
expire after ``chunk_timeout`` seconds (GELF says 5) and at most ``max_pending_messages`` /
``max_pending_bytes`` are held; what is dropped is counted. Additional fields (``_foo``) go to
``record["fields"]["foo"]``; other GELF keys (level, full_message, facility, ...) to
``record["fields"]["gelf"]``; Docker's ``_container_id``, ``_container_name`` and
``_image_name`` also fill ECS ``container.*`` and its ``level`` (3 for stderr, 6 for stdout)
the stream.

Ids: sender host + GELF ``timestamp`` + hash of the decompressed payload + occurrence.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.sources.receivers.base import (
    READ_SIZE,
    Connection,
    Receiver,
    docker_container,
    start_udp,
    stream_of_severity,
)
from streams.sources.receivers.framing import Framer
from streams.sources.receivers.partials import DOCKER_PIECE_BYTES
from streams.transport.records import FLAG_TRUNCATED, Record, add_flag

FLAG_GELF_PARSE_ERROR = "gelf_parse_error"
CHUNK_MAGIC = b"\x1e\x0f"
MAX_CHUNKS = 128


class PayloadError(ValueError):
    """A GELF payload that cannot be decoded; ``reason`` is the counter name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decompress(data: bytes, max_bytes: int) -> bytes:
    """Plain, gzip or zlib payload -> JSON bytes, at most ``max_bytes``."""
    if data[:2] == b"\x1f\x8b":
        wbits = 31
    elif len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0:
        wbits = 15
    else:
        if len(data) > max_bytes:
            raise PayloadError("message_too_large")
        return data
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(data, max_bytes + 1)
    except zlib.error:
        raise PayloadError("decompress_error") from None
    if len(out) > max_bytes:
        raise PayloadError("message_too_large")
    if not d.eof:
        raise PayloadError("decompress_error")
    return out


@dataclass(slots=True)
class _Partial:
    count: int
    first: float
    chunks: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


class ChunkAssembler:
    """Reassembles chunked GELF datagrams; driven by the caller's clock."""

    def __init__(
        self,
        timeout: float = 5.0,
        max_pending_messages: int = 1000,
        max_pending_bytes: int = 32 * 1024 * 1024,
        max_message_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.timeout = timeout
        self.max_pending_messages = max_pending_messages
        self.max_pending_bytes = max_pending_bytes
        self.max_message_bytes = max_message_bytes
        self.pending_bytes = 0
        self._pending: OrderedDict[bytes, _Partial] = OrderedDict()

    def add(self, datagram: bytes, now: float, count: Callable[[str], None]) -> bytes | None:
        """Add one chunk datagram; returns the whole payload once its last chunk arrived.
        Malformed chunks and evicted messages are reported through ``count(reason)``."""
        if len(datagram) < 12:
            count("chunk_malformed")
            return None
        msg_id, seq, total = datagram[2:10], datagram[10], datagram[11]
        if total == 0 or total > MAX_CHUNKS or seq >= total:
            count("chunk_malformed")
            return None
        part = self._pending.get(msg_id)
        if part is None:
            while len(self._pending) >= self.max_pending_messages:
                self._drop(next(iter(self._pending)), "chunk_evicted", count)
            part = self._pending[msg_id] = _Partial(total, now)
        elif part.count != total:
            count("chunk_malformed")
            return None
        payload = datagram[12:]
        if seq in part.chunks:
            return None  # a duplicate datagram
        if part.size + len(payload) > self.max_message_bytes:
            self._drop(msg_id, "message_too_large", count)
            return None
        part.chunks[seq] = payload
        part.size += len(payload)
        self.pending_bytes += len(payload)
        while self.pending_bytes > self.max_pending_bytes and self._pending:
            self._drop(next(iter(self._pending)), "chunk_evicted", count)
        if msg_id not in self._pending or len(part.chunks) < total:
            return None
        del self._pending[msg_id]
        self.pending_bytes -= part.size
        return b"".join(part.chunks[i] for i in range(total))

    def _drop(self, msg_id: bytes, reason: str, count: Callable[[str], None]) -> None:
        part = self._pending.pop(msg_id)
        self.pending_bytes -= part.size
        count(reason)

    def expire(self, now: float, count: Callable[[str], None]) -> None:
        for msg_id in [m for m, p in self._pending.items() if now - p.first >= self.timeout]:
            self._drop(msg_id, "chunk_timeout", count)

    def __len__(self) -> int:
        return len(self._pending)


def _rfc3339(ts: Any) -> str | None:
    if isinstance(ts, bool) or not isinstance(ts, (int, float)):
        return None
    try:
        return (
            datetime.fromtimestamp(ts, UTC)
            .isoformat(timespec="microseconds")
            .replace("+00:00", "Z")
        )
    except (OverflowError, OSError, ValueError):
        return None


class GelfReceiver(Receiver):
    """GELF over UDP and/or TCP (ports: 0 = any free, None = disabled; set after start)."""

    source_type = "gelf"

    def __init__(
        self,
        publisher: Any,
        *,
        udp_port: int | None = 0,
        tcp_port: int | None = 0,
        chunk_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        **kw: Any,
    ) -> None:
        super().__init__(publisher, **kw)
        self.udp_port = udp_port
        self.tcp_port = tcp_port
        self.clock = clock
        self.chunks = ChunkAssembler(chunk_timeout, max_message_bytes=self.max_connection_bytes)
        self.partials.expire_complete = True  # a 16 KiB line's empty last piece is not sent

    async def start(self) -> None:
        if self.udp_port is not None:
            self.port = self.udp_port
            self.udp_port = await start_udp(self, self._datagrams)
            self._spawn(self._expire_chunks())
        if self.tcp_port is not None:
            self.port = self.tcp_port
            self.tcp_port = await self._start_tcp(self._connection)

    async def _expire_chunks(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.chunks.expire(self.clock(), self.count)

    def datagram(self, data: bytes, sender: str) -> tuple[bytes, Record] | None:
        """One UDP datagram -> ``(key, record)``, or None while chunks are missing."""
        if data[:2] == CHUNK_MAGIC:
            whole = self.chunks.add(data, self.clock(), self.count)
            if whole is None:
                return None
            data = whole
        try:
            payload = decompress(data, self.max_message_bytes)
        except PayloadError as exc:
            if exc.reason == "message_too_large":
                record = self.error_record(exc.reason, data[: self.max_message_bytes], sender)
                add_flag(record, FLAG_TRUNCATED)
                return f"gelf/{sender}".encode(), record
            return f"gelf/{sender}".encode(), self.error_record(exc.reason, data, sender)
        return self.record(payload, sender, "udp")

    def record(self, payload: bytes, sender: str, transport: str) -> tuple[bytes, Record]:
        """One GELF JSON payload -> ``(key, record)``. Never raises."""
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict) or not isinstance(obj.get("short_message"), str):
            record = self.error_record(FLAG_GELF_PARSE_ERROR, payload, sender)
            record["source"]["transport"] = transport
            return f"gelf/{sender}".encode(), record
        host = obj.get("host") if isinstance(obj.get("host"), str) else sender
        record = self.new_record({"host": host, "peer": sender, "transport": transport})
        record["message"] = self.text(obj["short_message"].encode("utf-8", "surrogatepass"), record)
        record["time"] = _rfc3339(obj.get("timestamp"))
        record["id"] = self.stable_id(host, obj.get("timestamp"), payload)
        fields: dict[str, Any] = {}
        gelf: dict[str, Any] = {}
        for k, v in obj.items():
            if k.startswith("_") and k != "_id":
                fields[k[1:]] = v
            elif k not in ("short_message", "host", "timestamp"):
                gelf[k] = v
        if gelf:
            fields["gelf"] = gelf
        record["fields"] = fields
        container = docker_container(fields.get("container_id"), fields.get("container_name"),
                                     fields.get("image_name"))
        if container:
            record["container"] = container
            if "id" in container:  # Docker's driver: level 3 for stderr, 6 for stdout
                record["stream"] = stream_of_severity(gelf.get("level"))
        cid = container.get("id")
        key = cid if cid else host
        return f"gelf/{key}".encode(), record

    def joined(self, item: tuple[bytes, Record]) -> list[tuple[bytes, Record]]:
        """Docker's GELF driver marks no partial: a container's message of exactly 16 KiB is
        taken as a piece of a longer line, continued by the next messages of that container
        with the same timestamp (dockerd stamps every piece with the first one's time); a
        message with another timestamp means the held line was whole (see ``partials``)."""
        key, record = item
        if not (record.get("container") or {}).get("id"):
            return [item]
        ts = record.get("time") or ""
        out = []
        stream = record.get("stream")
        held = self.partials.held(key, stream)
        if held is not None and held.get("time") != record.get("time"):
            out += self.partials.close(key, stream, complete=True)
            held = None
        if len(record["message"].encode("utf-8", "surrogatepass")) == DOCKER_PIECE_BYTES:
            return out + self.partials.add(key, ts, 0, False, record)
        if held is not None:
            return out + self.partials.add(key, ts, 0, True, record)
        return [*out, item]

    def _datagrams(self, batch: list[tuple[bytes, str]]) -> list[tuple[bytes, Record]]:
        out = []
        for data, sender in batch:
            item = self.datagram(data, sender)
            if item is not None:
                out.extend(self.joined(item))
        return out

    async def _connection(self, conn: Connection) -> None:
        sender = conn.peer
        framer = Framer(b"\x00", self.max_message_bytes)
        while True:
            data = await conn.reader.read(READ_SIZE)
            frames = framer.feed(data) if data else framer.finish()
            items = []
            for frame, cut in frames:
                if cut:  # a cut JSON document cannot parse: forward its start, flagged
                    record = self.error_record("message_too_large", frame, sender)
                    add_flag(record, FLAG_TRUNCATED)
                    items.append((f"gelf/{sender}".encode(), record))
                else:
                    items.extend(self.joined(self.record(frame.rstrip(b"\r\n"), sender, "tcp")))
            if items:
                await self.submit(items, len(data), conn)
            if not data or conn.failed:
                return
            if not self.progress(conn, len(frames), framer.buffered):
                return
