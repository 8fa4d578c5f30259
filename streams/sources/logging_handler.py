"""App-direct shipping: a ``logging.Handler`` that publishes records to the raw topic.

``emit`` only builds a raw record and puts it on a bounded queue (a full queue drops the
record and counts it in ``dropped``): it never blocks the application and never raises into
it. A background thread with its own event loop takes batches off the queue and publishes
them, by default with an aiokafka producer (acks=all, idempotent) as one raw-topic message in
the batch format of ``streams.transport.records`` per batch; a failed batch is retried with backoff
(same ids), so delivery is at-least-once while the process lives. ``close`` flushes with a
timeout; what it could not deliver is counted in ``dropped``.

Ids: ``(host, pid, process start time, sequence number)``: unique per record, fixed when the
record is built, so retries carry the same id.

Records from the handler's own thread and from the Kafka client's loggers are ignored, so a
handler on the root logger cannot feed on itself.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from streams.transport.records import Record, encode_batch, event_id, now_rfc3339

PublishFn = Callable[[bytes, list[Record]], Awaitable[None]]

_IGNORED_LOGGERS = ("aiokafka", "kafka")
FLAG_FORMAT_ERROR = "format_error"
POLL_INTERVAL = 0.02  # idle wait of the shipper between looks at the queue


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class KafkaLoggingHandler(logging.Handler):
    """Publish log records to ``topic`` on ``bootstrap_servers``.

    ``publish`` replaces the Kafka producer (``async publish(key, records)``, run on the
    handler's loop): for tests and for shipping through another transport.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        level: int = logging.NOTSET,
        key: str | None = None,
        max_buffer: int = 10000,
        batch_size: int = 500,
        retry_backoff: float = 0.5,
        close_timeout: float = 5.0,
        publish: PublishFn | None = None,
        producer_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(level)
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.key = (key or f"python/{self.host}/{self.pid}").encode()
        self.batch_size = batch_size
        self.retry_backoff = retry_backoff
        self.close_timeout = close_timeout
        self.producer_options = producer_options or {}
        self.dropped = 0
        self.published = 0
        self.errors = 0
        self._publish = publish
        self._producer: Any = None
        self._started = f"{time.time():.6f}"
        self._seq = itertools.count()
        self._queue: queue.Queue[Any] = queue.Queue(max_buffer)
        self._closing = threading.Event()
        self._deadline = float("inf")
        self._thread = threading.Thread(target=self._run, name="logriver-log-shipper", daemon=True)
        self._thread.start()

    # -- application side -------------------------------------------------------------------

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread == self._thread.ident or record.name.startswith(_IGNORED_LOGGERS):
            return False
        return bool(super().filter(record))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self._closing.is_set():
                self.dropped += 1
                return
            self._queue.put_nowait(self.to_record(record))
        except queue.Full:
            self.dropped += 1
        except Exception:  # noqa: BLE001 - whatever happens, never raise into the application
            self.errors += 1

    def to_record(self, record: logging.LogRecord) -> Record:
        flags = []
        try:
            message = self.format(record)
        except Exception:  # noqa: BLE001 - e.g. arguments that do not fit the format string
            self.errors += 1
            message = f"{record.msg!r} % {record.args!r}"
            flags.append(FLAG_FORMAT_ERROR)
        fields: dict[str, Any] = {
            "logger": record.name,
            "level": record.levelname,
            "module": record.module,
            "function": record.funcName,
            "line": record.lineno,
            "thread": record.threadName,
            "process": record.process,
        }
        if record.exc_info and record.exc_info[0] is not None:
            fields["exception"] = record.exc_info[0].__name__
        return {
            "id": event_id("python", self.host, self.pid, self._started, next(self._seq)),
            "message": message,
            "time": _rfc3339(record.created),
            "observed": now_rfc3339(),
            "stream": None,
            "source": {"type": "python", "host": self.host, "logger": record.name},
            "fields": fields,
            **({"flags": flags} if flags else {}),
        }

    @property
    def buffered(self) -> int:
        return self._queue.qsize()

    def flush(self) -> None:
        """No-op: delivery is asynchronous (``close`` waits for it)."""

    def close(self) -> None:
        """Stop accepting records and deliver those buffered, waiting ``close_timeout``."""
        if not self._closing.is_set():
            self._deadline = time.monotonic() + self.close_timeout
            self._closing.set()
            self._thread.join(self.close_timeout + 1.0)
            if self._thread.is_alive():  # the daemon thread dies with the process
                self.dropped += self._queue.qsize()
        super().close()

    # -- shipper thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._ship())
        except Exception:  # noqa: BLE001 - Kafka unreachable to the end: the rest is lost, counted
            self.errors += 1
            self.dropped += self._queue.qsize()

    def _take(self) -> list[Record]:
        batch: list[Record] = []
        while len(batch) < self.batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    async def _ship(self) -> None:
        publish = self._publish or await self._kafka()
        try:
            while True:
                batch = self._take()
                if not batch:
                    if self._closing.is_set():
                        return
                    await asyncio.sleep(POLL_INTERVAL)
                    continue
                while True:
                    try:
                        await publish(self.key, batch)
                        self.published += len(batch)
                        break
                    except Exception:  # noqa: BLE001 - a failed start or send is retried
                        self.errors += 1
                        if self._closing.is_set() and time.monotonic() >= self._deadline:
                            self.dropped += len(batch) + self._queue.qsize()
                            return
                        await asyncio.sleep(self.retry_backoff)
        finally:
            if self._producer is not None:
                await self._producer.stop()

    async def _kafka(self) -> PublishFn:
        from aiokafka import AIOKafkaProducer

        options = {
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 50,
            **self.producer_options,
        }
        while True:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, **options)
            try:
                await producer.start()
                break
            except Exception:
                self.errors += 1
                await producer.stop()
                if self._closing.is_set() and time.monotonic() >= self._deadline:
                    raise
                await asyncio.sleep(self.retry_backoff)
        self._producer = producer

        async def send(key: bytes, records: list[Record]) -> None:
            await producer.send_and_wait(self.topic, encode_batch(records), key=key)

        return send
