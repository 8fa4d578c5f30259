"""The live console in headless Chromium: the real Faust views (``install_console`` on a
``faust.App``) served by aiohttp over a WorkerStats the test controls; no Kafka needed."""

from __future__ import annotations

import itertools
import socket

import faust
import pytest

from streams.ops.stats import WorkerStats
from streams.views.console import install_console

_ids = itertools.count()


def _window(start: str, end: str, name: str, size: int, counts: list[tuple[str, int, str]]) -> dict:
    return {
        "@timestamp": start,
        "window": {"start": start, "end": end, "name": name, "size_seconds": size},
        "key": {"kubernetes_namespace": "shop"},
        "count": sum(c for _, c, _ in counts),
        "template_counts": [{"id": i, "count": c, "template": t} for i, c, t in counts],
    }


def fake_stats() -> WorkerStats:
    s = WorkerStats(pipeline="kubernetes")
    s.lines_in.update({"structure": 1200, "index": 1180})
    s.lines_out.update({"structure": 1190, "index": 1180})
    for part, (off, hw) in enumerate([(99, 150), (499, 500), (10, 12)]):
        ps = s.partition("logs.raw", part)
        ps.last_offset, ps.high_watermark, ps.records_in = off, hw, off + 1
    s.dead_letters.update({("decode", "bad_raw_message"): 3, ("structure", "internal_error"): 2})
    s.recent_windows.extend([
        _window("2026-11-25T10:00:00Z", "2026-11-25T10:01:00Z", "tumbling_60s", 60,
                [("t-order", 40, "order <*> placed by <*>"), ("t-pay", 7, "payment declined <*>")]),
        _window("2026-11-25T10:01:00Z", "2026-11-25T10:02:00Z", "tumbling_60s", 60,
                [("t-order", 35, "order <*> placed by <*>"), ("t-slow", 9, "slow query took <*>")]),
        # A coarser hopping window: not summed with the tumbling ones.
        _window("2026-11-25T09:57:00Z", "2026-11-25T10:02:00Z", "hopping_300s", 300,
                [("t-order", 500, "order <*> placed by <*>")]),
    ])
    s.recent_anomalies.append({
        "@timestamp": "2026-11-25T10:01:00Z",
        "window": {"start": "2026-11-25T10:01:00Z", "end": "2026-11-25T10:02:00Z", "name": "tumbling_60s"},
        "key": {"kubernetes_namespace": "payments"}, "detector": "rate_mad", "score": 9.1,
        "threshold": 3.0, "model": {"version": "rate_mad-1"}, "severity": "critical",
        "explanation": {"summary": "error burst in payments",
                        "items": [{"name": "error_count", "expected": 2, "observed": 40}]},
    })
    return s


def console_server(serve, stats: WorkerStats, **kwargs):
    app = faust.App(f"logriver-console-test-{next(_ids)}", web_enabled=True)
    kwargs.setdefault("probe_interval", None)  # health from the stats only
    install_console(app, stats, es_url=kwargs.pop("es_url", "http://127.0.0.1:9200"),
                    kafka_bootstrap=kwargs.pop("kafka_bootstrap", "127.0.0.1:9092"), **kwargs)
    return serve(app.web.web_app)


def wait_value(page, testid: str, expected: str, timeout_ms: int = 8000) -> None:
    page.page.wait_for_function(
        "([id, v]) => { const e = document.querySelector(`[data-testid=\"${id}\"]`);"
        " return e && (e.getAttribute('data-value') ?? e.textContent) === v; }",
        arg=[testid, expected], timeout=timeout_ms,
    )


