"""State values larger than a Kafka message: written as chunks behind a manifest, so a
crash after any acknowledged write restores the previous value or the new one, never a mix.
The changelog is simulated (what the broker acknowledged, replayed as Faust recovers a
memory store); the real-Kafka path runs in tests/integration/test_windows_worker.py."""

from __future__ import annotations

import asyncio
import random

import pytest

from streams.transport.state import MANIFEST, TableState


class Changelog:
    def __init__(self) -> None:
        self.sent: list[tuple[int, bytes, bytes | None]] = []

    async def send(self, *, key, value, partition, **_kw):
        self.sent.append((partition, key, value))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


class Table:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.changelog_topic = Changelog()
        self.key_serializer = self.value_serializer = "raw"


def recover(sent: list[tuple[int, bytes, bytes | None]]) -> Table:
    """A new table rebuilt from the acknowledged changelog, tombstones deleting."""
    t = Table()
    for _, key, value in sent:
        if value is None:
            t.data.pop(key, None)
        else:
            t.data[key] = value
    return t


def test_small_and_large_values_round_trip_and_leave_one_copy():
    async def go():
        table = Table()
        state = TableState(table, limit=100)
        values = [b"{}", bytes(range(256)) * 3, b"x" * 1000, b"[1]", b"y" * 450]
        for v in values:
            await state.save(3, b"3:agg", v)
            assert state.load(b"3:agg") == v
            assert TableState(recover(table.changelog_topic.sent), limit=100).load(b"3:agg") == v
            copies = sum(len(x) for k, x in table.data.items() if not k.startswith(b"3:agg") or
                         not x.startswith(MANIFEST))
            assert copies == len(v)  # the other slot's chunks were deleted
        assert all(p == 3 for p, _, _ in table.changelog_topic.sent)
    asyncio.run(go())


@pytest.mark.parametrize("seed", range(20))
def test_a_crash_after_any_acknowledged_write_restores_the_old_or_the_new_value(seed):
    rng = random.Random(seed)

    async def go():
        table = Table()
        state = TableState(table, limit=64)
        old = None
        for _ in range(6):
            new = bytes(rng.randrange(256) for _ in range(rng.choice([10, 64, 200, 700])))
            before = len(table.changelog_topic.sent)
            await state.save(0, b"0:det", new)
            sent = table.changelog_topic.sent
            for cut in range(before, len(sent) + 1):
                got = TableState(recover(sent[:cut]), limit=64).load(b"0:det")
                assert got in (old, new), f"crash after write {cut}: a mix of two states"
            assert TableState(recover(sent), limit=64).load(b"0:det") == new
            old = new
    asyncio.run(go())


def test_missing_chunks_are_an_error_not_a_partial_state():
    async def go():
        table = Table()
        await TableState(table, limit=10).save(1, b"1:agg", b"z" * 95)
        del table.data[b"1:agg#0:4"]
        with pytest.raises(ValueError, match="chunks missing"):
            TableState(table, limit=10).load(b"1:agg")
    asyncio.run(go())
