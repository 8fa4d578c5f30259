"""What every network receiver shares: counters, record building, stable ids, connection
management and publishing (through ``intake.Intake``).

Stable ids. A network sender cannot be asked to replay, so an id only has to be (a) the same
when the same message is delivered again (a fluentd chunk resent after a lost ack, a syslog
TCP client resending after reconnect, a publisher retry) and (b) different for distinct
messages. Receivers therefore derive ids from what identifies a message: the receiver type,
the sender (host, not its ephemeral port), the sender's own timestamp when it gives one, and a
BLAKE2b hash of the message bytes, plus an occurrence number: the n-th identical
(sender, timestamp, content) seen recently by this receiver. Identical lines logged in the
same clock tick stay distinct events; a resend after a receiver restart gets n = 0 again and
so the same id. A message without a timestamp cannot be told from a resend, so it gets an id
unique to this run of the receiver (a random run id and a sequence number): after a restart
the same text is a new event, never mistaken for an old one (Elasticsearch would drop it as a
duplicate). Where the protocol carries a real identity it is used instead (fluentd chunk id +
entry index, the journald cursor).

Connections (TCP). At most ``max_connections`` in all and ``max_connections_per_peer`` per
sender address; when either is reached, the connection that has sent no complete message for
the longest time is closed to make room (counted ``evicted_idle``) if it has been quiet for at
least ``EVICT_MIN_IDLE`` seconds, else the newcomer is refused (``too_many_connections``): a
thousand idle or slow-loris connections never lock a sender out. A connection quiet for
``idle_timeout`` seconds is closed (``idle_timeout``), one holding an incomplete message for
``frame_timeout`` seconds too (``frame_timeout``), and the bytes held for incomplete messages
over every connection are bounded by ``max_buffered_bytes`` (the connection that would go over
is closed: ``memory_budget``).

Shutdown (``stop``): listeners close, every connection stops reading and what it had read is
framed and submitted, the intake publishes everything queued, then fluentd chunks published
are acked and the connections closed; only what could not be published within ``stop``'s
timeout is lost, counted ``shutdown_unpublished`` (a fluentd sender resends unacked chunks).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import os
import secrets
import socket
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Sequence
from typing import Any, Self

from streams.sources.base import Publisher
from streams.sources.receivers.dockertag import TagTemplates
from streams.sources.receivers.intake import DEFAULT_MAX_BYTES, Budget, Intake, Items
from streams.sources.receivers.partials import Partials
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
DEFAULT_MAX_CONNECTIONS = 4096
DEFAULT_MAX_CONNECTIONS_PER_PEER = 1024
DEFAULT_IDLE_TIMEOUT = 3600.0
DEFAULT_FRAME_TIMEOUT = 60.0
DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024
DEFAULT_UDP_QUEUE_BYTES = 8 * 1024 * 1024
UDP_RECEIVE_BUFFER = 8 * 1024 * 1024
EVICT_MIN_IDLE = 1.0
STOP_TIMEOUT = 30.0
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



class Connection:
    """One TCP connection: who, since when it sent a complete message, how many bytes it holds
    for an incomplete one, and the submissions not yet published."""

    __slots__ = ("buffered", "failed", "last_frame", "peer", "pending", "reader", "task",
                 "writer")

    def __init__(self, peer: str, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, now: float) -> None:
        self.peer = peer
        self.reader = reader
        self.writer = writer
        self.last_frame = now
        self.buffered = 0
        self.failed = False  # a submission was not published: the handler closes
        self.pending: set[asyncio.Future[bool]] = set()
        self.task = asyncio.current_task()

    def track(self, fut: asyncio.Future[bool]) -> None:
        if fut.done():
            self._settled(fut)
            return
        self.pending.add(fut)
        fut.add_done_callback(self._settled)

    def _settled(self, fut: asyncio.Future[bool]) -> None:
        self.pending.discard(fut)
        if not fut.cancelled() and not fut.result():
            self.failed = True
            self.end_input()  # the handler finishes and the connection closes

    def end_input(self) -> None:
        """Stop reading: the handler sees end of input and finishes what it has."""
        transport = self.writer.transport
        if not transport.is_closing():
            transport.pause_reading()
        if not self.reader.at_eof():
            self.reader.feed_eof()

    async def settle(self, timeout: float) -> None:
        if self.pending:
            await asyncio.wait(list(self.pending), timeout=timeout)


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
        max_connections_per_peer: int = DEFAULT_MAX_CONNECTIONS_PER_PEER,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        frame_timeout: float = DEFAULT_FRAME_TIMEOUT,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
        max_queue_bytes: int = DEFAULT_MAX_BYTES,
        udp_queue_bytes: int = DEFAULT_UDP_QUEUE_BYTES,
        budget: Budget | None = None,
    ) -> None:
        self.publisher = publisher
        self.host = host
        self.port = port
        self.name = name or self.source_type
        self.max_message_bytes = max_message_bytes
        self.max_connection_bytes = max(max_connection_bytes, max_message_bytes)
        self.max_connections = max_connections
        self.max_connections_per_peer = max_connections_per_peer
        self.idle_timeout = idle_timeout
        self.frame_timeout = frame_timeout
        self.max_buffered_bytes = max(max_buffered_bytes, self.max_connection_bytes)
        self.udp_queue_bytes = udp_queue_bytes
        self.received = 0
        self.published = 0
        self.errors: Counter[str] = Counter()
        self.closing = False
        # ``budget``: shared by the receivers of one process (the collector's), else their own
        self.intake = Intake(publisher, self, max_queue_bytes, budget)
        self.partials = Partials(self.count, max_message_bytes)  # lines dockerd cut
        self.run_id = secrets.token_hex(8)  # ids of messages without a timestamp
        self._observed: tuple[int, str] = (-1, "")
        self._sequence = itertools.count()
        self._occurrences = Occurrences()
        self._servers: list[asyncio.AbstractServer] = []
        self._transports: set[Any] = set()  # UDP sockets (anything with close())
        self._udp_sockets: list[socket.socket] = []
        self._kernel_drops = 0
        self._connections: set[Connection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()  # background tasks (cancelled at stop)
        self._drains: set[asyncio.Task[Any]] = set()  # tasks that finish on their own at stop
        self._janitor_task: asyncio.Task[Any] | None = None

    @property
    def connections(self) -> int:
        return len(self._connections)

    @property
    def buffered(self) -> int:
        return sum(c.buffered for c in self._connections)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Graceful: stop taking input, publish everything taken (see the module doc)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self.closing = True
        for server in self._servers:
            server.close()
        self.kernel_drops()  # its last value, before the sockets close
        for transport in list(self._transports):
            transport.close()
        for conn in list(self._connections):
            conn.end_input()
        waiting = [t for t in [*self._drains, *(c.task for c in self._connections)] if t]
        if waiting:
            await asyncio.wait(waiting, timeout=max(0.1, deadline - loop.time()))
        await self.submit(self.partials.flush())  # pieces of lines never finished
        await self.intake.close(max(0.1, deadline - loop.time()))
        for conn in list(self._connections):
            conn.writer.transport.abort()
        for task in [*self._tasks, *self._drains, *(c.task for c in self._connections)]:
            if task is not None and not task.done():
                task.cancel()
        await asyncio.gather(*self._tasks, *self._drains, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        self._transports.clear()
        self._udp_sockets.clear()
        self._janitor_task = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: Any, *, drains: bool = False) -> asyncio.Task[Any]:
        """A background task; ``drains``: it ends by itself once ``closing`` is set and its
        input is consumed (``stop`` waits for it), else ``stop`` cancels it."""
        task = asyncio.get_running_loop().create_task(coro)
        tasks = self._drains if drains else self._tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task

    # -- connections ------------------------------------------------------------------------

    def _admit(self, peer: str, now: float) -> bool:
        """Room for a new connection from ``peer``: closes the idlest connection when a cap
        is reached (see the module doc). False: refuse the newcomer."""
        pool: list[Connection] | set[Connection] = self._connections
        if len(pool) < self.max_connections:
            same = [c for c in pool if c.peer == peer]
            if len(same) < self.max_connections_per_peer:
                return True
            pool = same
        victim = min(pool, key=lambda c: c.last_frame, default=None)
        if victim is None or now - victim.last_frame < EVICT_MIN_IDLE:
            self.count("too_many_connections")
            return False
        self.count("evicted_idle")
        self._close(victim)
        return True

    def _close(self, conn: Connection) -> None:
        self._connections.discard(conn)
        conn.writer.transport.abort()

    def _ensure_janitor(self) -> None:
        if self._janitor_task is None:
            self._janitor_task = self._spawn(self._janitor())

    async def _janitor(self) -> None:
        """Every second: publishes partial lines overdue, closes idle connections and those
        holding an incomplete message too long."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            late = self.partials.expire()
            if late:
                await self.submit(late)
            now = loop.time()
            for conn in list(self._connections):
                quiet = now - conn.last_frame
                if conn.buffered and quiet > self.frame_timeout:
                    self.count("frame_timeout")
                    self._close(conn)
                elif self.idle_timeout is not None and quiet > self.idle_timeout:
                    self.count("idle_timeout")
                    self._close(conn)

    def progress(self, conn: Connection, frames: int, buffered: int) -> bool:
        """After a read: ``frames`` complete messages were taken, ``buffered`` bytes wait for
        the rest of one. False when the connection must close (memory budget spent)."""
        if frames:
            conn.last_frame = asyncio.get_running_loop().time()
        grow = buffered - conn.buffered
        if grow > 0 and self.buffered + grow > self.max_buffered_bytes:
            self.count("memory_budget")
            return False
        conn.buffered = buffered
        return True

    async def _start_tcp(self, handler: Any) -> int:
        """Start a TCP server running ``handler(conn)`` per connection, within the caps (see
        the module doc); returns the bound port."""

        async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            loop = asyncio.get_running_loop()
            peer = str((writer.get_extra_info("peername") or ("?",))[0])
            if self.closing or not self._admit(peer, loop.time()):
                writer.transport.abort()
                return
            conn = Connection(peer, reader, writer, loop.time())
            self._connections.add(conn)
            try:
                await handler(conn)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.count("connection_reset")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: connection handler failed", self.name)
                self.count("internal_error")
            finally:
                await conn.settle(STOP_TIMEOUT)
                self._connections.discard(conn)
                writer.close()

        self._ensure_janitor()
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
        """Id from sender, the sender's timestamp, a content hash and the occurrence number;
        without a timestamp, unique to this run (see the module doc)."""
        if timestamp is None:
            return event_id(self.source_type, self.name, sender, self.run_id,
                            next(self._sequence))
        identity = "\x1f".join(
            (self.source_type, self.name, sender, str(timestamp), content_hash(content))
        )
        return event_id(identity, self._occurrences.next(identity))

    def observed(self) -> str:
        """Now, RFC 3339 (the same text for calls within a millisecond: a read's records)."""
        tick = time.monotonic_ns() // 1_000_000
        if tick != self._observed[0]:
            self._observed = (tick, now_rfc3339())
        return self._observed[1]

    def new_record(self, source: dict[str, Any], stream: str | None = None) -> Record:
        return {
            "id": "",
            "message": "",
            "time": None,
            "observed": self.observed(),
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

    # -- publishing -------------------------------------------------------------------------

    async def submit(self, items: Items, size: int = 0,
                     conn: Connection | None = None) -> asyncio.Future[bool]:
        """Hand records to the intake (waiting while it is full) and return the future of
        their publication; with ``conn`` the connection tracks it (and learns of failures).
        ``size``: the input bytes they came from (the queue's byte budget)."""
        self.received += len(items)
        fut = await self.intake.submit(items, size or _size(items))
        if conn is not None:
            conn.track(fut)
        return fut

    async def publish_grouped(self, items: Items) -> bool:
        """Publish and wait: True once every record was published."""
        if not items:
            return True
        return await (await self.submit(items))

    async def publish(self, key: bytes, records: list[Record]) -> bool:
        return await self.publish_grouped([(key, r) for r in records])

    # -- UDP --------------------------------------------------------------------------------

    def kernel_drops(self) -> int:
        """Datagrams the kernel dropped on this receiver's UDP sockets (receive buffer full),
        from /proc/net/udp[6] (0 where it cannot be read)."""
        inodes = set()
        for sock in self._udp_sockets:
            try:
                inodes.add(str(os.fstat(sock.fileno()).st_ino))
            except OSError:
                continue
        if inodes:  # a counter never goes back: the last value stays after the sockets close
            self._kernel_drops = max(self._kernel_drops, udp_drops(inodes))
        return self._kernel_drops


def _size(items: Items) -> int:
    return sum(len(r.get("message") or "") for _, r in items)


def udp_drops(inodes: set[str], paths: tuple[str, ...] = ("/proc/net/udp", "/proc/net/udp6")
              ) -> int:
    """Sum of the ``drops`` column of /proc/net/udp lines whose inode is in ``inodes``."""
    total = 0
    for path in paths:
        try:
            with open(path, encoding="ascii", errors="replace") as fh:
                next(fh, None)
                for line in fh:
                    cols = line.split()
                    if len(cols) >= 13 and cols[9] in inodes and cols[-1].isdigit():
                        total += int(cols[-1])
        except OSError:
            continue
    return total


class DatagramQueue(asyncio.DatagramProtocol):
    """UDP endpoint feeding a queue bounded in bytes (over it a datagram is dropped and
    counted ``queue_full``)."""

    def __init__(self, receiver: Receiver, max_bytes: int) -> None:
        self.receiver = receiver
        self.max_bytes = max_bytes
        self.bytes = 0
        self.items: deque[tuple[bytes, str]] = deque()
        self.ready = asyncio.Event()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        size = len(data) + 128
        if self.bytes + size > self.max_bytes:
            self.receiver.count("queue_full")
            return
        self.items.append((data, str(addr[0])))
        self.bytes += size
        self.ready.set()

    def error_received(self, exc: Exception) -> None:
        self.receiver.count("socket_error")

    def connection_lost(self, exc: Exception | None) -> None:
        self.ready.set()  # wake the drain at shutdown

    def take(self, max_items: int = 1000, max_bytes: int = 1024 * 1024
             ) -> tuple[list[tuple[bytes, str]], int]:
        batch: list[tuple[bytes, str]] = []
        size = 0
        while self.items and len(batch) < max_items and size < max_bytes:
            data, sender = self.items.popleft()
            batch.append((data, sender))
            size += len(data) + 128
        self.bytes -= size
        return batch, size


def _bind_udp_buffer(sock: socket.socket) -> None:
    """Ask for a large receive buffer (bursts): SO_RCVBUFFORCE when allowed, else SO_RCVBUF
    (the kernel caps it at net.core.rmem_max)."""
    for opt in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if opt is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, UDP_RECEIVE_BUFFER)
            return
        except OSError:
            continue


