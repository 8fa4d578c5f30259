"""Anomaly benchmark: what the shipped pipeline finds, scored per alert.

    .venv/bin/python benchmarks/bench_anomaly.py [--seeds 101 102 ...] [--no-live] [--quick]

1. Incident scenarios (``benchmarks/scenarios.py``): a node's log tree per seed (services in
   several formats sharing namespaces, rolling deploys, noise, the five incident kinds),
   replayed with the shipped ``pipelines/kubernetes.py`` (``streams.replay.tree``, as
   ``logriver replay DIR``). Scoring per alert, by time overlap: an alert is a true positive
   when it names the broken service (``service.name`` and ``kubernetes.namespace``) and
   overlaps the incident (its windows, plus one window after); every other alert is a false
   positive (an alert on a deploy included). An incident is found when a true-positive alert
   starts within one window of the incident's first window. F1 of that precision and recall.
   Seeds ``TUNING_SEEDS`` were looked at while the defaults were set; the others were not.
2. Live: one held-out seed through node agent -> Kafka -> worker -> Elasticsearch (the real
   services, started if needed), its alerts compared with the replay's and scored the same way.
3. BGL-2k (``../shared/data/loghub-2k/BGL``; skipped when absent): the raw lines without their
   label column replayed with the kubernetes pipeline's detectors and scoring unchanged (a
   dissect header for BGL's layout, the component as the service; the shipped 60 s windows
   first, then other sizes to show the dependence); a line counts as flagged when an alert
   of its component covering its time names its template. Labels: first column, ``-`` =
   normal. Thunderbird-2k (all lines labelled normal) the same way: every flag is false.
4. Scoring cost: the window + scoring stage in-process on a backfill (event time advancing 5
   lines a second, windows closing every few lines) with the default detectors, with
   IsolationForest added (the old default set), and without detectors.

Writes ``benchmarks/results/anomaly.{md,json,png}``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from benchmarks import scenarios
from pipelines.kubernetes import pipeline as KUBERNETES
from streams.pipeline import Pipeline, Step
from streams.replay.tree import replay_tree
from streams.transport.events import parse_time_us

RESULTS = ROOT / "benchmarks" / "results"
# Seeds looked at while the detectors' defaults were set: 1-5 from the start; 101-110 were held
# out until 2026-12-03, when seed 107's miss led to pooling a quiet service's latency windows;
# 111-125 were held out for one run after that (P 0.949, R 0.973, F1 0.961); its two false
# drops on quiet services led to a two-window rule for weak drops, which lost three traffic
# drops on seeds 101-125 (found two windows late) and was taken back. 126-140 were not used
# to decide anything.
TUNING_SEEDS = (1, 2, 3, 4, 5, *range(101, 126))
HELD_OUT = tuple(range(126, 141))
W = scenarios.WINDOW
# Published unsupervised figures (loglizer on HDFS sessions; He et al., "Experience Report:
# System Log Analysis for Anomaly Detection", ISSRE 2016): F1 of PCA, IsolationForest,
# Invariants Mining.
PUBLISHED = {"PCA": 0.77, "IsolationForest": 0.80, "Invariants Mining": 0.92}


def prf(tp_alerts: int, alerts: int, found: int, incidents: int) -> dict[str, Any]:
    p = tp_alerts / alerts if alerts else (1.0 if not incidents else 0.0)
    r = found / incidents if incidents else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 3), "recall": round(r, 3), "f1": round(f, 3)}


# ----------------------------------------------------------------------------------------
# Scenarios
# ----------------------------------------------------------------------------------------
def score(alerts: list[dict], sc: scenarios.Scenario) -> dict[str, Any]:
    """Per alert by time overlap; only alerts naming the broken service count."""
    t0 = sc.t0.timestamp()
    rows, tp, deploy_alerts = [], 0, 0
    delays: dict[int, int] = {}
    for a in sorted(alerts, key=lambda a: (a["alert"]["start"], a["event"]["id"])):
        s = parse_time_us(a["alert"]["start"]) / 1e6 - t0
        e = parse_time_us(a["alert"]["end"]) / 1e6 - t0
        named = ((a.get("kubernetes") or {}).get("namespace"), (a.get("service") or {}).get("name"))
        hits = [k for k, i in enumerate(sc.incidents)
                if named == (i.namespace, i.service) and s < i.end + W and e > i.start]
        good = [k for k in hits if sc.incidents[k].should_alert]
        for k in good:
            d = int(s // W) - int(sc.incidents[k].start // W)
            delays[k] = min(delays.get(k, d), d)
        tp += bool(good)
        deploy_alerts += bool(hits) and not good
        rows.append({"windows": f"{int(s // W)}-{int(e // W) - 1}", "service": "/".join(map(str, named)),
                     "verdict": "TP" if good else ("FP (deploy)" if hits else "FP"),
                     "detectors": a["detectors"], "severity": a["severity"],
                     "summary": a["explanation"]["summary"][:160]})
    real = [k for k, i in enumerate(sc.incidents) if i.should_alert]
    found = [k for k in real if k in delays and delays[k] <= 1]
    incidents = [{"kind": i.kind, "service": f"{i.namespace}/{i.service}",
                  "windows": f"{int(i.start // W)}-{int((i.end - 1e-9) // W)}",
                  "must_alert": i.should_alert, "delay_windows": delays.get(k)}
                 for k, i in enumerate(sc.incidents)]
    return {**prf(tp, len(alerts), len(found), len(real)), "alerts": len(alerts), "tp_alerts": tp,
            "incidents_found": len(found), "incidents": len(real), "deploy_alerts": deploy_alerts,
            "max_delay": max((delays[k] for k in found), default=None),
            "incident_rows": incidents, "alert_rows": rows}


def run_scenario(seed: int, n_windows: int, work: Path) -> dict[str, Any]:
    root = work / f"seed{seed}"
    shutil.rmtree(root, ignore_errors=True)
    sc = scenarios.write(root, seed, n_windows)
    cpu = time.process_time()
    summary = replay_tree([str(root)], KUBERNETES)
    cpu = time.process_time() - cpu
    res = {"seed": seed, "tuning": seed in TUNING_SEEDS, "lines": sc.lines, "files": sc.files,
           "services": len(sc.services), "events": summary.events,
           "dead_letters": summary.dead_letters, "replay_cpu_s": round(cpu, 1),
           **score(list(summary.alerts.values()), sc)}
    res["_alerts"] = summary.alerts
    res["_scenario"] = sc
    return res


# ----------------------------------------------------------------------------------------
# Live: node agent -> Kafka -> worker -> Elasticsearch
# ----------------------------------------------------------------------------------------
async def _alerts_in_es(es_url: str, prefix: str) -> dict[str, dict]:
    from elasticsearch import AsyncElasticsearch

    async with AsyncElasticsearch(es_url) as es:
        index = f"{prefix}-anomalies-*"
        await es.indices.refresh(index=index, allow_no_indices=True)
        resp = await es.search(index=index, size=10_000, allow_no_indices=True,
                               query={"match_all": {}})
    return {h["_id"]: h["_source"] for h in resp["hits"]["hits"]}


def run_live(seed: int, n_windows: int, work: Path) -> dict[str, Any]:
    from streams import services as svc
    from streams.demo.chain import WorkerProcess, collect_once, count_events, remove_run
    from streams.ops.config import Settings

    up = svc.up()
    run = uuid.uuid4().hex[:8]
    settings = Settings(kafka_bootstrap=up["kafka"].address, es_url=up["elasticsearch"].address,
                        topic_prefix=f"benchan{run}.", index_prefix=f"lrbench-an{run}",
                        state_dir=work / f"state{run}")
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=n_windows + 30)
    root = work / f"live{seed}"
    shutil.rmtree(root, ignore_errors=True)
    sc = scenarios.write(root, seed, n_windows, t0=start)
    summary = replay_tree([str(root)], KUBERNETES)
    replayed = summary.alerts
    hold = str(int((n_windows + 60) * W))  # keep a backlog this long open while catching up
    os.environ["LOGRIVER_CATCHUP_HOLD_SECONDS"] = hold
    t = time.monotonic()
    try:
        asyncio.run(collect_once(settings, root, work / f"cp{run}"))
        with WorkerProcess("kubernetes", settings, log_path=work / f"worker{run}.log") as worker:
            deadline = time.monotonic() + 1800
            while asyncio.run(count_events(settings)) < summary.events \
                    and time.monotonic() < deadline and worker.alive():
                time.sleep(2)
            live: dict[str, dict] = {}
            stable = 0
            while time.monotonic() < deadline and worker.alive() and stable < 12:
                now = asyncio.run(_alerts_in_es(settings.es_url, settings.index_prefix))
                stable = stable + 1 if now == live else 0  # a minute without a change
                live = now
                if live == replayed:
                    break
                time.sleep(5)
        seconds = time.monotonic() - t
    finally:
        os.environ.pop("LOGRIVER_CATCHUP_HOLD_SECONDS", None)
        asyncio.run(remove_run(settings))
    same = live == replayed
    differ = sorted(k for k in set(live) | set(replayed) if live.get(k) != replayed.get(k))
    differences = {k: _diff(live.get(k), replayed.get(k)) for k in differ}
    return {"seed": seed, "lines": sc.lines, "seconds": round(seconds, 1),
            "catchup_hold_seconds": int(hold), "alerts_live": len(live),
            "alerts_replay": len(replayed), "equal_to_replay": same, "differing_alerts": differ,
            "differences": differences,
            **{k: v for k, v in score(list(live.values()), sc).items() if not k.endswith("rows")}}


def _diff(live: Any, replay: Any, path: str = "") -> list[str]:
    """Where a live alert differs from the replay's: ``path: live != replay`` lines."""
    if isinstance(live, dict) and isinstance(replay, dict):
        return [d for k in sorted(set(live) | set(replay))
                for d in _diff(live.get(k), replay.get(k), f"{path}.{k}" if path else k)]
    if live == replay:
        return []
    return [f"{path or '(alert)'}: {str(live)[:120]} != {str(replay)[:120]}"]


