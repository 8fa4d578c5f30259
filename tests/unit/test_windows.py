"""Event-time windows: assignment, lateness, merge, snapshot/restore, batch equivalence."""

from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.windows import (
    Aggregate,
    WindowAggregator,
    WindowSpec,
    batch_recompute,
    format_time_us,
)

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def ev(sec: float, ns: str = "a", level: str = "info", tid: str = "t1", msg: str = "hello",
       duration_ns: int | None = None, new: bool = False) -> dict:
    e = {"@timestamp": format_time_us(round((T0 + sec) * 1_000_000)), "message": msg,
         "log": {"level": level, "template_id": tid, "template": f"tpl {tid}"},
         "kubernetes": {"namespace": ns}, "logriver": {"template_is_new": new}}
    if duration_ns is not None:
        e["event"] = {"duration": duration_ns}
    return e


def docs_key(d: dict) -> tuple:
    return (d["window"]["name"], d["window"]["start"], sorted(d["key"].items(), key=str))


def test_tumbling_assignment_and_doc_fields() -> None:
    spec = WindowSpec("tumbling", 60, allowed_lateness=5, key_fields=("kubernetes.namespace",))
    agg = WindowAggregator([spec], pipeline="p")
    for e in [ev(1, msg="héllo"), ev(59.999, level="error"), ev(60), ev(61, ns="b", level="fatal")]:
        assert agg.add(e) == []
    docs = [c.doc for c in agg.flush()]
    assert [(d["window"]["start"], d["key"], d["count"]) for d in docs] == [
        (format_time_us(T0 * 10**6), {"kubernetes_namespace": "a"}, 2),
        (format_time_us((T0 + 60) * 10**6), {"kubernetes_namespace": "a"}, 1),
        (format_time_us((T0 + 60) * 10**6), {"kubernetes_namespace": "b"}, 1),
    ]
    first = docs[0]
    assert first["@timestamp"] == first["window"]["start"]
    assert first["window"]["end"] == format_time_us((T0 + 60) * 10**6)
    assert first["error_count"] == 1 and first["error_ratio"] == 0.5
    assert first["bytes"] == len("héllo".encode()) + len("hello")
    assert first["logriver"]["pipeline"] == "p"
    assert docs[2]["error_count"] == 1  # fatal counts as an error


def test_hopping_assignment() -> None:
    spec = WindowSpec("hopping", 300, 60, allowed_lateness=0)
    assert spec.window_starts(125 * 10**6) == [s * 10**6 for s in (-120, -60, 0, 60, 120)]
    agg = WindowAggregator([spec])
    agg.add(ev(125))
    docs = [c.doc for c in agg.flush()]
    assert len(docs) == 5 and all(d["count"] == 1 for d in docs)
    assert spec.name == "hopping_300s_60s_by_all"
    with pytest.raises(ValueError):
        WindowSpec("hopping", 60, 120)


def test_late_event_goes_to_late_list_not_dropped() -> None:
    spec = WindowSpec("tumbling", 60, allowed_lateness=10)
    agg = WindowAggregator([spec])
    assert agg.add(ev(100)) == []
    assert agg.add(ev(91)) == []  # within lateness
    late = agg.add(ev(85))
    assert [(x.reason, x.spec) for x in late] == [("behind_watermark", spec.name)]
    assert late[0].event["@timestamp"] == ev(85)["@timestamp"]
    assert agg.late_counts[spec.name] == 1
    assert agg.add({"message": "no time"})[0].reason == "invalid_timestamp"
    # an explicit clock closes [60, 120); a later event for it is late as window_closed
    closed = agg.close_ready(now_watermark=T0 + 130)
    assert [c.doc["count"] for c in closed] == [2]
    assert [x.reason for x in agg.add(ev(119))] == ["window_closed"]
    assert agg.add(ev(150)) == [] and agg.add(ev(141)) == []
    assert agg.add(ev(139))[0].reason == "behind_watermark"
    assert agg.late_counts[spec.name] == 4
    # nothing vanished: every valid event is either in a closed window or reported late
    counted = sum(c.doc["count"] for c in closed + agg.flush())
    assert counted == 7 - 3


def test_window_closed_reason() -> None:
    spec = WindowSpec("tumbling", 60, allowed_lateness=100)
    agg = WindowAggregator([spec])
    agg.add(ev(10))
    agg.close_ready(now_watermark=T0 + 200)  # closes [0, 60)
    late = agg.add(ev(20))
    assert late[0].reason == "window_closed" and agg.flush() == []


