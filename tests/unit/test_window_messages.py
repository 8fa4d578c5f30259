"""Window-topic messages: every projection sent once, each key's in order, no message over
the limit (a buffer of one busy key once made a 2.2 MB message the broker refused, and the
whole buffer was retried, then dead-lettered)."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from streams.window_worker import pack_json_arrays, window_messages

FIELDS = ("kubernetes.namespace", "kubernetes.container.name")
KEY_PATHS = [("kubernetes", "namespace")]


def _event(i: int, ns: str, text: str = "x") -> dict:
    return {"@timestamp": f"2026-11-26T00:00:{i % 60:02d}.000Z", "message": text,
            "event": {"id": f"e{i}"}, "log": {"level": "info", "template_id": "t1"},
            "kubernetes": {"namespace": ns, "container": {"name": "c"}}}


@given(st.lists(st.binary(min_size=1, max_size=40), max_size=60), st.integers(3, 200))
def test_pack_keeps_order_and_limit(values, limit):
    encoded = [orjson.dumps(v.hex()) for v in values]
    out = list(pack_json_arrays(encoded, limit))
    assert [x for arr in out for x in orjson.loads(arr)] == [v.hex() for v in values]
    for arr in out:
        assert len(arr) <= limit or len(orjson.loads(arr)) == 1


def test_one_busy_key_is_split_under_the_limit_in_order():
    events = [_event(i, "busy" if i % 10 else "quiet", "y" * 200) for i in range(5000)]
    positions = {f"e{i}": [i % 4, i, 0] for i in range(5000)}
    items, letters = window_messages(events, positions, KEY_PATHS, FIELDS, 64 * 1024,
                                     pipeline="p")
    assert not letters
    assert all(len(v) <= 64 * 1024 for _, v in items)
    assert len([k for k, _ in items if k == b"busy"]) > 1
    got: dict[bytes, list[str]] = {}
    for key, value in items:
        for proj in orjson.loads(value):
            assert proj["pos"] == positions[proj["event"]["id"]]
            got.setdefault(key, []).append(proj["event"]["id"])
    assert got[b"busy"] == [f"e{i}" for i in range(5000) if i % 10]
    assert got[b"quiet"] == [f"e{i}" for i in range(0, 5000, 10)]


def test_a_projection_larger_than_the_limit_is_dead_lettered_with_its_event():
    events = [_event(0, "a"), _event(1, "n" * 5000), _event(2, "a")]
    positions = {f"e{i}": [0, i, 0] for i in range(3)}
    items, letters = window_messages(events, positions, KEY_PATHS, FIELDS, 2048, pipeline="p")
    assert [p["event"]["id"] for _, v in items for p in orjson.loads(v)] == ["e0", "e2"]
    assert [(dl["reason"], dl["event_id"]) for dl in letters] == [("window_input_too_large", "e1")]