# ----------------------------------------------------------------------------------------
# BGL
# ----------------------------------------------------------------------------------------
# Loghub systems whose first column labels each line ("-" normal, else an alert category):
# BGL (143 alerts in its 2k sample) and Thunderbird (none in its 2k sample: every flag is false).
LABELLED_HEADERS = {
    "BGL": "%{epoch} %{date} %{node} %{timestamp} %{node_repeat} %{type} %{component} %{level} %{message}",
    "Thunderbird": "%{epoch} %{date} %{user} %{month} %{day} %{time} %{location} %{component}: %{message}",
}


def _component_service(event: dict) -> dict:
    component = (event.get("attributes") or {}).get("component")
    if component:
        event["service"] = {"name": re.sub(r"\[\d+\]$", "", component)}  # no pid: one series
    return event


def labelled_pipeline(system: str, window_seconds: int) -> Pipeline:
    """The kubernetes pipeline's detectors, warm-up and alerting unchanged; the system's header,
    the component as the service, tumbling windows of ``window_seconds``."""
    from streams.parse import Parser
    from streams.windows import WindowSpec

    shipped = KUBERNETES.windows[0]
    spec = WindowSpec("tumbling", window_seconds, allowed_lateness=shipped.allowed_lateness,
                      key_fields=shipped.key_fields, influencers=shipped.influencers)
    detectors = [_rescope(d, spec.name) for d in KUBERNETES.detectors]
    return dataclasses.replace(KUBERNETES, name=system.lower(),
                               parser=Parser(dissect=LABELLED_HEADERS[system]),
                               steps=[Step("service", _component_service)], windows=[spec],
                               detectors=detectors)