def test_latency_percentiles_and_serialization() -> None:
    a = Aggregate()
    for ms in range(1, 1001):
        a.add(ev(0, duration_ns=ms * 1_000_000))
    p = a.latency_percentiles()
    assert p is not None and p["count"] == 1000
    for name, exact in (("p50", 500), ("p90", 900), ("p95", 950), ("p99", 990)):
        assert abs(p[name] - exact) / exact < 0.03
    b = Aggregate.from_dict(orjson.loads(orjson.dumps(a.to_dict())))
    assert b == a and b.latency_percentiles() == p


def _random_events(rng: random.Random, n: int) -> list[dict]:
    return [ev(rng.uniform(0, 600), ns=rng.choice("abc"), level=rng.choice(["info", "error"]),
               tid=f"t{rng.randrange(30)}", duration_ns=rng.randrange(10**5, 10**9),
               new=rng.random() < 0.1) for _ in range(n)]


@pytest.mark.parametrize("max_templates", [1000, 5])
def test_merge_is_associative_and_equals_single_pass(max_templates: int) -> None:
    rng = random.Random(3)
    events = _random_events(rng, 300)
    whole = Aggregate(max_templates)
    parts = [Aggregate(max_templates) for _ in range(3)]
    for e in events:
        whole.add(e)
        parts[rng.randrange(3)].add(e)

    def copy(a: Aggregate) -> Aggregate:
        return Aggregate.from_dict(a.to_dict())

    left = copy(parts[0]).merge(copy(parts[1])).merge(copy(parts[2]))
    right = copy(parts[0]).merge(copy(parts[1]).merge(copy(parts[2])))
    swapped = copy(parts[2]).merge(copy(parts[0])).merge(copy(parts[1]))
    assert left == right == swapped == whole
    assert whole.truncated == (max_templates == 5)
    if not whole.truncated:
        assert whole.distinct_templates == len({e["log"]["template_id"] for e in events})


def test_snapshot_restore_equals_uninterrupted_run() -> None:
    specs = [WindowSpec("tumbling", 60, allowed_lateness=15, key_fields=("kubernetes.namespace",)),
             WindowSpec("hopping", 120, 60, allowed_lateness=15, key_fields=("log.level",))]
    rng = random.Random(5)
    events = sorted(_random_events(rng, 400), key=lambda e: e["@timestamp"])
    events = [(e, rng.randrange(2)) for e in events]

    def run(crash_at: int | None) -> list[dict]:
        agg = WindowAggregator(specs)
        out = []
        for i, (e, part) in enumerate(events):
            if i == crash_at:  # simulated crash: only the snapshot survives
                state = orjson.loads(orjson.dumps(agg.snapshot()))
                agg = WindowAggregator(specs)
                agg.restore(state)
            agg.add(e, part)
            if i % 37 == 0:
                out += [c.doc for c in agg.close_ready()]
        return out + [c.doc for c in agg.flush()]

    baseline = run(None)
    assert baseline == run(123) == run(301)
    assert sorted(baseline, key=docs_key) == sorted(batch_recompute([e for e, _ in events], specs),
                                                     key=docs_key)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 400), st.floats(0, 20), st.sampled_from("ab"),
                          st.sampled_from(["info", "error", "fatal"]), st.integers(0, 8),
                          st.integers(0, 2), st.booleans()),
                min_size=1, max_size=80))
def test_out_of_order_within_lateness_equals_batch(items: list) -> None:
    specs = [WindowSpec("tumbling", 30, allowed_lateness=20, key_fields=("kubernetes.namespace",)),
             WindowSpec("hopping", 60, 20, allowed_lateness=20,
                        key_fields=("log.level", "kubernetes.namespace"))]
    events = [(ev(t, ns=ns, level=lvl, tid=f"t{tid}", duration_ns=(tid + 1) * 10**6), t + d, p, c)
              for t, d, ns, lvl, tid, p, c in items]
    arrival = sorted(events, key=lambda x: x[1])  # each event delayed by at most the lateness
    agg = WindowAggregator(specs)
    closed = []
    for e, _, part, close_now in arrival:
        assert agg.add(e, part) == []
        if close_now:
            closed += [c.doc for c in agg.close_ready()]
    closed += [c.doc for c in agg.flush()]
    expected = batch_recompute([e for e, *_ in events], specs)
    assert sorted(closed, key=docs_key) == sorted(expected, key=docs_key)


