"""State of the Faust worker in changelog-backed tables, of any size.

Template miners and window stages keep their state as one value per partition in a Faust
table (in memory, rebuilt from the table's changelog topic after a restart). A changelog
message is a Kafka message: a default broker refuses one over about 1 MB, and a window stage
over thousands of containers, or a miner holding 10,000 templates, grows past that. So a
value larger than ``limit`` is written as chunks, and the key itself holds a small manifest
naming them. Chunks go to one of two slots, alternately, and the manifest is written after
every chunk of its slot was acknowledged: after a crash at any point the key names either
the previous complete value or the new one, never a mix (a CRC checks it). The other slot's
chunks are then deleted (tombstones), so the table holds one copy.

Every write is awaited until the broker acknowledges it (``save_state``): the callers write
state before Faust may commit the offsets of the input it reflects.
"""

from __future__ import annotations

import asyncio
import os
import zlib
from typing import Any

import faust
import orjson

MANIFEST = b"\x00logriver-chunked\x00"  # state values are JSON: they never start with NUL
DEFAULT_LIMIT = 900 * 1024


def chunk_limit() -> int:
    """Bytes per changelog message (``LOGRIVER_STATE_CHUNK_BYTES``, default 900 KiB)."""
    return int(os.environ.get("LOGRIVER_STATE_CHUNK_BYTES") or DEFAULT_LIMIT)


async def save_state(table: faust.Table, partition: int, key: bytes, value: bytes | None) -> None:
    """Write a table entry (``None``: delete it) to its changelog partition and wait for the
    broker's acknowledgement. (``Table.send_changelog`` only queues the message in Faust's
    producer buffer, whose flush gives up after 0.1 s per message: at a stop or a commit
    under load a queued state could still be unsent.)"""
    await (await _send(table, partition, key, value))


async def _send(table: faust.Table, partition: int, key: bytes, value: bytes | None) -> Any:
    return await table.changelog_topic.send(
        key=key, value=value, partition=partition,
        key_serializer=table.key_serializer, value_serializer=table.value_serializer,
    )


def _chunk_key(key: bytes, slot: int, i: int) -> bytes:
    return key + f"#{slot}:{i}".encode()


class TableState:
    """Reads and writes values of ``table`` that may be larger than one Kafka message."""

    def __init__(self, table: faust.Table, limit: int | None = None) -> None:
        self.table = table
        self.limit = limit or chunk_limit()
        self._slots: dict[bytes, tuple[int, int]] = {}  # key -> (slot, chunks) it names now

    def load(self, key: bytes) -> bytes | None:
        """The value at ``key`` (joined from its chunks), or None. ValueError when the
        chunks it names are missing or do not match its checksum."""
        raw = self.table.data.get(key)
        if raw is None or not raw.startswith(MANIFEST):
            return raw
        m = orjson.loads(raw[len(MANIFEST):])
        slot, n = int(m["slot"]), int(m["chunks"])
        parts = [self.table.data.get(_chunk_key(key, slot, i)) for i in range(n)]
        if any(p is None for p in parts):
            raise ValueError(f"state {key!r}: {sum(p is None for p in parts)} of {n} chunks missing")
        value = b"".join(parts)  # type: ignore[arg-type]
        if len(value) != m["bytes"] or zlib.crc32(value) != m["crc32"]:
            raise ValueError(f"state {key!r}: chunks do not match the manifest's checksum")
        self._slots[key] = (slot, n)
        return value

    async def save(self, partition: int, key: bytes, value: bytes) -> None:
        """Write ``value`` at ``key``; acknowledged by the broker when this returns."""
        data = self.table.data
        named = self._slots.pop(key, None)
        if named is None and (data.get(key) or b"").startswith(MANIFEST):
            m = orjson.loads(data[key][len(MANIFEST):])
            named = (int(m["slot"]), int(m["chunks"]))
        keep: set[bytes] = set()
        if len(value) <= self.limit:
            data[key] = value
            await save_state(self.table, partition, key, value)
        else:
            slot = 1 - named[0] if named else 0
            pending = []
            for i in range(0, len(value), self.limit):
                ck = _chunk_key(key, slot, i // self.limit)
                data[ck] = chunk = value[i:i + self.limit]
                keep.add(ck)
                pending.append(await _send(self.table, partition, ck, chunk))
            await asyncio.gather(*pending)
            manifest = MANIFEST + orjson.dumps({"slot": slot, "chunks": len(pending),
                                                "bytes": len(value), "crc32": zlib.crc32(value)})
            data[key] = manifest
            await save_state(self.table, partition, key, manifest)
            self._slots[key] = (slot, len(pending))
        # Chunks the key no longer names (the previous slot; after a crash between a manifest
        # and this cleanup, leftovers of either slot) are deleted.
        prefix = key + b"#"
        pending = []
        for k in [k for k in data if k.startswith(prefix) and k not in keep]:
            del data[k]
            pending.append(await _send(self.table, partition, k, None))
        await asyncio.gather(*pending)