def _rescope(det: Any, window: str) -> Any:
    import copy

    det = copy.deepcopy(det)
    det.windows = (window,)
    return det


def run_labelled(system: str, window_seconds: int, work: Path) -> dict[str, Any] | None:
    """Line-level P/R/F1 of what the alerts name: a line is flagged when an alert of its
    component covering its time names its template (the alerts as the pipeline published them,
    nothing re-scored)."""
    from benchmarks._loghub import shared_dir
    from streams.replay.runner import replay_file

    shared = shared_dir()
    src = shared / "data" / "loghub-2k" / system / f"{system}_2k.log" if shared else None
    if src is None or not src.is_file():
        return None
    raw = src.read_text(encoding="utf-8", errors="replace").splitlines()
    labels = [line.split(" ", 1)[0] != "-" for line in raw]
    path = work / f"{system}.log"
    path.write_text("\n".join(line.split(" ", 1)[1] for line in raw) + "\n")
    events: dict[int, dict] = {}

    def keep(evs: list[dict], _letters: list) -> None:
        for e in evs:
            events[e["log"]["offset"]] = e

    summary = replay_file(path, labelled_pipeline(system, window_seconds), fmt="plain",
                          on_events=keep)
    line_of = {o: i for i, o in enumerate(sorted(events))}
    flagged: set[int] = set()
    for a in summary.alerts.values():
        s, e = parse_time_us(a["alert"]["start"]), parse_time_us(a["alert"]["end"])
        named = set((a.get("log") or {}).get("template_id") or ())
        service = (a.get("service") or {}).get("name")
        for off, ev in events.items():
            t = parse_time_us(ev["@timestamp"])
            if s <= t < e and ev["log"].get("template_id") in named \
                    and (ev.get("service") or {}).get("name") == service:
                flagged.add(line_of[off])
    tp = sum(1 for i in flagged if labels[i])
    fp, fn = len(flagged) - tp, sum(labels) - tp
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    # the level column as written (``FATAL``), whatever case the parser keeps
    fatal = [str(ev["log"].get("level", "")).upper() == "FATAL" for _, ev in sorted(events.items())]
    base_tp = sum(1 for y, f in zip(labels, fatal) if y and f)
    base_p, base_r = base_tp / max(sum(fatal), 1), base_tp / max(sum(labels), 1)
    base_f = 2 * base_p * base_r / (base_p + base_r) if base_p + base_r else 0.0
    return {"system": system, "window_seconds": window_seconds, "lines": len(raw),
            "alert_lines": sum(labels), "alerts": len(summary.alerts),
            "flagged_lines": len(flagged), "false_lines": fp,
            "precision": round(p, 3), "recall": round(r, 3),
            "f1": round(2 * p * r / (p + r), 3) if p + r else 0.0,
            "detectors": dict(Counter(d for a in summary.alerts.values() for d in a["detectors"])),
            "baseline_every_fatal_line": {"precision": round(base_p, 3), "recall": round(base_r, 3),
                                          "f1": round(base_f, 3)}}