class UdpSocket:
    """A non-blocking UDP socket read by the event loop until it would block (asyncio's
    datagram transport takes one datagram per loop iteration: a burst then waits in the
    kernel buffer and overflows it). ``close`` stops reading and wakes the drain."""

    READ_BATCH = 1000

    def __init__(self, sock: socket.socket, queue: DatagramQueue) -> None:
        self.sock = sock
        self.queue = queue
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        recv, put = self.sock.recvfrom, self.queue.datagram_received
        for _ in range(self.READ_BATCH):
            try:
                data, addr = recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP errors surfacing on the socket
                self.queue.error_received(exc)
                return
            put(data, addr)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """As an asyncio transport's: ``socket``, ``sockname``."""
        if name == "socket":
            return self.sock
        if name == "sockname":
            return self.sock.getsockname() if self.sock.fileno() >= 0 else default
        return default

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self._loop.remove_reader(self.sock.fileno())
            self.sock.close()
        self.queue.connection_lost(None)


def _udp_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        sock.bind(addr)
        _bind_udp_buffer(sock)
    except OSError:
        sock.close()
        raise
    return sock


async def start_udp(receiver: Receiver, handle: Any) -> int:
    """Bind a UDP socket for ``receiver``; a task drains it in batches through
    ``handle(list[(data, sender)]) -> list[(key, record)]`` into the intake. Returns the
    port."""
    sock = _udp_socket(receiver.host, receiver.port)
    proto = DatagramQueue(receiver, receiver.udp_queue_bytes)
    receiver._transports.add(UdpSocket(sock, proto))  # type: ignore[arg-type]
    receiver._udp_sockets.append(sock)

    async def drain() -> None:
        while True:
            if not proto.items:
                if receiver.closing:
                    return
                proto.ready.clear()
                await proto.ready.wait()
                continue
            batch, size = proto.take()
            try:
                items = handle(batch)
            except Exception:
                log.exception("%s: datagram handler failed", receiver.name)
                receiver.count("internal_error", len(batch))
                continue
            await receiver.submit(items, size)

    receiver._spawn(drain(), drains=True)
    receiver._ensure_janitor()
    return sock.getsockname()[1]