class PerWindowOracle:
    """The straightforward aggregator panes replace: one Aggregate per (window, key), an event
    added to every open window holding it. Same lateness rules, written independently."""

    def __init__(self, specs: list[WindowSpec]) -> None:
        self.specs = specs
        self.windows: list[dict] = [{} for _ in specs]
        self.closed: list[int | None] = [None for _ in specs]
        self.newest: dict[int, int] = {}

    def add(self, e: dict, part: int) -> list[tuple[str, str, tuple]]:
        from streams.windows.spec import parse_time_us

        ts = parse_time_us(e["@timestamp"])
        self.newest[part] = max(self.newest.get(part, ts), ts)
        late = []
        for i, spec in enumerate(self.specs):
            starts = spec.window_starts(ts)
            if ts < self.newest[part] - spec.lateness_us:
                late.append((spec.name, "behind_watermark", tuple(starts)))
                continue
            if self.closed[i] is not None:
                missed = [s for s in starts if s + spec.size_us <= self.closed[i]]
                if missed:
                    late.append((spec.name, "window_closed", tuple(missed)))
                starts = [s for s in starts if s not in missed]
            key = spec.key_of(e, spec.split_paths())
            for s in starts:
                self.windows[i].setdefault((s, key), Aggregate()).add(e)
        return late

    def close(self, clock_us: int) -> list[tuple]:
        out = []
        for i, spec in enumerate(self.specs):
            limit = clock_us - spec.lateness_us
            ready = sorted(k for k in self.windows[i] if k[0] + spec.size_us <= limit)
            self.closed[i] = max(self.closed[i] or limit, limit)
            out += [(spec.name, s, k, self.windows[i].pop((s, k)).to_dict()) for s, k in ready]
        return out


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 600), st.sampled_from("ab"), st.integers(0, 5),
                          st.integers(0, 1), st.one_of(st.none(), st.floats(0, 700))),
                min_size=1, max_size=60))
def test_panes_equal_one_aggregate_per_window_under_any_closing(items: list) -> None:
    """Hopping windows built from panes (here also widths gcd(90, 60) = 30 and a tumbling
    window) give the same documents and the same late reports as per-window state, whatever
    the arrival order and the explicit clocks that close windows in between."""
    from streams.windows.spec import parse_time_us

    specs = [WindowSpec("hopping", 90, 60, allowed_lateness=30, key_fields=("kubernetes.namespace",)),
             WindowSpec("hopping", 300, 60, allowed_lateness=100),
             WindowSpec("tumbling", 60, allowed_lateness=45, key_fields=("log.level",))]
    agg, oracle = WindowAggregator(specs), PerWindowOracle(specs)
    got, want, clock = [], [], None
    for t, ns, tid, part, close_at in items:
        e = ev(t, ns=ns, level="error" if tid == 0 else "info", tid=f"t{tid}")
        late = agg.add(e, part)
        assert [(x.spec, x.reason, tuple(parse_time_us(w) for w in x.windows)) for x in late] \
            == oracle.add(e, part)
        if close_at is not None and (clock is None or close_at > clock):
            clock = close_at  # an event-time clock only moves forward
            got += [(c.spec.name, c.start_us, c.key, c.aggregate.to_dict())
                    for c in agg.close_ready(T0 + clock)]
            want += oracle.close(round((T0 + clock) * 1_000_000))
    assert got == want
    end = round((T0 + 2000) * 1_000_000)
    assert [(c.spec.name, c.start_us, c.key, c.aggregate.to_dict())
            for c in agg.close_ready(T0 + 2000)] == oracle.close(end)
    assert agg.open_windows() == 0


def test_template_texts_follow_open_state_not_history() -> None:
    """Texts are part of every snapshot: after windows close, only those of templates still
    counted in an open pane remain, however many templates the stream has seen."""
    agg = WindowAggregator([WindowSpec("tumbling", 60, allowed_lateness=0)])
    docs = []
    for i in range(3000):  # a new template every event, 50 minutes
        agg.add(ev(i, tid=f"t{i}"))
        docs += [c.doc for c in agg.close_ready()]
    assert len(docs) == 49  # every window closed but the last
    assert all(tc["template"] == f"tpl {tc['id']}" for d in docs for tc in d["template_counts"])
    open_ids = {t for panes in agg.panes for a in panes.values() for t in a.templates}
    assert set(agg.template_text) == open_ids and len(open_ids) == 60
    assert len(orjson.dumps(agg.snapshot())) < 20_000


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_source_catching_up_holds_windows_open_until_it_is_idle() -> None:
    """A node agent catching up reads one container's backlog ahead of another's: the
    lagging stream's events are on time for its own progress, so they are counted, not
    dead-lettered as late (they were, 72% of a backfill, with one watermark per raw
    partition); a stream that went quiet stops holding windows open."""
    spec = WindowSpec("tumbling", 60, allowed_lateness=30)
    clock = Clock()
    agg = WindowAggregator([spec], idle_source_seconds=10, clock=clock)
    assert agg.add(ev(0, ns="b"), source="p0:b") == []
    assert all(agg.add(ev(s, ns="a"), source="p0:a") == [] for s in range(0, 3600, 20))
    assert agg.close_ready() == []  # b (at 0) holds every window open
    assert all(agg.add(ev(s, ns="b"), source="p0:b") == [] for s in range(20, 600, 20))
    closed = agg.close_ready()
    assert closed
    # watermark: stream b's newest (580) - 30: windows ending by 550 close, a's later ones wait
    assert {c.doc["window"]["end"] for c in closed} <= {format_time_us((T0 + e) * 1_000_000)
                                                        for e in range(60, 551, 60)}
    assert agg.close_ready() == []
    clock.now = 11  # b idle: a alone holds the watermark
    assert agg.add(ev(3600, ns="a"), source="p0:a") == []
    later = agg.close_ready()
    assert later and max(c.doc["window"]["end"] for c in later) == format_time_us((T0 + 3540) * 1_000_000)
    assert "p0:b" not in agg.max_time
    counted = sum(c.doc["count"] for c in closed + later + agg.flush())
    assert counted == 180 + 30 + 1