def test_console_renders_refreshes_and_degrades(serve, page):
    stats = fake_stats()
    server = console_server(serve, stats)
    page.page.goto(server.url + "/console")
    wait_value(page, "refresh-count", "1")

    assert page.value("pipeline") == "kubernetes"
    assert page.value("health-status") == "ok"
    assert not page.page.locator('[data-testid="degraded-banner"]').is_visible()
    assert page.value("stage-in-structure") == "1200"
    assert page.value("stage-out-index") == "1180"
    assert page.value("lag-logs.raw-0") == "50"
    assert page.value("lag-logs.raw-1") == "0"
    assert page.value("lag-logs.raw-2") == "1"
    assert page.value("total-lag") == "51"
    assert page.value("dead-letters-total") == "5"
    assert page.value("dl-count-decode:bad_raw_message") == "3"
    # Top templates: the two tumbling windows summed (75, 9, 7), the hopping one left out.
    counts = page.page.locator('[data-testid="console-template-count"]')
    assert [counts.nth(i).get_attribute("data-value") for i in range(counts.count())] == ["75", "9", "7"]
    assert "order <*> placed by <*>" in page.page.locator("#templates").inner_text()
    rows = page.page.locator('[data-testid="console-anomaly-row"]')
    assert rows.count() == 1 and "error burst in payments" in rows.inner_text()
    page.screenshot("console.png")

    # It refreshes by itself: change counters on the server, see them on the page.
    def bump() -> None:
        stats.lines_in["structure"] += 800
        stats.dead_letters[("index", "mapping_error")] += 4

    server.call(bump)
    wait_value(page, "stage-in-structure", "2000")
    wait_value(page, "dead-letters-total", "9")
    assert page.value("dl-count-index:mapping_error") == "4"
    assert int(page.value("refresh-count")) >= 2

    # Elasticsearch down (as the worker's sink reports it): a clear banner.
    server.call(setattr, stats, "elasticsearch_ok", False)
    banner = page.page.locator('[data-testid="degraded-banner"]')
    banner.wait_for(state="visible", timeout=8000)
    assert "elasticsearch unreachable" in banner.inner_text()
    assert page.value("health-status") == "degraded"
    assert page.value("es-status") == "unreachable"
    page.screenshot("console-degraded.png")

    # And back.
    server.call(setattr, stats, "elasticsearch_ok", True)
    banner.wait_for(state="hidden", timeout=8000)
    assert page.errors == []
    assert page.outside_requests == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_console_probes_show_unreachable_services(serve, page):
    """The console's own probes: nothing listens on these ports, so both are unreachable
    even though the worker's counters still say ok."""
    port = _closed_port()
    server = console_server(serve, fake_stats(), probe_interval=0.2,
                            es_url=f"http://user:secret@127.0.0.1:{port}",
                            kafka_bootstrap=f"127.0.0.1:{port}")
    page.page.goto(server.url + "/console")
    banner = page.page.locator('[data-testid="degraded-banner"]')
    banner.wait_for(state="visible", timeout=10000)
    page.page.wait_for_function(
        "() => document.querySelector('[data-testid=\"degraded-banner\"]').textContent.includes('kafka')",
        timeout=10000)
    text = banner.inner_text()
    assert "elasticsearch unreachable" in text and "kafka unreachable" in text
    assert page.value("kafka-status") == "unreachable"
    assert "secret" not in page.page.content()
    assert page.errors == []


def test_console_says_so_when_the_worker_stops_answering(serve, page):
    server = console_server(serve, fake_stats())
    page.page.goto(server.url + "/console")
    wait_value(page, "refresh-count", "1")
    server.stop()
    banner = page.page.locator('[data-testid="degraded-banner"]')
    banner.wait_for(state="visible", timeout=8000)
    assert "Console data unavailable" in banner.inner_text()
    assert page.value("stage-in-structure") == "1200"  # the last numbers stay


@pytest.mark.parametrize("path", ["/console", "/console/data.json"])
def test_console_views_answer_without_a_browser(serve, path):
    import json
    import urllib.request

    server = console_server(serve, fake_stats())
    with urllib.request.urlopen(server.url + path, timeout=10) as resp:
        body = resp.read()
        assert resp.headers["Cache-Control"] == "no-store"
    if path.endswith(".json"):
        data = json.loads(body)
        assert data["health"]["status"] == "ok" and data["total_lag"] == 51
        assert data["windows"]["window"] == "tumbling_60s" and data["windows"]["windows"] == 2
        assert {r["stage"] for r in data["throughput"]} == {"structure", "index"}
    else:
        assert b"<!DOCTYPE html>" in body and b"http://" not in body and b"https://" not in body