# -- Docker metadata --------------------------------------------------------------------------

# Tags Docker's drivers are given by default (``{{.ID}}``) or by its docs' recommendation; a
# collector's ``--docker-tag`` templates are tried before them.
DEFAULT_DOCKER_TAGS = ("{{.ID}}", "{{.FullID}}", "{{.ImageName}}/{{.Name}}/{{.ID}}",
                       "{{.ImageName}}/{{.Name}}/{{.FullID}}")


def docker_container(cid: Any = None, name: Any = None, image: Any = None) -> dict[str, Any]:
    """ECS ``container`` from a Docker log driver's metadata: ``id``, ``name`` (without the
    leading ``/`` Docker keeps internally), ``image.name``, ``runtime``; {} without any."""
    out: dict[str, Any] = {}
    if isinstance(cid, str) and cid:
        out["id"] = cid
    if isinstance(name, str) and name.lstrip("/"):
        out["name"] = name.lstrip("/")
    if isinstance(image, str) and image:
        out["image"] = {"name": image}
    if out:
        out["runtime"] = "docker"
    return out


def docker_tags(templates: str | Sequence[str] | None = None) -> TagTemplates:
    """The tag templates a receiver reads container fields from: ``templates`` (a
    collector's ``--docker-tag``), then ``DEFAULT_DOCKER_TAGS``."""
    given = [templates] if isinstance(templates, str) else list(templates or [])
    return TagTemplates([*given, *(t for t in DEFAULT_DOCKER_TAGS if t not in given)])


def tag_container(tags: TagTemplates, tag: str | None) -> dict[str, Any]:
    """ECS ``container`` from a Docker tag read with ``tags``; {} when it fits none."""
    found = tags.match(tag) if tag else None
    return {**found, "runtime": "docker"} if found else {}


def stream_of_severity(severity: Any) -> str | None:
    """Docker's syslog, GELF and journald drivers write stderr at ``err`` (3) and stdout at
    ``info`` (6): the stream of a container's message from its severity."""
    return {3: "stderr", 6: "stdout"}.get(severity) if isinstance(severity, int) else None
