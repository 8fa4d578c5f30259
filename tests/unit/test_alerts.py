"""Alerts: one per incident (consecutive anomalous windows of a series), deterministic ids,
influencers with expected vs observed, explicit warm-up; the error-ratio detector and the
rate detector's local level."""

from __future__ import annotations

import numpy as np

from streams.anomaly import AlertBook, DetectorSet, ErrorDetector, RateDetector, Scorer
from streams.anomaly.influence import Baselines
from streams.windows import format_time_us

T0 = 1_767_225_600 * 10**6
NAME = "tumbling_60s_by_kubernetes.namespace+service.name"
FIELDS = {NAME: ("kubernetes.namespace", "service.name")}


def doc(i: int, count: int = 100, errors: int = 0, service: str = "api",
        templates: dict | None = None, pods: dict | None = None) -> dict:
    start = T0 + i * 60 * 10**6
    tc = templates if templates is not None else {"ok": count - errors, "err": errors}
    return {
        "@timestamp": format_time_us(start),
        "window": {"start": format_time_us(start), "end": format_time_us(start + 60 * 10**6),
                   "size_seconds": 60, "step_seconds": 60, "kind": "tumbling", "name": NAME},
        "key": {"kubernetes_namespace": "shop", "service_name": service},
        "count": count, "error_count": errors, "latency_ms": None,
        "template_counts": [{"id": t, "count": c, "template": f"text {t}"} for t, c in tc.items() if c],
        "error_template_counts": [{"id": "err", "count": errors, "template": "text err"}] if errors else [],
        "breakdown": [{"field": "kubernetes.pod.name", "value": p, "count": c, "error_count": 0}
                      for p, c in (pods or {f"{service}-0": count}).items()],
        "logriver": {"pipeline": "test"},
    }


def poisson(n: int, mean: float, seed: int = 0) -> list[int]:
    return [int(x) for x in np.random.default_rng(seed).poisson(mean, n)]


def test_error_detector_scales_with_volume() -> None:
    det = ErrorDetector()
    counts = poisson(40, 30, seed=1)
    found = {}
    for i, c in enumerate(counts):
        d = doc(i, c, errors=1 if i % 13 == 0 else 0)
        if i == 30:
            d = doc(i, 28, errors=7)  # a quiet service: 7 errors of 28 lines
        if i == 35:
            d = doc(i, 300, errors=1)  # ten times the traffic, the usual ratio
        for a in det.process_window([d]):
            found[i] = a
    assert list(found) == [30]
    items = {it["name"]: it for it in found[30]["explanation"]["items"]}
    assert items["error_count"]["observed"] == 7 and items["error_count"]["expected"] < 1


def test_error_detector_ignores_background_noise_of_a_busy_service() -> None:
    det = ErrorDetector()
    rng = np.random.default_rng(3)
    flagged = []
    for i in range(400):  # 240 lines a window at a 0.4 % error ratio
        n = int(rng.poisson(240))
        flagged += det.process_window([doc(i, n, errors=int(rng.binomial(n, 0.004)))])
    assert flagged == []


def test_rate_detector_follows_a_slow_swing_and_flags_a_drop() -> None:
    det = RateDetector()
    rng = np.random.default_rng(5)
    found = []
    for i in range(120):
        level = 65 * (1 + 0.25 * np.sin(2 * np.pi * i / 90))
        c = int(rng.poisson(level * (0.3 if 100 <= i < 103 else 1.0)))
        found += [(i, a) for a in det.process_window([doc(i, c)])]
    assert [i for i, _ in found] == [100, 101, 102]
    assert found[0][1]["explanation"]["items"][0]["kind"] == "drop"


