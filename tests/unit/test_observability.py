"""streams.ops.metrics: metric families from WorkerStats, /metrics and /health over HTTP,
log-derived namespace error rates, and the Grafana dashboard in sync with the exporter."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from streams.ops import grafana as dash
from streams.ops.metrics import (
    HistogramDeque,
    build_registry,
    instrument,
    namespace_error_rates,
    start_metrics_server,
)
from streams.ops.stats import WorkerStats
from streams.sources.base import ListPublisher
from streams.sources.receivers.syslog import SyslogReceiver

pytestmark = pytest.mark.timeout(60)


def populated() -> WorkerStats:
    s = instrument(WorkerStats(pipeline="kubernetes"))
    s.lines_in["structure"] += 10
    s.lines_out["structure"] += 9
    s.lines_in["index"] += 9
    s.lines_out["index"] += 9
    s.errors[("structure", "parse_error")] += 2
    s.dead_lettered([{"stage": "decode", "reason": "bad_batch"}, {"stage": "index", "reason": "mapper_parsing_exception"}])
    p = s.partition("logs.raw", 0)
    p.records_in, p.last_offset, p.high_watermark = 10, 9, 25
    s.partition("logs.raw", 1)  # nothing known yet: no lag sample
    for v in (0.02, 0.2, 3.0):
        s.bulk_seconds.append(v)
    s.window_lateness_seconds.append(12.0)
    s.late_events = 3
    s.model_versions["isolation_forest"] = "2026-11-26T00:00:00Z#4"
    s.recent_windows.extend([
        {"key": {"kubernetes_namespace": "shop", "kubernetes_container_name": "api"},
         "window": {"name": "tumbling60", "end": "2026-11-26T00:01:00Z"}, "count": 80, "error_count": 8},
        {"key": {"kubernetes_namespace": "shop", "kubernetes_container_name": "web"},
         "window": {"name": "tumbling60", "end": "2026-11-26T00:01:00Z"}, "count": 20, "error_count": 2},
        {"key": {"kubernetes_namespace": "shop", "kubernetes_container_name": "api"},
         "window": {"name": "tumbling60", "end": "2026-11-26T00:00:00Z"}, "count": 5, "error_count": 5},
        {"key": {"kubernetes_namespace": "payments"},
         "window": {"name": "hopping300", "end": "2026-11-26T00:01:00Z"}, "count": 0, "error_count": 0},
    ])
    return s


def samples(text: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


def exposed_names(stats: WorkerStats) -> set[str]:
    from prometheus_client import generate_latest

    return set(samples(generate_latest(build_registry(stats)).decode()))


def test_families_from_stats() -> None:
    from prometheus_client import generate_latest

    s = populated()
    got = samples(generate_latest(build_registry(s)).decode())

    def value(name: str, **labels: str) -> float:
        for smp in got[name]:
            if all(smp.labels.get(k) == v for k, v in labels.items()):
                return smp.value
        raise AssertionError(f"no {name} {labels}")

    assert value("logriver_lines_in_total", stage="structure", pipeline="kubernetes", role="worker") == 10
    assert value("logriver_lines_out_total", stage="index") == 9
    assert value("logriver_errors_total", stage="structure", reason="parse_error") == 2
    assert value("logriver_dead_letters_total", stage="decode", reason="bad_batch") == 1
    assert value("logriver_consumer_lag", topic="logs.raw", partition="0") == 15
    assert len(got["logriver_consumer_lag"]) == 1
    assert value("logriver_consumer_lag_sum") == 15
    assert value("logriver_bulk_seconds_count") == 3
    assert value("logriver_bulk_seconds_bucket", le="0.25") == 2
    assert value("logriver_bulk_seconds_bucket", le="+Inf") == 3
    assert value("logriver_window_lateness_seconds_bucket", le="30.0") == 1
    assert value("logriver_late_events_total") == 3
    assert value("logriver_model_info", detector="isolation_forest") == 1
    assert value("logriver_elasticsearch_up") == 1 and value("logriver_kafka_up") == 1
    assert value("logriver_namespace_error_ratio", namespace="shop", window="tumbling60") == pytest.approx(0.1)
    assert value("logriver_namespace_events", namespace="shop", window="tumbling60") == 100
    assert value("logriver_namespace_errors", namespace="shop", window="tumbling60") == 10
    assert value("logriver_namespace_error_ratio", namespace="payments") == 0
    assert "process_resident_memory_bytes" in got
    # a dedicated registry: nothing leaks into the global one
    assert not any(n.startswith("logriver_") for n in {m.name for m in REGISTRY.collect()})


def test_histogram_deque_keeps_recent_and_counts_all() -> None:
    d = HistogramDeque(maxlen=3, buckets=(1.0, 2.0))
    for v in (0.5, 1.5, 2.5, 0.1, 1.0):
        d.append(v)
    assert list(d) == [2.5, 0.1, 1.0]
    assert d.count == 5 and d.sum == pytest.approx(5.6)
    assert d.cumulative() == [("1.0", 3), ("2.0", 4), ("+Inf", 5)]
    s = WorkerStats()
    s.bulk_seconds.append(0.4)
    instrument(s)
    assert isinstance(s.bulk_seconds, HistogramDeque) and s.bulk_seconds.count == 1
    assert instrument(s).bulk_seconds is s.bulk_seconds  # idempotent


def test_namespace_error_rates_ignores_junk() -> None:
    ratio, events, errors = namespace_error_rates(
        [{"key": {}}, "junk", {"key": {"kubernetes_namespace": "a"}, "window": {}}]  # type: ignore[list-item]
    )
    assert ratio == events == errors == {}


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def test_http_metrics_and_health() -> None:
    s = populated()
    server = start_metrics_server(s, port=0)
    try:
        assert server.host == "127.0.0.1"
        code, body, ctype = _get(server.url + "/metrics")
        assert code == 200 and ctype.startswith("text/plain")
        assert "logriver_lines_in_total" in body.decode()
        code, body, ctype = _get(server.url + "/health")
        assert code == 200 and ctype == "application/json"
        assert json.loads(body)["status"] == "ok"
        s.elasticsearch_ok = False
        code, body, _ = _get(server.url + "/health")
        health = json.loads(body)
        assert code == 503 and health["status"] == "degraded"
        assert "elasticsearch unreachable" in health["reasons"]
        s.elasticsearch_ok = True
        s.last_progress_monotonic = time.monotonic() - 3600  # lag without progress
        code, body, _ = _get(server.url + "/health")
        assert code == 503 and any("lag" in r for r in json.loads(body)["reasons"])
        code, body, _ = _get(server.url + "/metrics")
        assert re.search(r"^logriver_degraded\{[^}]*\} 1\.0$", body.decode(), re.MULTILINE)
        assert _get(server.url + "/nope")[0] == 404
    finally:
        server.stop()


def test_collector_role_with_tailer_and_receiver_sources(tmp_path: Path) -> None:
    from prometheus_client import generate_latest

    from streams.sources.checkpoints import CheckpointStore
    from streams.sources.files import FileTailer

    log = tmp_path / "app.log"
    log.write_bytes(b"one\ntwo\n" + b"x" * 5000 + b"\n")
    pub = ListPublisher()
    tailer = FileTailer([str(log)], pub, CheckpointStore(tmp_path / "cp.json"), fmt="plain",
                        max_line_bytes=1024, multiline=None)

    async def run() -> SyslogReceiver:
        await tailer.drain()
        rec = SyslogReceiver(pub, tcp_port=None)
        async with rec:
            rec.count("invalid_frame")
        return rec

    receiver = asyncio.run(run())
    tailer.close()
    stats = WorkerStats(pipeline="node-agent", role="collector")
    text = generate_latest(build_registry(stats, [tailer, receiver])).decode()
    got = samples(text)
    out = {s.labels["stage"]: s.value for s in got["logriver_lines_out_total"]}
    assert out["collect"] == 3
    errs = {(s.labels["stage"], s.labels["reason"]): s.value for s in got["logriver_errors_total"]}
    assert errs[("collect", "truncated")] == 1
    assert errs[("receive_syslog", "invalid_frame")] == 1
    assert all(s.labels["role"] == "collector" for s in got["logriver_lines_out_total"])


def test_every_dashboard_panel_queries_an_exposed_metric() -> None:
    names = exposed_names(populated())
    board = dash.build_dashboard()
    assert board["panels"]
    for panel in board["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            metrics = set(re.findall(r"\b((?:logriver|process)_[a-z_]+)\b", target["expr"]))
            assert metrics, (panel["title"], target["expr"])
            missing = metrics - names
            assert not missing, f"panel {panel['title']!r} queries unknown {sorted(missing)}"
    for var in board["templating"]["list"][1:]:
        assert re.search(r"label_values\((\w+),", var["definition"])[1] in names  # type: ignore[index]


def test_dashboard_file_is_generated_from_code() -> None:
    assert dash.OUT.read_text() == dash.render(), (
        "deploy/grafana/logriver.json is stale: run python -m streams.ops.grafana"
    )


def test_idle_connections_hold_no_thread() -> None:
    import socket
    import threading

    server = start_metrics_server(populated(), port=0)
    before = threading.active_count()
    idle = []
    try:
        for _ in range(200):  # connect, send nothing
            idle.append(socket.create_connection((server.host, server.port), timeout=5))
        time.sleep(0.5)
        assert threading.active_count() == before  # one thread serves them all
        code, body, _ = _get(server.url + "/metrics")  # a scrape still gets its answer
        assert code == 200 and b"logriver_lines_in_total" in body
    finally:
        for s in idle:
            s.close()
        server.stop()


def test_kernel_drops_and_publisher_rejects_are_exported() -> None:
    from collections import Counter

    from prometheus_client import generate_latest

    class Receiver:
        source_type = "gelf"
        received, published = 10, 9

        def __init__(self) -> None:
            self.errors = Counter({"queue_full": 2})

        def kernel_drops(self) -> int:
            return 7

    class Publisher:
        def __init__(self) -> None:
            self.rejected = Counter({"record_too_large": 1})

    text = generate_latest(build_registry(WorkerStats(role="collector"),
                                          [Receiver(), Publisher()])).decode()
    errs = {(s.labels["stage"], s.labels["reason"]): s.value
            for s in samples(text)["logriver_errors_total"]}
    assert errs[("receive_gelf", "kernel_drop")] == 7
    assert errs[("receive_gelf", "queue_full")] == 2
    assert errs[("publish", "record_too_large")] == 1


def test_health_measures_stalls_on_the_monotonic_clock(monkeypatch) -> None:
    """A wall-clock step (NTP correcting a fresh VM's clock, a resumed laptop) is no stall,
    and a stall is one whatever the wall clock does (issue 17: no wall-clock intervals)."""
    from streams.ops.stats import WorkerStats

    s = WorkerStats(pipeline="p")
    s.partition("t", 0).high_watermark, s.partition("t", 0).last_offset = 100, 10  # lag
    s.progressed()
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 7200)  # the wall clock jumps 2 h
    assert s.health(stall_seconds=120)["status"] == "ok"
    assert 0 <= s.health()["uptime_seconds"] < 60
    monkeypatch.setattr(time, "time", lambda: real_time() - 7200)  # and back, past the start
    assert s.health()["uptime_seconds"] >= 0
    s.last_progress_monotonic -= 3600  # no progress for an hour of monotonic time
    assert s.health(stall_seconds=120)["status"] == "degraded"
