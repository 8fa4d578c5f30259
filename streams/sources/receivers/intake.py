"""The intake: what stands between a receiver's connection handlers and its publisher.

Handlers submit ``(key, record)`` items and go on reading; one flusher publishes whatever is
queued at once, every key in the same round (one concurrent ``publish`` per key, which the
Kafka producer batches into one request per partition), so interleaved senders and
one-frame-per-line senders (Docker's fluentd driver) cost one Kafka round trip per flush, not
one per key or per frame. Flushes run one at a time, so records of one key keep their order.

Memory is bounded in bytes: ``submit`` waits while the queued bytes are over ``max_bytes``
(TCP senders are slowed down: backpressure), ``offer`` refuses (UDP: the caller counts the
drop). Each submission gets a future that resolves to True once all its records were
published (or dead-lettered by the publisher), False when publishing failed: a fluentd
handler acks its chunk on True, a TCP handler closes its connection on False.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from streams.transport.records import Record

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# Records taken by one flush (whole submissions: a submission is never split).
MAX_FLUSH_RECORDS = 20_000
# What a queued record costs, measured on the way to Kafka: the dict, its small strings and
# the item; its input several times over (decoded, encoded, packed, in the producer's batch);
# and its message again per character, as JSON may write a character in up to 6 bytes (an
# invalid byte becomes U+FFFD, 3 bytes; a control character \u00XX, 6) and it is held
# encoded, packed and batched (60 KB of random bytes: ~700 KB while it is published).
RECORD_OVERHEAD = 768
INPUT_FACTOR = 4
MESSAGE_FACTOR = 8

Items = list[tuple[bytes, Record]]


@dataclass(slots=True, eq=False)
class Submission:
    items: Items
    size: int
    future: asyncio.Future[bool]


class Budget:
    """Bytes (estimated) queued or being published, shared by the intakes of one process (the
    collector's receivers), so that their sum is bounded, not each one's."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._space: asyncio.Event | None = None

    def full(self, cost: int) -> bool:
        return bool(self.bytes) and self.bytes + cost > self.max_bytes

    async def wait(self) -> None:
        if self._space is None:
            self._space = asyncio.Event()
        self._space.clear()
        await self._space.wait()

    def release(self, cost: int) -> None:
        self.bytes -= cost
        if self._space is not None:
            self._space.set()


class Intake:
    """Byte-bounded queue + one flusher (see the module doc). ``counters`` is the receiver:
    it gets ``published += n`` and ``count("publish_failed", n)``; ``budget`` may be shared
    with other intakes (default: one of ``max_bytes`` of its own)."""

    def __init__(self, publisher: Any, counters: Any, max_bytes: int = DEFAULT_MAX_BYTES,
                 budget: Budget | None = None) -> None:
        self.publisher = publisher
        self.counters = counters
        self.budget = budget or Budget(max_bytes)
        self.bytes = 0  # this intake's share: queued or being published
        self.flushes = 0
        self._queue: deque[Submission] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    @staticmethod
    def cost(items: Items, size: int) -> int:
        chars = 0
        for _, record in items:
            message = record.get("message")
            if message:
                chars += len(message)
        return INPUT_FACTOR * size + MESSAGE_FACTOR * chars + RECORD_OVERHEAD * len(items)

    def _enqueue(self, items: Items, cost: int) -> asyncio.Future[bool]:
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if not items:
            fut.set_result(True)
            return fut
        if self.closed:  # after shutdown: nothing is published any more
            self.counters.count("shutdown_unpublished", len(items))
            fut.set_result(False)
            return fut
        self._queue.append(Submission(items, cost, fut))
        self.bytes += cost
        self.budget.bytes += cost
        self._idle.clear()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return fut

    def offer(self, items: Items, size: int) -> asyncio.Future[bool] | None:
        """Queue without waiting; None when the budget is spent (nothing queued)."""
        cost = self.cost(items, size)
        if self.budget.full(cost):
            return None
        return self._enqueue(items, cost)

    async def submit(self, items: Items, size: int) -> asyncio.Future[bool]:
        """Queue, first waiting while the budget is spent (one submission larger than the
        whole budget is taken when the queue is empty)."""
        cost = self.cost(items, size)
        while self.budget.full(cost):
            await self.budget.wait()
        return self._enqueue(items, cost)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = [self._queue.popleft()]
                n = len(batch[0].items)
                while self._queue and n + len(self._queue[0].items) <= MAX_FLUSH_RECORDS:
                    sub = self._queue.popleft()
                    batch.append(sub)
                    n += len(sub.items)
                try:
                    await self._flush(batch)
                finally:
                    for sub in batch:
                        if not sub.future.done():  # the flush was cancelled (shutdown)
                            self.counters.count("shutdown_unpublished", len(sub.items))
                            sub.future.set_result(False)
                        self.bytes -= sub.size
                        self.budget.release(sub.size)
            self._idle.set()

    async def _flush(self, batch: list[Submission]) -> None:
        groups: dict[bytes, list[Record]] = {}
        for sub in batch:
            for key, record in sub.items:
                group = groups.get(key)
                if group is None:
                    groups[key] = [record]
                else:
                    group.append(record)
        keys = list(groups)
        results = await asyncio.gather(
            *(self.publisher.publish(k, groups[k]) for k in keys), return_exceptions=True
        )
        self.flushes += 1
        failed = set()
        for key, result in zip(keys, results):
            n = len(groups[key])
            if isinstance(result, BaseException):
                if not isinstance(result, asyncio.CancelledError):
                    log.error("%s: publish failed: %s", self.counters.name, result)
                failed.add(key)
                self.counters.count("publish_failed", n)
            else:
                self.counters.published += n
        for sub in batch:
            ok = not failed or not any(k in failed for k, _ in sub.items)
            sub.future.set_result(ok)

    @property
    def queued(self) -> int:
        return sum(len(s.items) for s in self._queue)

    async def close(self, timeout: float) -> bool:
        """Publish what is queued (waiting up to ``timeout`` seconds), then stop the flusher.
        Returns False when records were still unpublished at the deadline (their futures
        resolve False and are counted ``shutdown_unpublished``)."""
        done = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            done = False
        self.closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        lost = 0
        while self._queue:
            sub = self._queue.popleft()
            lost += len(sub.items)
            self.bytes -= sub.size
            self.budget.release(sub.size)
            if not sub.future.done():
                sub.future.set_result(False)
        if lost:
            self.counters.count("shutdown_unpublished", lost)
        return done and not lost
