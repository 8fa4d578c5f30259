"""Window-topic messages (compact window input, version 3): every event sent once, each
key's in order, no message over the limit (a buffer of one busy key once made a 2.2 MB
message the broker refused, and the whole buffer was retried, then dead-lettered), template
texts once per message; and what the window agent accepts as input."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.windows import WindowAggregator, WindowSpec
from streams.windows.aggregate import sample_of
from streams.windows.rows import ROW_FIELDS, decode_window_input, window_messages
from streams.windows.spec import parse_time_us

FIELDS = ("kubernetes.namespace", "kubernetes.container.name")
KEY_PATHS = [("kubernetes", "namespace")]


def _event(i: int, ns: str, text: str = "x", tid: str = "t1") -> dict:
    return {"@timestamp": f"2026-11-26T00:{i // 60 % 60:02d}:{i % 60:02d}.000Z", "message": text,
            "event": {"id": f"e{i}", "duration": 1_000_000 * (i % 7)},
            "log": {"level": "error" if i % 5 == 0 else "info", "template_id": tid,
                    "template": f"template {tid} <*>"},
            "http": {"response": {"status_code": 503 if i % 11 == 0 else 200}},
            "kubernetes": {"namespace": ns, "container": {"name": f"c{i % 3}"}}}


def _rows(items):
    for key, value in items:
        msg = decode_window_input(value)
        for row in msg["rows"]:
            yield key, msg, row


def test_one_busy_key_is_split_under_the_limit_in_order_with_its_texts():
    events = [_event(i, "busy" if i % 10 else "quiet", "y" * 200, tid=f"t{i % 40}")
              for i in range(5000)]
    positions = {f"e{i}": [i % 4, i, 0, 77, 5, 100 * i] for i in range(5000)}
    items, letters = window_messages(events, positions, KEY_PATHS, FIELDS, 16 * 1024, pipeline="p")
    assert not letters
    assert all(len(v) <= 16 * 1024 for _, v in items)
    assert len([k for k, _ in items if k == b"busy"]) > 1
    got: dict[bytes, list[str]] = {}
    by_id = {e["event"]["id"]: e for e in events}
    for key, msg, row in _rows(items):
        assert len(row) == ROW_FIELDS and row[9:] == positions[row[1]]
        ev = by_id[row[1]]
        assert row[0] == parse_time_us(ev["@timestamp"])
        assert tuple(row[2:8]) == sample_of(ev)
        assert row[8] == [ev["kubernetes"]["namespace"], ev["kubernetes"]["container"]["name"]]
        assert msg["texts"][row[5]] == ev["log"]["template"]  # every row's text in its message
        got.setdefault(key, []).append(row[1])
    assert got[b"busy"] == [f"e{i}" for i in range(5000) if i % 10]
    assert got[b"quiet"] == [f"e{i}" for i in range(0, 5000, 10)]


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 300)), max_size=80),
       st.integers(600, 4000))
def test_any_buffer_round_trips_within_the_limit(spec, limit):
    events = [_event(i, f"ns{ns}", "m" * size, tid=f"t{i % 9}") for i, (ns, size) in enumerate(spec)]
    positions = {f"e{i}": [0, i, 0, 1, None, None] for i in range(len(events))}
    items, letters = window_messages(events, positions, KEY_PATHS, FIELDS, limit, pipeline="p")
    assert not letters
    assert all(len(v) <= limit for _, v in items)
    assert sorted(row[1] for _, _, row in _rows(items)) == sorted(e["event"]["id"] for e in events)


def test_a_row_larger_than_the_limit_is_dead_lettered_with_its_event():
    events = [_event(0, "a"), _event(1, "a"), _event(2, "a")]
    events[1]["kubernetes"]["container"]["name"] = "n" * 5000  # a key value of 5,000 bytes
    positions = {f"e{i}": [0, i, 0, 1, None, None] for i in range(3)}
    items, letters = window_messages(events, positions, KEY_PATHS, FIELDS, 2048, pipeline="p")
    assert [row[1] for _, _, row in _rows(items)] == ["e0", "e2"]
    assert [(dl["reason"], dl["event_id"]) for dl in letters] == [("window_input_too_large", "e1")]


def test_rows_count_as_the_events_they_stand_for():
    specs = [WindowSpec("tumbling", 60, allowed_lateness=3600, key_fields=FIELDS),
             WindowSpec("hopping", 300, 60, allowed_lateness=3600,
                        key_fields=("kubernetes.namespace",))]
    events = [_event(i, f"ns{i % 2}", tid=f"t{i % 4}") for i in range(900)]
    positions = {f"e{i}": [0, i, 0, 1, None, None] for i in range(900)}
    items, _ = window_messages(events, positions, KEY_PATHS, FIELDS, 8192, pipeline="p")
    direct, rows = WindowAggregator(specs), WindowAggregator(specs)
    for ev in events:
        assert direct.add(ev) == []
    for _, msg, row in _rows(items):
        for tid, text in msg["texts"].items():
            rows.remember_template(tid, text)
        assert rows.add_row(row[0], 0, tuple(row[2:8]), row[8], dict, msg["texts"].get(row[5])) == []
    assert [c.doc for c in rows.flush()] == [c.doc for c in direct.flush()]


@pytest.mark.parametrize("value", [
    b"\xff garbage", b"[1, 2]", b'{"v": 1}', b'{"v": 2, "fields": [], "texts": {}}',
    b'{"v": 2, "fields": ["a"], "texts": {}, "rows": [[1, "e", 1, false, false, null, false, null, [], 0, 1, 2, 3]]}',
    b'{"v": 2, "fields": [], "texts": {}, "rows": [[1, "e", 1, false, false, null, false, null, [], 0, 1, "2", 3]]}',
])
def test_malformed_window_input_is_refused_as_a_whole(value):
    with pytest.raises(ValueError):
        decode_window_input(value)


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 300), st.integers(0, 12)), max_size=80),
       st.integers(300, 6000))
def test_messages_are_the_bytes_of_packing_row_by_row(spec, limit):
    """A key's rows are encoded at once when they fit one message: the same messages, byte
    for byte, as encoding and packing each row alone (pack_rows)."""
    import orjson

    from streams.windows.rows import WINDOW_INPUT_VERSION, pack_rows

    events = [_event(i, f"ns{ns}", "m" * size, tid=f"t{t}") for i, (ns, size, t) in enumerate(spec)]
    for i, ev in enumerate(events):
        if i % 4 == 1:
            ev["log"].pop("template")  # a template id without its text
        if i % 6 == 2:
            ev["@timestamp"] = f"2026-11-26T00:00:{i % 60:02d}+01:00"  # not the events' own form
    positions = {f"e{i}": [0, i, 0, 1, None, None] for i in range(len(events))}
    items, letters = window_messages(events, positions, KEY_PATHS, FIELDS, limit, pipeline="p")
    head = b'{"v":%d,"fields":' % WINDOW_INPUT_VERSION + orjson.dumps(list(FIELDS)) + b',"texts":'
    expected: list[tuple[bytes, bytes]] = []
    groups: dict[bytes, list] = {}
    for ev in events:
        ns, c = ev["kubernetes"]["namespace"], ev["kubernetes"]["container"]["name"]
        eid = ev["event"]["id"]
        sample = sample_of(ev)
        row = orjson.dumps([parse_time_us(ev["@timestamp"]), eid, *sample, [ns, c], *positions[eid]])
        groups.setdefault(ns.encode(), []).append((row, sample[3], ev["log"].get("template")))
    for key, rows in groups.items():
        expected += [(key, v) for v in pack_rows(head, rows, limit)]
    assert len(letters) == len([v for _, v in expected if len(v) > limit])
    assert items == [kv for kv in expected if len(kv[1]) <= limit]


@given(st.integers(0, 2**35), st.sampled_from([".000Z", ".999Z", ".5Z", "Z", ".123+00:00", ".12aZ"]))
def test_event_times_of_a_known_second_parse_as_datetime_does(seconds, tail):
    """parse_time_us remembers seconds it parsed (events' own form): the same microseconds."""
    from datetime import UTC, datetime

    from streams.transport.events import _parse_time_us

    text = datetime.fromtimestamp(seconds % 253402300799, UTC).strftime("%Y-%m-%dT%H:%M:%S") + tail
    for variant in (text, text[:-5] + "042Z" if text.endswith("Z") and len(text) == 24 else text):
        assert parse_time_us(variant) == _parse_time_us(variant)
        assert parse_time_us(variant) == _parse_time_us(variant)


def test_progress_goes_to_every_window_partition_after_the_rows() -> None:
    from streams.windows.rows import progress_messages

    keys = [b"k0", b"k1", b"k2", b"k3"]  # one per window partition
    events = [{"@timestamp": f"2026-03-01T00:00:0{i}Z", "event": {"id": f"e{i}"}}
              for i in range(4)]
    positions = {"e0": [0, 10, 0, 7, None, None], "e1": [0, 11, 0, 7, None, None],
                 "e2": [1, 5, 0, 9, 3, 0], "e3": [1, 6, 0, 9, 3, 80]}
    msgs = progress_messages(events, positions, FIELDS, keys)
    assert [k for k, _ in msgs] == keys
    msg = decode_window_input(msgs[0][1])
    assert msg["rows"] == [] and msg["progress"] == [[0, 7, 1772323201000000],
                                                      [1, 9, 1772323203000000]]
    bad = orjson.loads(msgs[0][1])
    bad["progress"] = [[0, "x", 1]]
    with pytest.raises(ValueError):
        decode_window_input(orjson.dumps(bad))


def test_a_stream_heard_of_later_finds_its_windows_open() -> None:
    from streams.windows import WindowAggregator, WindowSpec

    spec = WindowSpec("tumbling", 60, allowed_lateness=10, key_fields=("kubernetes.namespace",))
    agg = WindowAggregator([spec])
    agg.waiting_for = {0, 1}  # two raw partitions, neither heard from
    t0 = 1_772_323_200 * 10**6
    for i in range(60):  # raw partition 0's stream is read to its end first
        agg.add_row(t0 + i * 10**6 * 30, "0:7", (1, False, False, None, False, None), ["a"],
                    dict)
    agg.waiting_for.discard(0)
    assert agg.close_ready() == []  # partition 1 not heard from: nothing closes
    agg.advance("1:9", t0 + 5 * 10**6)  # its progress arrives (its rows went elsewhere)
    agg.waiting_for.discard(1)
    late = agg.add_row(t0 + 2 * 10**6, "1:3", (1, False, False, None, False, None), ["a"],
                       dict)
    assert late == []
    assert [c.start_us for c in agg.close_ready()] == []  # held at partition 1's progress
    agg.advance("1:9", t0 + 200 * 10**6)
    agg.advance("1:3", t0 + 200 * 10**6)
    assert [c.start_us for c in agg.close_ready()] == [t0 + k * 60 * 10**6 for k in range(3)]


def test_a_template_generalized_mid_buffer_keeps_each_rows_own_text():
    """A miner may generalize a template between two events of one buffer: a message held
    only the first text, so the window stage named later rows' windows with a stale text
    (and differently from a replay). A row whose text changed starts a new message."""
    events = [_event(i, "ns") for i in range(40)]
    for i, e in enumerate(events):
        e["log"]["template"] = "connected to redis at <*>" if i < 25 else "connected to <*> at <*>"
    positions = {f"e{i}": [0, i, 0, 1, None, None] for i in range(40)}
    for limit in (1 << 20, 2048):
        items, letters = window_messages(events, positions, KEY_PATHS, FIELDS, limit, pipeline="p")
        assert not letters
        by_id = {e["event"]["id"]: e for e in events}
        rows = list(_rows(items))
        assert [r[1] for _, _, r in rows] == [f"e{i}" for i in range(40)]
        for _, msg, row in rows:
            assert msg["texts"][row[5]] == by_id[row[1]]["log"]["template"]


def test_version_2_rows_without_a_file_position_are_still_accepted() -> None:
    """Window input written before the file position was added (a topic not yet read to its
    end at an upgrade) is counted, by its raw position."""
    row = [1, "e", 1, False, False, None, False, None, ["a", "b"], 0, 1, 2, 3]
    msg = decode_window_input(orjson.dumps({"v": 2, "fields": list(FIELDS), "texts": {},
                                            "rows": [row]}))
    assert msg["rows"] == [row]
    for bad in ([*row, 5, None], [*row, "5", 3], row):  # version 3: both or neither, ints
        with pytest.raises(ValueError):
            decode_window_input(orjson.dumps({"v": 3, "fields": list(FIELDS), "texts": {},
                                              "rows": [bad]}))
