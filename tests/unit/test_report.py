"""ReportCollector aggregation (bounded memory, exact counts) and the HTML it renders."""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from streams.demo.loggen import generate
from streams.pipeline import load_pipeline
from streams.replay.runner import replay_file
from streams.views.report import ReportCollector, epoch_seconds, render_html, service_of
from streams.views.report.collector import BUCKET_LADDER

T0 = 1_795_000_000  # 2026-11-18T...


def ts(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def event(t: float, *, level: str | None = "info", tid: str | None = "t1", template: str = "a <*>",
          params: list[str] | None = None, new: bool = False, service: str | None = None,
          container: str | None = "web", namespace: str | None = "shop", message: str = "a 1") -> dict:
    ev: dict = {"@timestamp": ts(t), "message": message, "log": {}, "logriver": {}}
    if level is not None:
        ev["log"]["level"] = level
    if tid is not None:
        ev["log"]["template_id"] = tid
        ev["log"]["template"] = template
        if params is not None:
            ev["log"]["template_params"] = params
    if new:
        ev["logriver"]["template_is_new"] = True
    k8s: dict = {}
    if namespace:
        k8s["namespace"] = namespace
    if container:
        k8s["container"] = {"name": container}
    if k8s:
        ev["kubernetes"] = k8s
    if service:
        ev["service"] = {"name": service}
    return ev


def anomaly(t: float, severity: str, score: float, detector: str = "rate_mad") -> dict:
    return {
        "@timestamp": ts(t),
        "window": {"start": ts(t), "end": ts(t + 60), "name": "tumbling_60s"},
        "key": {"kubernetes_namespace": "shop"},
        "detector": detector, "score": score, "threshold": 3.0,
        "model": {"version": "rate_mad-abc"}, "severity": severity,
        "explanation": {"summary": f"{severity} {score}",
                        "items": [{"name": "count", "expected": 10, "observed": 100}]},
    }


def test_service_fallbacks():
    assert service_of(event(T0, service="checkout-svc")) == "checkout-svc"
    assert service_of(event(T0)) == "web"
    assert service_of(event(T0, container=None)) == "shop"
    assert service_of(event(T0, container=None, namespace=None)) == "-"


def test_epoch_seconds_formats():
    assert epoch_seconds("2026-11-25T10:00:00Z") == epoch_seconds("2026-11-25T10:00:00.999999Z")
    assert epoch_seconds("2026-11-25T12:00:00+02:00") == epoch_seconds("2026-11-25T10:00:00Z")
    assert epoch_seconds("2026-11-25T05:00:00.5-05:00") == epoch_seconds("2026-11-25T10:00:00Z")
    assert epoch_seconds("2026-11-25T10:00:00.123") == epoch_seconds("2026-11-25T10:00:00Z")
    assert epoch_seconds("not a time at all!!") is None
    assert epoch_seconds(None) is None


def test_counts_levels_services_templates_and_new():
    c = ReportCollector()
    c.add_events([
        event(T0, level="info", tid="a", new=True, params=["1"]),
        event(T0 + 1, level="error", tid="a", params=["2"]),
        event(T0 + 2, level=None, tid="b", new=True, container="api"),
        event(T0 + 3, tid=None),
    ])
    tot = c.totals()
    assert tot["events"] == 4
    assert tot["by_level"] == {"info": 2, "error": 1, "-": 1}
    assert tot["by_service"] == {"web": 3, "api": 1}
    assert tot["distinct_templates"] == 2 and tot["new_templates"] == 2
    assert c.events_with_template == 3
    a = c.templates["a"]
    assert a.count == 2 and a.levels == Counter({"info": 1, "error": 1})
    assert a.first_seen == T0 and a.last_seen == T0 + 1 and a.new_at == T0
    assert [e["params"] for e in a.examples] == [["1"], ["2"]]
    assert sum(b.new_templates for _, b in c.timeline()) == 2


def test_buckets_grow_through_the_ladder_and_merge_exactly():
    c = ReportCollector(max_buckets=50)
    events = [event(T0 + i * 37, level=("error" if i % 7 == 0 else "info"), tid=f"t{i % 5}",
                    new=(i < 5)) for i in range(1000)]  # ~10 h 17 min
    c.add_events(events)
    assert c.bucket_seconds in BUCKET_LADDER and c.bucket_seconds > 1
    timeline = c.timeline()
    assert 1 < len(timeline) <= 50
    assert len(c.buckets) <= 50
    # Exact: every event lands in the bucket of its own time at the final size.
    expected: Counter = Counter()
    expected_err: Counter = Counter()
    for i in range(1000):
        start = (T0 + i * 37) // c.bucket_seconds * c.bucket_seconds
        expected[start] += 1
        expected_err[start] += i % 7 == 0
    got = {start: b.total for start, b in timeline if b.total}
    assert got == dict(expected)
    assert {s: b.levels["error"] for s, b in timeline if b.total} == dict(expected_err)
    assert sum(b.total for _, b in timeline) == 1000
    assert sum(b.new_templates for _, b in timeline) == 5
    # Timeline starts are aligned and contiguous.
    starts = [s for s, _ in timeline]
    assert all(b - a == c.bucket_seconds for a, b in itertools.pairwise(starts))


def test_out_of_order_events_and_smallest_span():
    c = ReportCollector(max_buckets=10)
    c.add_events([event(T0 + 5), event(T0), event(T0 + 3)])
    assert c.bucket_seconds == 1 and len(c.timeline()) == 6
    c.add_events([event(T0 - 100)])
    assert c.bucket_seconds == 30 and sum(b.total for _, b in c.timeline()) == 4


def test_examples_and_parameter_values_are_capped():
    c = ReportCollector(examples_per_template=3, max_param_values=4)
    c.add_events(event(T0 + i, tid="t", params=[str(i % 10), "x" * 500]) for i in range(100))
    t = c.templates["t"]
    assert t.count == 100 and len(t.examples) == 3
    assert len(t.params[0]) == 4 and sum(t.params[0].values()) + t.params_other[0] == 100
    assert t.params[0]["0"] == 10
    assert len(next(iter(t.params[1]))) <= 120  # long values shortened
    assert t.params[1].total() == 100


def test_template_cap_counts_the_rest_together():
    c = ReportCollector(max_templates=10)
    c.add_events(event(T0, tid=f"t{i}", new=True) for i in range(25))
    assert len(c.templates) == 10
    assert c.other_template_events == 15 and c.distinct_templates == 25
    assert c.events == 25
    html = render_html(c)
    assert "past the collector" in html


def test_service_cap():
    c = ReportCollector(max_services=3)
    c.add_events(event(T0, service=f"s{i}") for i in range(10))
    assert set(c.by_service) == {"s0", "s1", "s2", "(other)"}
    assert c.by_service["(other)"] == 7


def test_dead_letters_counted_with_capped_examples():
    c = ReportCollector(examples_per_dead_letter_reason=2)
    letters = [{"stage": "structure", "reason": "internal_error", "detail": f"boom {i}",
                "original": "x" * 1000, "time": "2026-11-25T10:00:00Z"} for i in range(5)]
    letters.append({"stage": "decode", "reason": "bad_raw_message", "detail": "bad"})
    c.on_events([], letters)
    assert c.dead_letters == 6
    assert c.dead_letter_reasons == Counter({"structure:internal_error": 5, "decode:bad_raw_message": 1})
    assert len(c.dead_letter_examples["structure:internal_error"]) == 2
    assert len(c.dead_letter_examples["structure:internal_error"][0]["original"]) <= 400


def test_anomalies_keep_the_most_severe_and_count_all():
    c = ReportCollector(max_anomalies=3)
    docs = [anomaly(T0 + i * 60, "minor", 3.5 + i) for i in range(5)]
    docs += [anomaly(T0 + 400, "critical", 9.5), anomaly(T0 + 500, "major", 5.0, detector="novelty")]
    c.add_anomalies(docs)
    assert c.anomalies_total == 7 and c.anomalies_dropped == 4
    kept = c.anomalies()
    assert [d["severity"] for d in kept] == ["minor", "critical", "major"]  # in time order
    assert kept[0]["score"] == 7.5  # the highest-scoring minor one (T0 + 240)
    assert c.anomalies_by_detector == Counter({"rate_mad": 6, "novelty": 1})
    assert c.totals()["anomalies"] == 7
    assert sum(b.anomalies for _, b in c.timeline()) == 7


def _testid_values(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-testid="([^"]+)" data-value="([^"]*)"', html))


def test_render_is_self_contained_and_shows_the_numbers():
    c = ReportCollector(title="t <&> report")
    c.add_events([event(T0, level="error", new=True, message="</script><script>alert(1)</script>"),
                  event(T0 + 90, template="b </script> <*>", tid="t2")])
    c.add_dead_letters([{"stage": "decode", "reason": "bad_raw_message", "detail": "<b>x</b>"}])
    c.add_anomalies([anomaly(T0 + 60, "major", 5.0)])
    html = render_html(c)
    assert html.startswith("<!DOCTYPE html>")
    # No external resources of any kind.
    assert not re.search(r'<(link|img|iframe)\b|\bsrc=|@import|url\(', html)
    assert "http://" not in html and "https://" not in html
    # Untrusted text is escaped, and the embedded JSON cannot close its script element.
    assert "<script>alert(1)" not in html and "<b>x</b>" not in html
    assert html.count("</script>") == 2
    values = _testid_values(html)
    assert values["total-events"] == "2"
    assert values["level-count-error"] == "1" and values["level-count-info"] == "1"
    assert values["service-count-web"] == "2"
    assert values["distinct-templates"] == "2" and values["new-templates"] == "1"
    assert values["total-anomalies"] == "1" and values["total-dead-letters"] == "1"
    assert values["dead-letter-count-decode:bad_raw_message"] == "1"
    assert 'data-testid="chart-levels"' in html and 'data-testid="chart-anomalies"' in html
    assert "t &lt;&amp;&gt; report" in html


def test_render_empty_collector():
    html = render_html(ReportCollector())
    assert _testid_values(html)["total-events"] == "0"
    assert "No timestamped events." in html and "No anomalies." in html


def test_ten_thousand_templates_render_small_and_fast():
    c = ReportCollector(max_buckets=120)
    for i in range(12_000):
        c.add_events([event(T0 + i, tid=f"tpl{i:05d}", template=f"message kind {i} <*>",
                            params=[str(i)], new=True)] * (1 + (i % 3 == 0)))
    started = time.perf_counter()
    html = render_html(c, max_template_rows=2000)
    assert time.perf_counter() - started < 10
    assert len(html) < 4_000_000
    assert "Showing the top 2,000 of 12,000 templates" in html
    # Bars per chart are bounded by the buckets, not by the events.
    assert len(c.timeline()) <= 120
    assert html.count("<g class=\"bar\">") <= 3 * 120


@pytest.mark.slow
def test_matches_the_runner_summary(tmp_path: Path):
    gen = generate(tmp_path, 1500, seed=7, bad_lines=True)
    pipeline = load_pipeline("kubernetes")
    c = ReportCollector(max_buckets=30)
    events = dls = 0
    levels: Counter = Counter()
    templates: set[str] = set()
    for f in gen.files:
        s = replay_file(f, pipeline, on_events=c.on_events)
        events += s.events
        dls += s.dead_letters
        levels.update(s.by_level)
        templates |= set(s.templates)
    tot = c.totals()
    assert tot["events"] == events == gen.events
    assert tot["dead_letters"] == dls
    assert tot["by_level"] == dict(levels)
    assert set(c.templates) == templates and tot["distinct_templates"] == len(templates)
    assert sum(b.total for _, b in c.timeline()) + c.events_without_time == events
    assert len(c.timeline()) <= 30


def test_merged_templates_are_one_row():
    """A template merged into another (``Summary.aliases``): one row with both counts, also
    in the runner's summary."""
    from streams.replay.runner import Summary

    c = ReportCollector()
    evs = [event(T0 + i, tid="a", template="x <*>") for i in range(3)]
    evs += [event(T0 + 10 + i, tid="b", template="x y", level="error") for i in range(2)]
    c.add_events(evs)
    summary = Summary()
    summary.add(evs, [])
    summary.aliases = {"b": "a"}
    c.set_run(summary)
    rows = c.top_templates()
    assert [(s.id, s.count) for s in rows] == [("a", 5)]
    assert rows[0].levels == Counter({"info": 3, "error": 2}) and rows[0].last_seen == T0 + 11
    top = summary.as_dict()
    assert top["distinct_templates"] == 1 and top["top_templates"][0]["count"] == 5


def test_an_alert_published_again_counts_once_and_shows_its_latest_state():
    first = anomaly(T0, "minor", 4.0)
    first.update({"alert": {"id": "a1", "start": ts(T0), "end": ts(T0 + 60), "windows": 1,
                            "status": "open"},
                  "service": {"name": "checkout"},
                  "influencers": [{"field": "log.template_id", "value": "t1",
                                   "template": "payment gateway timeout", "expected": 0.5,
                                   "observed": 40}]})
    later = {**first, "severity": "critical", "score": 12.0,
             "alert": {**first["alert"], "end": ts(T0 + 180), "windows": 3, "status": "closed"}}
    c = ReportCollector()
    c.add_anomalies([first])
    c.add_anomalies([later])
    assert c.anomalies_total == 1 and c.anomalies_by_severity == Counter({"critical": 1})
    [kept] = c.anomalies()
    assert kept["alert"]["status"] == "closed" and kept["score"] == 12.0
    html = render_html(c)
    assert 'data-testid="anomaly-service">checkout' in html
    assert "payment gateway timeout" in html and "closed" in html
