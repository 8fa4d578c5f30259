"""The replay report in headless Chromium: a known generated input, the numbers the engine
computed (runner Summary) on the page, no console errors, no request leaving the file."""

from __future__ import annotations

import inspect
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from streams.demo.loggen import generate
from streams.pipeline import load_pipeline
from streams.replay.runner import replay_file
from streams.views.report import ReportCollector, render_html

REPO = Path(__file__).resolve().parents[2]


def _replay_all(files: list[Path], collector: ReportCollector) -> dict:
    """Replay every generated file into one collector; the engine's own totals beside it."""
    pipeline = load_pipeline("kubernetes")
    extra = {}
    if "on_windows" in inspect.signature(replay_file).parameters:
        extra["on_windows"] = lambda metrics, anomalies: collector.add_anomalies(anomalies)
    totals = {"events": 0, "dead_letters": 0, "anomalies": 0, "lines": 0,
              "by_level": Counter(), "templates": Counter(), "dead_letter_reasons": Counter()}
    for f in files:
        s = replay_file(f, pipeline, on_events=collector.on_events, **extra)
        totals["events"] += s.events
        totals["lines"] += s.lines
        totals["dead_letters"] += s.dead_letters
        totals["anomalies"] += getattr(s, "anomalies", 0)
        totals["by_level"].update(s.by_level)
        totals["templates"].update(s.templates)
        totals["dead_letter_reasons"].update(s.dead_letter_reasons)
    return totals


def test_report_shows_the_engine_numbers(tmp_path: Path, page):
    gen = generate(tmp_path / "logs", 3000, seed=11, bad_lines=True)
    collector = ReportCollector(title="generated 3000 lines")
    # replay_file runs its own asyncio loop: not on this thread, where Playwright's sync API
    # already runs one.
    with ThreadPoolExecutor(1) as pool:
        engine = pool.submit(_replay_all, gen.files, collector).result(timeout=300)
    # A dead letter and an anomaly fed directly, so both sections are exercised even when
    # this input produces none.
    collector.add_dead_letters([{"stage": "structure", "reason": "internal_error",
                                 "detail": "KeyError: 'message'", "original": "{}"}])
    engine["dead_letters"] += 1
    engine["dead_letter_reasons"]["structure:internal_error"] += 1
    collector.add_anomalies([{
        "@timestamp": collector.totals()["first_event"],
        "window": {"start": collector.totals()["first_event"], "end": collector.totals()["last_event"],
                   "name": "tumbling_60s_by_kubernetes.namespace"},
        "key": {"kubernetes_namespace": "payments"}, "detector": "test_detector", "score": 12.0,
        "threshold": 3.0, "model": {"version": "test-1"}, "severity": "critical",
        "explanation": {"summary": "error burst in payments",
                        "items": [{"name": "error_count", "expected": 1.5, "observed": 40}]},
    }])
    engine["anomalies"] += 1
    report = tmp_path / "report.html"
    report.write_text(render_html(collector), encoding="utf-8")

    started = time.perf_counter()
    page.page.goto(report.as_uri())
    page.page.wait_for_selector('[data-testid="template-row"]')
    load_seconds = time.perf_counter() - started
    assert page.errors == []
    assert page.outside_requests == []
    assert load_seconds < 10

    assert int(page.value("total-events")) == engine["events"] == gen.events
    assert int(page.value("total-dead-letters")) == engine["dead_letters"]
    assert int(page.value("distinct-templates")) == len(engine["templates"])
    assert int(page.value("total-anomalies")) == engine["anomalies"]
    for level, n in engine["by_level"].items():
        assert int(page.value(f"level-count-{level}")) == n, level
    for reason, n in engine["dead_letter_reasons"].items():
        assert int(page.value(f"dead-letter-count-{reason}")) == n, reason
    # The template table: ranked by count, the engine's top template first.
    rows = page.page.locator('[data-testid="template-row"]')
    assert rows.count() == min(50, len(engine["templates"]))
    top_id, top_count = engine["templates"].most_common(1)[0]
    first = rows.nth(0)
    assert first.get_attribute("data-template-id") == top_id
    assert int(first.locator('[data-testid="template-count"]').get_attribute("data-value")) == top_count
    # Every chart is drawn, the anomaly is on the timeline with its explanation.
    for chart in ("chart-levels", "chart-services", "chart-new-templates", "chart-anomalies"):
        assert page.page.locator(f'svg[data-testid="{chart}"]').count() == 1, chart
    anomaly_rows = page.page.locator('[data-testid="anomaly-row"]')
    assert anomaly_rows.count() == engine["anomalies"]
    assert "error burst in payments" in page.page.locator("#anomalies").inner_text()
    # Filtering works in the page.
    page.page.fill("#tfilter", "payment declined")
    assert page.page.locator('[data-testid="template-row"]').count() >= 1
    assert "payment declined" in page.page.locator("#tbody").inner_text()
    page.page.fill("#tfilter", "")
    page.screenshot("report.png")
    assert page.errors == []


def test_large_report_stays_responsive(tmp_path: Path, page):
    """12,000 templates over two days: bounded buckets, a paginated table, fast load."""
    c = ReportCollector()
    t0 = 1_795_000_000
    batch = []
    for i in range(12_000):
        batch.append({
            "@timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + i * 15)),
            "message": f"job {i} done", "kubernetes": {"namespace": f"ns{i % 30}"},
            "log": {"level": "info" if i % 10 else "error", "template_id": f"id{i:05d}",
                    "template": f"job kind {i} done in <*> ms", "template_params": [str(i)]},
            "logriver": {"template_is_new": True},
        })
    c.add_events(batch)
    report = tmp_path / "large.html"
    report.write_text(render_html(c), encoding="utf-8")
    assert report.stat().st_size < 8_000_000

    started = time.perf_counter()
    page.page.goto(report.as_uri())
    page.page.wait_for_selector('[data-testid="template-row"]')
    assert time.perf_counter() - started < 10
    assert page.errors == []
    assert int(page.value("total-events")) == 12_000
    assert int(page.value("distinct-templates")) == 12_000
    assert int(page.value("bucket-count")) <= c.max_buckets
    assert "Showing the top 5,000 of 12,000 templates" in page.value("templates-note")
    assert page.page.locator('[data-testid="template-row"]').count() == 50
    assert "page 1 / 100" in page.value("template-page")
    page.page.click("#tnext")
    assert "page 2 / 100" in page.value("template-page")
    assert page.page.locator('[data-testid="template-row"] td').first.inner_text() == "51"
    page.screenshot("report-large.png")


def test_replay_command_writes_the_report(tmp_path: Path, page):
    gen = generate(tmp_path / "logs", 600, seed=3)
    f = max(gen.files, key=lambda p: p.stat().st_size)
    out = tmp_path / "cli-report.html"
    proc = subprocess.run(
        [sys.executable, "-m", "streams", "replay", str(f), "--pipeline", "kubernetes",
         "--report", str(out), "--json"],
        check=False, capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    import json

    summary = json.loads(proc.stdout)
    page.page.goto(out.as_uri())
    page.page.wait_for_selector('[data-testid="template-row"]')
    assert page.errors == []
    assert int(page.value("total-events")) == summary["events"]
    assert int(page.value("run-lines")) == summary["lines"]
    assert int(page.value("distinct-templates")) == summary["distinct_templates"]
    assert int(page.value("total-anomalies")) == summary.get("anomalies", 0)
    for level, n in summary["by_level"].items():
        assert int(page.value(f"level-count-{level}")) == n