# ----------------------------------------------------------------------------------------
# Scoring cost on a backfill
# ----------------------------------------------------------------------------------------
def run_cost(work: Path, lines: int) -> dict[str, Any]:
    from streams.anomaly import IsolationForestDetector, default_detectors
    from streams.demo.loggen import generate
    from streams.windows.stage import WindowStage

    generate(work / "backfill", lines, seed=3, start=datetime(2026, 3, 1, tzinfo=UTC),
             entries_per_second=5)
    events: list[dict] = []
    replay_tree([str(work / "backfill")], dataclasses.replace(KUBERNETES, windows=[]),
                on_events=lambda evs, _letters: events.extend(evs))
    events.sort(key=lambda e: e["@timestamp"])
    scored = (KUBERNETES.windows[0].name,)
    sets = {"windows only": [], "default detectors": default_detectors(windows=scored),
            "default + IsolationForest (the old set)":
                [*default_detectors(windows=scored), IsolationForestDetector(windows=scored)]}
    out = {"lines": len(events), "event_seconds": round(
        (parse_time_us(events[-1]["@timestamp"]) - parse_time_us(events[0]["@timestamp"])) / 1e6)}
    for name, dets in sets.items():
        best = float("inf")
        for _ in range(2):
            stage = WindowStage(KUBERNETES.name, KUBERNETES.windows, dets)
            t = time.process_time()
            for k in range(0, len(events), 500):
                stage.add(events[k:k + 500])
                stage.close()
            stage.flush()
            best = min(best, time.process_time() - t)
        trainings = sum(getattr(d, "trainings", 0) for sc in stage.scorers.values()
                        for d in sc.detectors.detectors)
        out[name] = {"us_per_line": round(best / len(events) * 1e6, 1),
                     "windows_closed": stage.windows_closed, "model_trainings": trainings}
    return out


# ----------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------
def _pooled(rows: list[dict]) -> dict[str, Any]:
    alerts = sum(r["alerts"] for r in rows)
    tp = sum(r["tp_alerts"] for r in rows)
    found = sum(r["incidents_found"] for r in rows)
    incidents = sum(r["incidents"] for r in rows)
    return {**prf(tp, alerts, found, incidents), "alerts": alerts, "incidents": incidents,
            "found": found, "deploy_alerts": sum(r["deploy_alerts"] for r in rows),
            "max_delay": max((r["max_delay"] for r in rows if r["max_delay"] is not None),
                             default=None)}


def _scenario_table(rows: list[dict]) -> list[str]:
    out = ["| seed | lines | services | alerts | P | R | F1 | incidents found (<= 1 window) | max delay | alerts on deploys | replay CPU s |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['seed']} | {r['lines']} | {r['services']} | {r['alerts']} | "
                   f"{r['precision']} | {r['recall']} | {r['f1']} | {r['incidents_found']}/"
                   f"{r['incidents']} | {r['max_delay']} | {r['deploy_alerts']} | {r['replay_cpu_s']} |")
    return out


