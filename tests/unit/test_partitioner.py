"""The vectorized murmur2 equals Kafka's (aiokafka's pure-Python port of the Java client)."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner, murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.transport.partitioner import murmur2_batch, partitions_for_keys


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=40), min_size=1, max_size=30))
def test_murmur2_equals_kafkas_for_any_keys(keys: list[bytes]) -> None:
    assert murmur2_batch(keys).tolist() == [murmur2(k) & 0xFFFFFFFF for k in keys]


def test_partitions_equal_the_default_partitioner() -> None:
    rng = random.Random(7)
    keys = [rng.randbytes(rng.choice([0, 1, 2, 3, 5, 24, 33])) for _ in range(3000)]
    keys += [f"{rng.getrandbits(96):024x}".encode() for _ in range(3000)]  # event ids
    default = DefaultPartitioner()
    for parts in ([0], [0, 1, 2, 3], list(range(7)), [3, 5, 9]):
        assert partitions_for_keys(keys, parts) == [default(k, parts, parts) for k in keys]
    assert partitions_for_keys([], [0, 1]) == []
