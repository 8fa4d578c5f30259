"""Detectors on synthetic window series: what must alert does, what must not does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from streams.anomaly import (
    DetectorSet,
    IsolationForestDetector,
    LatencyDetector,
    NoveltyDetector,
    PCADetector,
    RateDetector,
    default_detectors,
)
from streams.windows import format_time_us

T0 = 1_767_225_600 * 10**6
NAME = "tumbling_60s_by_service.name"
REQUIRED = ("@timestamp", "window", "key", "detector", "score", "threshold", "model",
            "severity", "explanation")


def doc(i: int, count: int = 100, errors: int = 0, templates: dict | None = None,
        error_templates: dict | None = None, latency: dict | None = None,
        service: str = "api") -> dict:
    start = T0 + i * 60 * 10**6
    tc = templates if templates is not None else {"ok": count - errors, "err": errors}
    return {
        "@timestamp": format_time_us(start),
        "window": {"start": format_time_us(start), "end": format_time_us(start + 60 * 10**6),
                   "size_seconds": 60, "step_seconds": 60, "kind": "tumbling", "name": NAME},
        "key": {"service_name": service}, "count": count, "error_count": errors,
        "latency_ms": latency,
        "template_counts": [{"id": t, "count": c, "template": f"text {t}"} for t, c in tc.items() if c],
        "error_template_counts": [{"id": t, "count": c, "template": f"text {t}"}
                                  for t, c in (error_templates or {}).items()],
        "logriver": {"pipeline": "test"},
    }


def noisy(n: int, seed: int = 0, mean: float = 100) -> list[int]:
    return list(np.random.default_rng(seed).poisson(mean, n))


def run(det, docs: list[dict]) -> dict[int, list[dict]]:
    """Feed one window at a time; anomalies by window index."""
    out: dict[int, list[dict]] = {}
    for i, d in enumerate(docs):
        for a in det.process_window([d]):
            out.setdefault(i, []).append(a)
    return out


def check_doc(a: dict) -> None:
    for f in REQUIRED:
        assert f in a, f
    assert a["model"]["version"] and a["explanation"]["summary"]
    assert all({"name", "expected", "observed"} <= it.keys() for it in a["explanation"]["items"])
    assert a["score"] > a["threshold"] or a["detector"] == "novelty"


@pytest.mark.parametrize("method", ["mad", "ewma"])
def test_rate_flat_series_not_flagged(method: str) -> None:
    docs = [doc(i, c) for i, c in enumerate(noisy(80))]
    assert run(RateDetector(method=method), docs) == {}


@pytest.mark.parametrize("method", ["mad", "ewma"])
def test_rate_spike_and_error_spike_flagged(method: str) -> None:
    counts = noisy(40)
    docs = [doc(i, c, errors=1 if i % 5 == 0 else 0) for i, c in enumerate(counts)]
    docs[30] = doc(30, 400)
    docs[35] = doc(35, 130, errors=30)
    out = run(RateDetector(method=method, spike_fields=("count", "error_count")), docs)
    assert sorted(out) == [30, 35]
    assert out[30][0]["explanation"]["items"][0]["name"] == "count"
    assert {it["name"] for it in out[35][0]["explanation"]["items"]} >= {"error_count"}
    for a in out[30] + out[35]:
        check_doc(a)


def test_rate_drop_flagged_and_min_history_respected() -> None:
    counts = noisy(30)
    docs = [doc(i, c) for i, c in enumerate(counts)]
    docs[3] = doc(3, 5)  # before min_history: no alert
    docs[25] = doc(25, 10)
    out = run(RateDetector(), docs)
    assert sorted(out) == [25]
    item = out[25][0]["explanation"]["items"][0]
    assert item["kind"] == "drop" and item["observed"] == 10 and item["expected"] > 80


def test_silent_series_becomes_a_drop() -> None:
    scorer = DetectorSet([RateDetector()])
    out = []
    for i, c in enumerate(noisy(30)):
        out += scorer.process([doc(i, c), doc(i, 50 + i % 3, service="other")])
    assert out == []
    out = scorer.process([doc(30, 52, service="other")])  # "api" wrote nothing
    assert [a["key"]["service_name"] for a in out] == ["api"]
    assert out[0]["explanation"]["items"][0]["observed"] == 0


def test_novelty_new_error_template_flagged_info_not() -> None:
    det = NoveltyDetector(warmup_windows=5)
    docs = [doc(i, 100, templates={"ok": 99, "known_err": 1}, error_templates={"known_err": 1})
            for i in range(10)]
    docs.append(doc(10, 104, templates={"ok": 100, "boom": 3, "deploy_info": 1},
                    error_templates={"boom": 3}))
    docs.append(doc(11, 101, templates={"ok": 100, "boom": 1}, error_templates={"boom": 1}))
    docs.append(doc(12, 103, templates={"ok": 100, "hello_v2": 3}))
    # a lone never-seen error line among a busy window's hundred is not an incident
    docs.append(doc(13, 101, templates={"ok": 100, "odd": 1}, error_templates={"odd": 1}))
    out = run(det, docs)
    assert list(out) == [10, 11]  # 11: the new error recurs, the incident goes on
    items = out[10][0]["explanation"]["items"]
    assert [it["name"] for it in items] == ["boom"] and items[0]["observed"] == 3
    assert "recurring" not in items[0]
    again = out[11][0]["explanation"]["items"]
    assert [(it["name"], it["observed"], it["recurring"]) for it in again] == [("boom", 1, True)]
    assert "still recurring" in out[11][0]["explanation"]["summary"]
    check_doc(out[10][0])
    check_doc(out[11][0])


def _sparse(i: int, templates: dict, errors: dict | None = None) -> dict:
    return doc(i, sum(templates.values()), templates=templates, error_templates=errors or {})


def test_novelty_quiet_series_one_new_error_line_is_evidence() -> None:
    """A series writing a line or two a window (a node's kernel, a batch job): its one line
    being a never-seen error alerts; the same line among a busy window's hundred does not."""
    det = NoveltyDetector(warmup_windows=5)
    docs = [_sparse(i, {"heartbeat": 1}) for i in range(10)]
    docs.append(_sparse(10, {"panic": 1}, {"panic": 1}))
    docs.append(_sparse(11, {"heartbeat": 1, "oops": 1}, {"oops": 1}))  # half of its lines
    out = run(det, docs)
    assert list(out) == [10, 11]
    assert [it["name"] for it in out[11][0]["explanation"]["items"]] == ["oops"]


def test_novelty_recurrence_counts_the_series_active_windows() -> None:
    """Recurrences are followed across the silence of a sparse series (windows it wrote
    nothing in are no sign of recovery) but not past ``follow_gap`` windows it did write in,
    nor beyond ``follow_windows`` flagged windows."""
    det = NoveltyDetector(warmup_windows=3, follow_gap=2, follow_windows=4)
    scorer = DetectorSet([det], fill_missing=False)
    quiet = {"heartbeat": 1}
    plan = [quiet, quiet, quiet, quiet,        # 0-3: learnt
            {"tlb": 2},                        # 4: never seen -> alert
            None, None, None,                  # 5-7: the series wrote nothing
            {"tlb": 1},                        # 8: back after silence -> still the incident
            quiet,                             # 9: one healthy active window
            {"tlb": 1},                        # 10: within two active windows -> followed
            quiet, quiet,                      # 11-12: two healthy active windows
            {"tlb": 1},                        # 13: too late: that incident is over
            {"boom": 2}, {"boom": 1}, {"boom": 1}, {"boom": 1},  # 14-17: flagged 4 times
            {"boom": 1}]                       # 18: past follow_windows: the new normal
    flagged = {}
    for i, tc in enumerate(plan):
        if tc is None:
            continue
        errors = {t: c for t, c in tc.items() if t != "heartbeat"}
        for a in scorer.process([_sparse(i, tc, errors)]):
            flagged[i] = [(it["name"], bool(it.get("recurring"))) for it in a["explanation"]["items"]]
    assert flagged == {4: [("tlb", False)], 8: [("tlb", True)], 10: [("tlb", True)],
                       14: [("boom", False)], 15: [("boom", True)], 16: [("boom", True)],
                       17: [("boom", True)]}
    # the state survives a restart (the window stage checkpoints it)
    restored = NoveltyDetector(warmup_windows=3, follow_gap=2, follow_windows=4)
    restored.restore(det.snapshot())
    assert restored.snapshot() == det.snapshot()
    legacy = {k: v for k, v in det.snapshot().items() if k not in ("active", "following")}
    NoveltyDetector().restore(legacy)  # a checkpoint written before recurrences were followed


def test_novelty_rare_template_burst() -> None:
    det = NoveltyDetector(warmup_windows=5)
    docs = [doc(i, 100, templates={"ok": 100, "rare": 1 if i == 2 else 0, "batch": 1 if i == 3 else 0},
                error_templates={"rare": 1} if i == 2 else {}) for i in range(40)]
    # a rare error template bursts; a rare informational one (a batch job) bursts too
    docs.append(doc(40, 160, templates={"ok": 100, "rare": 30, "batch": 30},
                    error_templates={"rare": 30}))
    out = run(det, docs)
    assert list(out) == [40]
    assert [it["name"] for it in out[40][0]["explanation"]["items"]] == ["rare"]


def test_latency_regression_flagged_flat_not() -> None:
    rng = np.random.default_rng(1)

    def lat(scale: float) -> dict:
        p50 = 20 * scale * float(rng.uniform(0.95, 1.05))
        return {"p50": p50, "p90": 2 * p50, "p95": 2.5 * p50, "p99": 4 * p50, "count": 200}

    docs = [doc(i, latency=lat(1.0)) for i in range(30)]
    assert run(LatencyDetector(), docs) == {}
    docs += [doc(30, latency=lat(3.0)), doc(31, latency=lat(1.0))]
    out = run(LatencyDetector(), docs)
    assert list(out) == [30]
    check_doc(out[30][0])


def test_latency_quiet_service_pools_windows() -> None:
    """Ten requests a minute (below ``min_samples`` per window): the windows are pooled, so a
    x3 regression is found within one window of its start, a flat series never; a busy
    window is its own observation."""
    rng = np.random.default_rng(7)

    def lat(scale: float, count: int = 10) -> dict:
        p50 = 40 * scale * float(rng.uniform(0.9, 1.1))
        return {"p50": p50, "p90": 2 * p50, "p95": 2.5 * p50, "p99": 4 * p50, "count": count}

    flat = [doc(i, latency=lat(1.0)) for i in range(60)]
    assert run(LatencyDetector(), flat) == {}
    out = run(LatencyDetector(), [*flat, *(doc(60 + i, latency=lat(3.0)) for i in range(4))])
    assert min(out) <= 61, out  # the regression began in window 60
    a = out[min(out)][0]
    assert "pooled" in a["explanation"]["summary"]
    check_doc(a)
    # without pooling (one window needs 20 samples, none has): never scored
    assert run(LatencyDetector(pool_windows=0), [*flat, *(doc(60 + i, latency=lat(3.0))
                                                           for i in range(4))]) == {}
    det = LatencyDetector()
    run(det, flat[:30])
    again = LatencyDetector()
    again.restore(det.snapshot())
    assert again.snapshot() == det.snapshot()
    legacy = det.snapshot()["series"]  # a checkpoint from before pooling
    old = LatencyDetector()
    old.restore(legacy)
    assert old.snapshot()["series"] == legacy and old.snapshot()["recent"] == {}


def _model_windows(n: int, seed: int = 0) -> list[list[dict]]:
    rng = np.random.default_rng(seed)
    return [[doc(i, templates={"a": int(rng.poisson(80)), "b": int(rng.poisson(20)),
                               "c": int(rng.poisson(5))}, service=s)
             for s in ("api", "web")] for i in range(n)]


@pytest.mark.parametrize("cls", [IsolationForestDetector, PCADetector])
def test_count_model_spike_flagged_flat_not_versioned(cls, tmp_path: Path) -> None:
    det = cls(warmup_windows=30, refresh_every=1000)
    windows = _model_windows(60)
    flagged = [a for w in windows for a in det.process_window(w)]
    assert flagged == [] and det.version.startswith(det.name + "-")
    # the mix of "api" flips to template c; "web" stays normal
    spike = [doc(60, templates={"a": 10, "b": 3, "c": 400}),
             doc(60, templates={"a": 81, "b": 19, "c": 5}, service="web")]
    out = det.process_window(spike)
    assert [a["key"]["service_name"] for a in out] == ["api"]
    check_doc(out[0])
    assert out[0]["model"]["version"] == det.version
    assert out[0]["explanation"]["items"][0]["name"] == "c"
    assert out[0]["explanation"]["items"][0]["observed"] == 400
    # persistence round trip: same version, same scores
    path = tmp_path / "model.joblib"
    det.save(str(path))
    other = cls()
    other.load(str(path))
    assert other.version == det.version
    assert np.allclose(other.score(spike), det.score(spike))
    with pytest.raises(ValueError):
        (PCADetector() if cls is IsolationForestDetector else IsolationForestDetector()).load(str(path))


def test_count_model_refresh_changes_version() -> None:
    det = PCADetector(warmup_windows=10, refresh_every=10, train_windows=10)
    versions = []
    for w in _model_windows(30, seed=3):
        det.process_window(w)
        versions.append(det.version)
    assert versions[8] == "" and versions[9] != ""
    assert len({versions[9], versions[19], versions[29]}) == 3


def test_detector_set_config_and_snapshot_restore() -> None:
    config = [{"type": "rate", "spike_fields": ["count"]}, {"type": "novelty"}, {"type": "latency"},
              {"type": "isolation_forest", "warmup_windows": 20, "refresh_every": 15},
              {"type": "pca", "warmup_windows": 20, "refresh_every": 15}]
    windows = _model_windows(60, seed=4)
    windows[45][0] = doc(45, 425, templates={"a": 400, "b": 20, "c": 5})
    windows[50][1] = doc(50, templates={"a": 80, "b": 20, "c": 5, "fatal_x": 4},
                         error_templates={"fatal_x": 4}, service="web")

    def go(crash_at: int | None) -> list[dict]:
        scorer = DetectorSet.from_config(config)
        out = []
        for i, w in enumerate(windows):
            if i == crash_at:
                state = orjson.loads(orjson.dumps(scorer.snapshot()))
                scorer = DetectorSet.from_config(config)
                scorer.restore(state)
            out += scorer.process(w)
        return out

    baseline = go(None)
    detected = {(a["detector"], a["window"]["start"]) for a in baseline}
    assert ("rate_mad", doc(45)["window"]["start"]) in detected
    assert ("novelty", doc(50)["window"]["start"]) in detected
    assert baseline == go(33)
    with pytest.raises(ValueError):
        DetectorSet.from_config([{"type": "nope"}])
    assert [d.name for d in default_detectors()] == [
        "rate_mad", "errors", "novelty", "latency", "pca"]
