"""The window stage scores only final windows, per scope, the same whatever the partitioning
or a crash: the properties that make the live path and a replay raise the same alerts."""

from __future__ import annotations

import random

import orjson

from streams.anomaly import ErrorDetector, NoveltyDetector, RateDetector
from streams.windows import WindowSpec, format_time_us
from streams.windows.stage import WindowStage

T0 = 1_767_225_600 * 10**6
SPECS = [WindowSpec("tumbling", 60, allowed_lateness=30,
                    key_fields=("kubernetes.namespace", "service.name"),
                    influencers=("kubernetes.pod.name",)),
         WindowSpec("hopping", 300, 60, allowed_lateness=30, key_fields=("kubernetes.namespace",),
                    influencers=("service.name",))]
SCORED = (SPECS[0].name,)  # as pipelines/kubernetes.py: detectors on the per-service window
DETECTORS = [RateDetector(min_history=5, windows=SCORED), ErrorDetector(min_history=5, windows=SCORED),
             NoveltyDetector(warmup_windows=3, windows=SCORED)]


def events(minutes: int, seed: int = 1, incident: tuple[int, int] = (40, 43)) -> list[dict]:
    """Three services in two namespaces, ~1 line/s each; ``shop/cart`` throws errors of a
    never-seen template during ``incident`` (minutes)."""
    rng = random.Random(seed)
    out = []
    services = [("shop", "cart"), ("shop", "checkout"), ("auth", "login")]
    for s in range(minutes * 60):
        for ns, svc in services:
            if rng.random() < 0.9:
                out.append(_event(T0 + s * 10**6 + rng.randrange(10**6), ns, svc, "served <*>", "info"))
        if incident[0] * 60 <= s < incident[1] * 60 and rng.random() < 0.5:
            out.append(_event(T0 + s * 10**6 + 500_000, "shop", "cart", "boom at <*>", "error"))
    out.sort(key=lambda e: e["@timestamp"])
    for i, ev in enumerate(out):
        ev["event"] = {"id": f"e{i:07d}"}
    return out


def _event(ts: int, ns: str, svc: str, template: str, level: str) -> dict:
    return {"@timestamp": format_time_us(ts), "message": template,
            "log": {"level": level, "template_id": template, "template": template},
            "kubernetes": {"namespace": ns, "pod": {"name": f"{svc}-0"}},
            "service": {"name": svc}}


def run(stage: WindowStage, evs: list[dict], batch: int = 500) -> tuple[list[dict], list[dict]]:
    metrics, alerts = [], []
    for k in range(0, len(evs), batch):
        stage.add(evs[k:k + batch])
        m, a = stage.close()
        metrics += m
        alerts += a
    m, a = stage.flush()
    return metrics + m, alerts + a


def final(alerts: list[dict]) -> dict[str, bytes]:
    return {a["event"]["id"]: orjson.dumps(a, option=orjson.OPT_SORT_KEYS) for a in alerts}


def test_the_last_partial_windows_are_never_scored() -> None:
    evs = events(30, incident=(99, 99))
    cut = [e for e in evs if e["@timestamp"] < format_time_us(T0 + (29 * 60 + 5) * 10**6)]
    metrics, alerts = run(WindowStage("t", SPECS, DETECTORS), cut)
    assert alerts == []  # before: the last window (5 s of it) was scored as a volume drop
    last = format_time_us(T0 + 29 * 60 * 10**6)
    assert any(m["window"]["start"] == last for m in metrics)  # still counted and published


def test_an_incident_is_one_alert_naming_its_service() -> None:
    _, alerts = run(WindowStage("t", SPECS, DETECTORS), events(60))
    ids = {a["event"]["id"] for a in alerts}
    assert len(ids) == 1
    last = alerts[-1]
    assert last["service"]["name"] == "cart" and last["kubernetes"]["namespace"] == "shop"
    assert last["alert"]["start"] == format_time_us(T0 + 40 * 60 * 10**6)
    assert {"errors", "novelty"} <= set(last["detectors"])
    templates = {i["value"] for i in last["influencers"] if i["field"] == "log.template_id"}
    assert "boom at <*>" in templates


def test_scopes_over_two_stages_equal_one_stage() -> None:
    evs = events(60)
    _, one = run(WindowStage("t", SPECS, DETECTORS), evs)
    parts = {"shop": WindowStage("t", SPECS, DETECTORS), "auth": WindowStage("t", SPECS, DETECTORS)}
    two = []
    for ns, stage in parts.items():  # each partition reads its namespace at its own pace
        two += run(stage, [e for e in evs if e["kubernetes"]["namespace"] == ns],
                   batch=300 if ns == "shop" else 700)[1]
    assert one and final(one) == final(two)


def test_a_crash_between_the_two_state_writes_scores_nothing_twice() -> None:
    evs = events(60)
    _, baseline = run(WindowStage("t", SPECS, DETECTORS), evs)
    stage = WindowStage("t", SPECS, DETECTORS)
    minute_42 = format_time_us(T0 + 42 * 60 * 10**6)  # inside the incident
    crash_at = next(i for i, e in enumerate(evs) if e["@timestamp"] >= minute_42) // 500 * 500
    alerts, k, crashed = [], 0, False
    while k < len(evs):
        before = orjson.loads(orjson.dumps(stage.snapshot()))  # windows' state at the last save
        stage.add(evs[k:k + 500])
        _, a = stage.close()
        alerts += a
        if k == crash_at:  # scoring state written, windows' state not: crash, re-deliver
            crashed = True
            scoring = orjson.loads(orjson.dumps(stage.scoring_snapshot()))
            stage = WindowStage("t", SPECS, DETECTORS)
            stage.restore(before)
            stage.restore_scoring(scoring)
            stage.add(evs[k:k + 500])
            alerts += stage.close()[1]
        k += 500
    alerts += stage.flush()[1]
    assert crashed and final(alerts) == final(baseline)
