"""Contracts shared by every source: the publisher a source hands its records to."""

from __future__ import annotations

from typing import Protocol

from streams.transport.records import Record


class Publisher(Protocol):
    """Where a source delivers records. ``publish`` returns once the records are durably
    accepted downstream (for Kafka: acknowledged with acks=all) and raises otherwise; a source
    advances its checkpoint only after it returned. Records given in one call share a key
    (one container stream), so their order is kept."""

    async def publish(self, key: bytes, records: list[Record]) -> None: ...


class ListPublisher:
    """In-memory publisher for tests and in-process runs."""

    def __init__(self) -> None:
        self.batches: list[tuple[bytes, list[Record]]] = []

    async def publish(self, key: bytes, records: list[Record]) -> None:
        self.batches.append((key, list(records)))

    @property
    def records(self) -> list[Record]:
        return [r for _, batch in self.batches for r in batch]