def markdown(res: dict[str, Any]) -> str:
    held = [r for r in res["scenarios"] if not r["tuning"]]
    tuned = [r for r in res["scenarios"] if r["tuning"]]
    L = ["# Anomaly benchmark", "", (f"Run {res['run_at']} on the shared 2-core machine: "
                                    f"`{res['command']}`."), "",
         "## Incident scenarios, replayed as node log trees through `pipelines/kubernetes.py`", "",
         ("Per alert, by time overlap; only alerts naming the broken service (and namespace) are "
          "true positives, alerts on a normal deploy are false positives; an incident is found "
          "when such an alert starts within one window (60 s) of the incident's first window. "
          "Seeds 1-5 and 101-125 were looked at while setting the detectors' defaults (101-110 "
          "and 111-125 were each held out until their results led to a change); the held-out "
          "seeds were not."), ""]
    if held:
        p = _pooled(held)
        L += [(f"**Held-out seeds, pooled: P {p['precision']}, R {p['recall']}, F1 {p['f1']}** "
               f"({p['alerts']} alerts, {p['found']}/{p['incidents']} incidents found within one "
               f"window, {p['deploy_alerts']} alerts on deploys, max delay {p['max_delay']} "
               "window)."), "", *_scenario_table(held), ""]
    if tuned:
        p = _pooled(tuned)
        L += [f"Tuning seeds, pooled: P {p['precision']}, R {p['recall']}, F1 {p['f1']}.", "",
              *_scenario_table(tuned), ""]
    for r in res["scenarios"][:1] + [r for r in res["scenarios"] if r["f1"] < 1.0]:
        L += [f"### Seed {r['seed']}", "", "| incident | service | windows | delay (windows) |",
              "|---|---|---|---|"]
        L += [f"| {i['kind']}{'' if i['must_alert'] else ' (must stay silent)'} | {i['service']} | "
              f"{i['windows']} | {i['delay_windows']} |" for i in r["incident_rows"]]
        L += ["", "| alert windows | service | verdict | detectors | explanation |", "|---|---|---|---|---|"]
        L += [f"| {a['windows']} | {a['service']} | {a['verdict']} | {', '.join(a['detectors'])} | "
              f"{a['summary'].replace('|', '/')} |" for a in r["alert_rows"]]
        L.append("")
    live = res.get("live")
    if live:
        L += ["## Live: node agent -> Kafka -> worker -> Elasticsearch", "",
              f"Seed {live['seed']} ({live['lines']} lines), {live['seconds']} s: "
              f"{live['alerts_live']} alerts in Elasticsearch, {live['alerts_replay']} from the "
              f"replay, equal field for field: **{live['equal_to_replay']}**"
              + (f" (differing: {', '.join(live['differing_alerts'])})" if live["differing_alerts"] else "")
              + f"; P {live['precision']}, R {live['recall']}, F1 {live['f1']}. The worker ran with "
              f"`LOGRIVER_CATCHUP_HOLD_SECONDS={live['catchup_hold_seconds']}` (the backlog is "
              "older than the default hold of one hour).", ""]
    L += _bgl_section(res.get("bgl") or [], res.get("labelled_normal") or [])
    cost = res.get("cost")
    if cost:
        L += ["## Window + scoring cost on a backfill", "",
              (f"{cost['lines']} events over {cost['event_seconds']} s of event time (about 5 a "
               "second: windows close every few lines), in-process, CPU per line (best of 2):"), "",
              "| detectors | us per line | windows closed | model trainings |", "|---|---|---|---|"]
        for name in ("windows only", "default detectors", "default + IsolationForest (the old set)"):
            c = cost[name]
            L.append(f"| {name} | {c['us_per_line']} | {c['windows_closed']} | {c['model_trainings']} |")
        L.append("")
    return "\n".join(L) + "\n"


