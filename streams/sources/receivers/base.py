"""What every network receiver shares: counters, record building, stable ids, publishing.

Stable ids. A network sender cannot be asked to replay, so an id only has to be (a) the same
when the same message is delivered again (a fluentd chunk resent after a lost ack, a syslog
TCP client resending after reconnect, a publisher retry) and (b) different for distinct
messages. Receivers therefore derive ids from what identifies a message: the receiver type,
the sender (host, not its ephemeral port), the sender's own timestamp when it gives one, and a
BLAKE2b hash of the message bytes, plus an occurrence number: the n-th identical
(sender, timestamp, content) seen recently by this receiver. Identical lines logged in the
same clock tick stay distinct events; a resend after a receiver restart gets n = 0 again and
so the same id. Where the protocol carries a real identity it is used instead (fluentd chunk
id + entry index, the journald cursor).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter, OrderedDict
from typing import Any, Self

from streams.sources.base import Publisher
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

DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024
DEFAULT_MAX_CONNECTION_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 256
READ_SIZE = 64 * 1024


class Occurrences:
    """Counts recently seen identities (bounded LRU), giving each repeat its ordinal."""

    def __init__(self, capacity: int = 65536) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[str, int] = OrderedDict()

    def next(self, identity: str) -> int:
        n = self._seen.pop(identity, -1) + 1
        self._seen[identity] = n
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return n


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


class Receiver:
    """Base of the listeners. Subclasses implement ``start``; counters live on the object:
    ``received`` (messages turned into records), ``published`` (records accepted by the
    publisher) and ``errors`` (by reason). A receiver never lets an exception out of its
    connection handlers: each is counted under a reason and logged."""

    source_type = "receiver"

    def __init__(
        self,
        publisher: Publisher,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        name: str | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_connection_bytes: int = DEFAULT_MAX_CONNECTION_BYTES,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.publisher = publisher
        self.host = host
        self.port = port
        self.name = name or self.source_type
        self.max_message_bytes = max_message_bytes
        self.max_connection_bytes = max(max_connection_bytes, max_message_bytes)
        self.max_connections = max_connections
        self.received = 0
        self.published = 0
        self.errors: Counter[str] = Counter()
        self.connections = 0
        self._occurrences = Occurrences()
        self._servers: list[asyncio.AbstractServer] = []
        self._transports: set[asyncio.BaseTransport] = set()  # UDP endpoints, TCP connections
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for transport in list(self._transports):
            transport.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        self._transports.clear()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _start_tcp(self, handler: Any) -> int:
        """Start a TCP server running ``handler(reader, writer)`` per connection, within
        ``max_connections``; returns the bound port."""

        async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self.connections >= self.max_connections:
                self.count("too_many_connections")
                writer.close()
                return
            self.connections += 1
            self._transports.add(writer.transport)
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.count("connection_reset")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: connection handler failed", self.name)
                self.count("internal_error")
            finally:
                self.connections -= 1
                self._transports.discard(writer.transport)
                writer.close()

        server = await asyncio.start_server(guarded, self.host, self.port, limit=READ_SIZE)
        self._servers.append(server)
        return server.sockets[0].getsockname()[1]

    # -- records ----------------------------------------------------------------------------

    def count(self, reason: str, n: int = 1) -> None:
        self.errors[reason] += n

    def text(self, data: bytes, record: Record) -> str:
        """Decode ``data`` (cut to ``max_message_bytes``), flagging the record as needed."""
        if len(data) > self.max_message_bytes:
            self.count("message_truncated")
            add_flag(record, FLAG_TRUNCATED)
            data = data[: self.max_message_bytes]
        text, ok = decode_text(data)
        if not ok:
            add_flag(record, FLAG_INVALID_UTF8)
        return text

    def stable_id(self, sender: str, timestamp: object, content: bytes) -> str:
        """Id from sender, the sender's timestamp, a content hash and the occurrence number."""
        identity = "\x1f".join(
            (self.source_type, self.name, sender, str(timestamp), content_hash(content))
        )
        return event_id(identity, self._occurrences.next(identity))

    def new_record(self, source: dict[str, Any], stream: str | None = None) -> Record:
        return {
            "id": "",
            "message": "",
            "time": None,
            "observed": now_rfc3339(),
            "stream": stream,
            "source": {"type": self.source_type, **source},
        }

    def error_record(self, reason: str, data: bytes, sender: str) -> Record:
        """A record carrying input that could not be parsed, flagged with ``reason``."""
        self.count(reason)
        record = self.new_record({"host": sender})
        record["message"] = self.text(data, record)
        record["id"] = self.stable_id(sender, None, data)
        add_flag(record, reason)
        return record

    async def publish(self, key: bytes, records: list[Record]) -> bool:
        """Publish; on failure count ``publish_failed`` and return False (never raises)."""
        if not records:
            return True
        self.received += len(records)
        try:
            await self.publisher.publish(key, records)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: publish failed", self.name)
            self.count("publish_failed", len(records))
            return False
        self.published += len(records)
        return True

    async def publish_grouped(self, items: list[tuple[bytes, Record]]) -> bool:
        """Publish records keeping their order, one call per run of equal keys."""
        ok = True
        i = 0
        while i < len(items):
            key = items[i][0]
            j = i
            while j < len(items) and items[j][0] == key:
                j += 1
            ok = await self.publish(key, [r for _, r in items[i:j]]) and ok
            i = j
        return ok


class DatagramQueue(asyncio.DatagramProtocol):
    """UDP endpoint feeding a bounded queue (a full queue drops and counts ``queue_full``)."""

    def __init__(self, receiver: Receiver, maxsize: int = 10000) -> None:
        self.receiver = receiver
        self.queue: asyncio.Queue[tuple[bytes, str]] = asyncio.Queue(maxsize)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            self.queue.put_nowait((data, str(addr[0])))
        except asyncio.QueueFull:
            self.receiver.count("queue_full")

    def error_received(self, exc: Exception) -> None:
        self.receiver.count("socket_error")


async def start_udp(receiver: Receiver, handle: Any) -> int:
    """Bind a UDP endpoint for ``receiver``; a task drains it in batches through
    ``handle(list[(data, sender)]) -> list[(key, record)]`` and publishes. Returns the port."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: DatagramQueue(receiver), local_addr=(receiver.host, receiver.port)
    )
    receiver._transports.add(transport)

    async def drain() -> None:
        while True:
            batch = [await proto.queue.get()]
            while not proto.queue.empty() and len(batch) < 1000:
                batch.append(proto.queue.get_nowait())
            try:
                items = handle(batch)
            except Exception:
                log.exception("%s: datagram handler failed", receiver.name)
                receiver.count("internal_error", len(batch))
                continue
            await receiver.publish_grouped(items)

    receiver._spawn(drain())
    return transport.get_extra_info("sockname")[1]