def test_without_idleness_every_source_holds_the_watermark() -> None:
    spec = WindowSpec("tumbling", 60, allowed_lateness=0)
    agg = WindowAggregator([spec])
    agg.add(ev(500), source="x")
    agg.add(ev(10), source="y")
    assert [c.doc["window"]["start"] for c in agg.close_ready()] == []
    agg.add(ev(200), source="y")
    # watermark min(500, 200): [0, 60) closes; [180, 240) (y's 200) and x's window wait
    assert [c.doc["window"]["start"] for c in agg.close_ready()] == [format_time_us(T0 * 1_000_000)]
    state = orjson.loads(orjson.dumps(agg.snapshot()))
    again = WindowAggregator([spec])
    again.restore(state)
    assert again.max_time == {"x": 500_000_000 + T0 * 1_000_000, "y": 200_000_000 + T0 * 1_000_000}


def test_merged_templates_count_once_in_open_windows_and_after() -> None:
    """A template merged into another (streams.templates aliases): its counts in windows still
    open move to the survivor, and its events still to come count there; a snapshot keeps it."""
    spec = WindowSpec("tumbling", 60, allowed_lateness=0, key_fields=("kubernetes.namespace",))
    agg = WindowAggregator([spec], pipeline="p")
    for e in [ev(1, tid="a"), ev(2, tid="b", level="error"), ev(3, tid="b")]:
        agg.add(e)
    agg.alias("b", "a")
    restored = WindowAggregator([spec], pipeline="p")
    restored.restore(orjson.loads(orjson.dumps(agg.snapshot())))
    for a in (agg, restored):
        a.add(ev(4, tid="b"))
        doc = next(c.doc for c in a.flush())
        assert doc["template_counts"] == [{"id": "a", "count": 4, "template": "tpl a"}]
        assert doc["error_template_counts"] == [{"id": "a", "count": 1, "template": "tpl a"}]
        assert doc["distinct_templates"] == 1


def test_window_input_carries_aliases_and_rejects_malformed_ones() -> None:
    from streams.windows.rows import decode_window_input

    ok = {"v": 2, "fields": ["kubernetes.namespace"], "texts": {}, "aliases": {"b": "a"}, "rows": []}
    assert decode_window_input(orjson.dumps(ok))["aliases"] == {"b": "a"}
    with pytest.raises(ValueError):
        decode_window_input(orjson.dumps({**ok, "aliases": {"b": 1}}))


def test_a_windows_template_text_comes_from_its_own_events_whatever_the_arrival_order() -> None:
    """Each raw partition's miner generalizes a template on its own schedule, so one template
    id reaches the windows with several texts. A window named it with whichever text arrived
    first (the live worker reads partitions at their own pace, a replay in event time): the
    live alerts and the replay's differed in their template texts. Now a window's text is the
    most general one its own events carried, whatever the order."""
    narrow, wide = "could not created <*>: connection reset", "could not <*> <*>: connection reset"

    def e(sec: float, text: str) -> dict:
        return {**ev(sec, level="error"), "log": {"level": "error", "template_id": "t1",
                                                  "template": text}}

    early, later = [e(10, narrow), e(20, narrow)], [e(70, wide), e(80, narrow)]
    docs = []
    for order in (early + later, later + early, [*reversed(later), *reversed(early)]):
        agg = WindowAggregator([WindowSpec("tumbling", 60, allowed_lateness=3600)])
        for x in order:
            assert agg.add(x) == []
        docs.append([c.doc for c in agg.flush()])
    assert docs[0] == docs[1] == docs[2]
    assert [d["template_counts"][0]["template"] for d in docs[0]] == [narrow, wide]
    merged = Aggregate()
    for x in reversed(later):
        one = Aggregate()
        one.add(x)
        merged.merge(one)
    assert merged.texts == {"t1": wide}
    assert Aggregate.from_dict(merged.to_dict()) == merged
