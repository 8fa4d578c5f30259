"""Thin Kafka helpers over aiokafka: topic creation and the collectors' publisher."""

from __future__ import annotations

import asyncio
import logging
from typing import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from streams.records import Record, encode_batch

log = logging.getLogger(__name__)

# Largest raw-topic message we produce. Kafka's default message.max.bytes is ~1 MB; a batch
# larger than this is split, and a single record larger than it is sent alone (the broker
# started by `logriver services` accepts 16 MiB; collectors cut lines at 1 MiB by default).
MAX_MESSAGE_BYTES = 900 * 1024


async def ensure_topics(
    bootstrap: str, names: Iterable[str], partitions: int = 4, replication: int = 1
) -> None:
    """Create the topics that do not exist yet (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [n for n in dict.fromkeys(names) if n not in existing]
        if wanted:
            try:
                await admin.create_topics(
                    [NewTopic(n, num_partitions=partitions, replication_factor=replication) for n in wanted]
                )
            except TopicAlreadyExistsError:
                pass
            # Metadata propagates asynchronously; wait until every topic is listed.
            for _ in range(100):
                if set(wanted) <= set(await admin.list_topics()):
                    break
                await asyncio.sleep(0.1)
    finally:
        await admin.close()


class KafkaPublisher:
    """The ``Publisher`` collectors use: acks=all, idempotent, lz4-compressed batches; one key
    per container stream so order holds per stream. ``publish`` returns after the broker
    acknowledged every message (so the caller may advance its checkpoint)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        linger_ms: int = 20,
        max_batch_size: int = 1024 * 1024,
        compression: str | None = "lz4",
    ) -> None:
        self.topic = topic
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            compression_type=compression,
            linger_ms=linger_ms,
            max_batch_size=max_batch_size,
            max_request_size=16 * 1024 * 1024,
            request_timeout_ms=30000,
        )
        self.messages = 0
        self.records = 0

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def __aenter__(self) -> "KafkaPublisher":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def publish(self, key: bytes, records: list[Record]) -> None:
        futures = []
        for value in split_batches(records):
            futures.append(await self._send(key, value))
        for fut in futures:
            await fut
        self.records += len(records)

    async def _send(self, key: bytes, value: bytes) -> asyncio.Future:
        delay = 0.2
        while True:
            try:
                fut = await self._producer.send(self.topic, value=value, key=key)
                self.messages += 1
                return fut
            except KafkaError as exc:  # buffer full or broker down: wait, never drop
                log.warning("kafka: send failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)


def split_batches(records: list[Record], max_bytes: int = MAX_MESSAGE_BYTES) -> list[bytes]:
    """Encode records as raw-topic messages of at most ``max_bytes`` (a single larger record
    goes alone)."""
    whole = encode_batch(records)
    if len(whole) <= max_bytes or len(records) == 1:
        return [whole]
    mid = len(records) // 2
    return split_batches(records[:mid], max_bytes) + split_batches(records[mid:], max_bytes)