def test_consecutive_windows_make_one_alert_updated_in_place() -> None:
    book = AlertBook("test", gap=1)
    finding = {"detector": "rate_mad", "score": 8.0, "threshold": 5.0, "severity": "major",
               "model": {"version": "v"}, "explanation": {"summary": "drop", "items": []}}
    infl = [{"field": "log.template_id", "value": "ok", "expected": 95.0, "observed": 10,
             "score": -14.0, "template": "text ok"}]
    sid = "s"
    docs = []
    for i, anomalous in enumerate([True, True, False, True, False, False]):
        d = doc(i)
        out = book.window(NAME, T0 + (i + 1) * 60 * 10**6, FIELDS,
                          {sid: (d, [finding], infl)} if anomalous else {})
        docs += out
    ids = {a["alert"]["id"] for a in docs}
    assert len(ids) == 1  # windows 0, 1 and 3 (one quiet window between): one alert
    last = docs[-1]
    assert last["alert"]["status"] == "closed" and last["alert"]["windows"] == 3
    assert last["alert"]["start"] == doc(0)["window"]["start"]
    assert last["alert"]["end"] == doc(3)["window"]["end"]
    assert last["event"]["id"] == last["alert"]["id"]
    assert last["service"]["name"] == "api" and last["kubernetes"]["namespace"] == "shop"
    [item] = last["influencers"]
    assert item["observed"] == 30 and item["expected"] == 285.0  # summed over its 3 windows
    assert last["log"]["template_id"] == ["ok"]
    again = AlertBook("test", gap=1)  # the same input gives the same id
    assert again.window(NAME, T0 + 60 * 10**6, FIELDS,
                        {sid: (doc(0), [finding], infl)})[0]["event"]["id"] in ids


def test_scorer_warm_up_then_an_alert_naming_service_pods_and_templates() -> None:
    scorer = Scorer([RateDetector()], "test", FIELDS, warmup_windows=10)
    alerts = []
    counts = poisson(40, 100, seed=7)
    for i, c in enumerate(counts):
        if i == 3:
            c = 5  # inside the warm-up: learnt, never alerted
        d = doc(i, c, pods={"api-1": c // 2, "api-2": c - c // 2},
                templates={"ok": c - 2, "slow": 2})
        if i == 30:
            d = doc(i, 12, pods={"api-1": 12}, templates={"ok": 10, "slow": 2})
        alerts += scorer.score([d])
    assert {a["alert"]["start"] for a in alerts} == {doc(30)["window"]["start"]}
    a = alerts[-1]
    assert a["service"]["name"] == "api"
    infl = {(i["field"], i["value"]): i for i in a["influencers"]}
    assert infl[("kubernetes.pod.name", "api-2")]["observed"] == 0
    assert infl[("log.template_id", "ok")]["expected"] > 80
    assert ("log.template_id", "slow") not in infl  # did not move


def test_namespace_level_series_names_the_service_that_moved() -> None:
    name = "hopping_300s_60s_by_kubernetes.namespace"
    fields = {name: ("kubernetes.namespace",)}
    base = Baselines()
    sid = f"{name}|kubernetes_namespace=shop"

    def ns_doc(i: int, per_service: dict) -> dict:
        d = doc(i, sum(per_service.values()))
        d["window"]["name"] = name
        d["key"] = {"kubernetes_namespace": "shop"}
        d["breakdown"] = [{"field": "service.name", "value": s, "count": c, "error_count": 0}
                          for s, c in per_service.items()]
        return d

    for i in range(12):
        base.learn(sid, ns_doc(i, {"cart": 100, "checkout": 50, "search": 80}))
    d = ns_doc(12, {"cart": 100, "checkout": 2, "search": 81})
    book = AlertBook("test")
    finding = {"detector": "rate_mad", "score": 6.0, "threshold": 5.0, "severity": "major",
               "model": {}, "explanation": {"summary": "drop", "items": []}}
    [alert] = book.window(name, T0, fields, {sid: (d, [finding], base.influencers(sid, d))})
    assert alert["service"]["name"] == "checkout"
    assert alert["kubernetes"]["namespace"] == "shop"


def test_scorer_state_round_trip_gives_the_same_alerts() -> None:
    import orjson

    def run(restart_at: int | None) -> list[dict]:
        scorer = Scorer([RateDetector(), ErrorDetector()], "test", FIELDS)
        out = []
        for i, c in enumerate(poisson(60, 80, seed=11)):
            if i == restart_at:
                state = orjson.loads(orjson.dumps(scorer.snapshot()))
                scorer = Scorer([RateDetector(), ErrorDetector()], "test", FIELDS)
                scorer.restore(state)
            errors = 20 if 40 <= i < 43 else 0
            out += scorer.score([doc(i, c + errors, errors=errors)])
        return out

    baseline = run(None)
    assert baseline and baseline == run(41)
    assert DetectorSet  # (exported)