def _bgl_section(bgl: list[dict], others: list[dict]) -> list[str]:
    if not bgl:
        return ["## BGL-2k", "", "Skipped: `../shared/data/loghub-2k/BGL` not found.", ""]
    b0 = bgl[0]
    L = ["## BGL-2k (Loghub, real labels), line level", "",
         (f"{b0['lines']} lines, {b0['alert_lines']} alert lines. The kubernetes pipeline as "
          "shipped: its detectors, warm-up and alerting unchanged (no parameter set for BGL), "
          "60 s windows; BGL's header as a dissect pattern, the component as the service. A line "
          "is flagged when an alert of its component covering its time names its template. "
          "BGL-2k is a 1-in-2,350 sample of 215 days: a 60 s window holds about one line. The "
          "first row is the shipped configuration; the other window sizes show how much the "
          "figure depends on that choice (none of them was used to pick anything)."), "",
         "| window | alerts | flagged lines | false lines | P | R | F1 | alerts by detector |",
         "|---|---|---|---|---|---|---|---|"]
    for b in bgl:
        L.append(f"| {b['window_seconds']} s | {b['alerts']} | {b['flagged_lines']} | "
                 f"{b['false_lines']} | {b['precision']} | {b['recall']} | **{b['f1']}** | "
                 f"{b['detectors']} |")
    base = b0["baseline_every_fatal_line"]
    L += ["", f"Beside it: flagging every FATAL line gives P {base['precision']}, R {base['recall']}, "
          f"F1 {base['f1']} (all 143 alert lines are FATAL, and 204 normal ones). Published "
          "unsupervised figures (loglizer, HDFS sessions, not BGL lines): "
          + ", ".join(f"{k} {v}" for k, v in PUBLISHED.items()) + ".", ""]
    for o in others:
        L += [(f"{o['system']}-2k, the same configuration: {o['lines']} lines, all labelled normal; "
              f"{o['alerts']} alerts, {o['false_lines']} lines flagged (every one a false alarm). "
              "A weak check: its sample spans 15 minutes, so only the windows after the "
              "10-window warm-up are scored."), ""]
    return L


def plot(res: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = next((r for r in res["scenarios"] if not r["tuning"]), res["scenarios"][0])
    sc = r["_scenario"]
    fig, ax = plt.subplots(figsize=(12, 4.5))
    for k, inc in enumerate(sc.incidents):
        a, b = inc.windows()
        ax.axvspan(a, b + 1, color="red" if inc.should_alert else "green", alpha=0.15)
        ax.text(a, len(sc.incidents) - k, f"{inc.kind} {inc.service}", fontsize=7)
    for a in r["_alerts"].values():
        s = (parse_time_us(a["alert"]["start"]) / 1e6 - sc.t0.timestamp()) / W
        e = (parse_time_us(a["alert"]["end"]) / 1e6 - sc.t0.timestamp()) / W
        ax.plot([s, e], [0.5, 0.5], lw=6, color="black")
    ax.set_xlim(0, sc.n_windows)
    ax.set_ylim(0, len(sc.incidents) + 1)  # room for the incidents' labels above the alerts
    ax.set_xlabel("window (60 s)")
    ax.set_yticks([])
    ax.set_title(f"Seed {r['seed']}: incidents (red), deploys (green), alerts (black bars)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="*", default=list(HELD_OUT))
    ap.add_argument("--tuning-seeds", type=int, nargs="*", default=list(TUNING_SEEDS))
    ap.add_argument("--windows", type=int, default=180, help="scenario length (60 s windows)")
    ap.add_argument("--live-seed", type=int, default=HELD_OUT[0])
    ap.add_argument("--no-live", action="store_true")
    ap.add_argument("--bgl-windows", type=int, nargs="+", default=[60, 300, 3600],
                    help="window sizes for BGL-2k; the first should be the shipped 60 s")
    ap.add_argument("--cost-lines", type=int, default=40_000)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: tuning seed 1, held-out seed 126, BGL at 60 s, 5,000 cost lines")
    args = ap.parse_args()
    if args.quick:
        args.tuning_seeds, args.seeds, args.bgl_windows, args.cost_lines = [1], [126], [60], 5000
    res: dict[str, Any] = {"run_at": datetime.now(UTC).isoformat(timespec="seconds"),
                           "command": "python benchmarks/bench_anomaly.py " + " ".join(sys.argv[1:])}
    with tempfile.TemporaryDirectory(prefix="lr-anomaly-") as tmp:
        work = Path(tmp)
        res["scenarios"] = [run_scenario(s, args.windows, work)
                            for s in [*args.tuning_seeds, *args.seeds]]
        if not args.no_live:
            res["live"] = run_live(args.live_seed, args.windows, work)
        res["bgl"] = [b for w in args.bgl_windows
                      if (b := run_labelled("BGL", w, work)) is not None]
        res["labelled_normal"] = [b for b in [run_labelled("Thunderbird", 60, work)] if b]
        res["cost"] = run_cost(work, args.cost_lines)
    md = markdown(res)
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "anomaly.md").write_text(md)
    plot(res, args.out / "anomaly.png")
    for r in res["scenarios"]:
        r.pop("_alerts"), r.pop("_scenario")
    (args.out / "anomaly.json").write_text(json.dumps(res, indent=2, default=str))


if __name__ == "__main__":
    main()
