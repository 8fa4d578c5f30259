"""Anomaly benchmark: BGL (real labels), seeded Kubernetes incident scenarios, throughput.

    .venv/bin/python benchmarks/bench_anomaly.py [--bgl-templates truth|miner] [--seeds 7 11]

BGL: ``$LOGRIVER_SHARED/data/loghub-2k/BGL`` (default ``<repo>/../shared``). A line is an alert
when its first column is not ``-``. Template ids are the ground-truth ``EventId`` of
``BGL_2k.log_structured_corrected.csv`` (``--bgl-templates truth``, default) or the engine's
``streams.templates.TemplateMiner`` (``miner``). Events go through the real
``WindowAggregator`` (tumbling windows, global key); lines are split in time: the count models
fit on the first half and their thresholds are chosen there (the best window-level F1 of the
fitted model's scores on those same windows, besides the model's own unsupervised rule);
everything is evaluated on the second half, which tuned nothing. Every template is a feature
there (``min_feature_rows=1``): BGL's alerts are rare templates.

Scenarios: ``benchmarks/scenarios.py`` with the detectors' defaults (``default_detectors``).
Writes ``benchmarks/results/anomaly.{md,json,png}``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
import zlib
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

import scenarios

from streams.anomaly import (
    DetectorSet,
    IsolationForestDetector,
    NoveltyDetector,
    PCADetector,
    default_detectors,
)
from streams.windows import WindowAggregator, WindowSpec, batch_recompute

RESULTS = ROOT / "benchmarks" / "results"
NOTES = [
    ("- Scenario defaults (rate drop_ratio, novelty min_new_count=2, count-model refresh 10/60 "
     "windows, PCA factor 1.5, IsolationForest margin 0.02) were set while looking at seeds 7, "
     "11 and 23; seed 101 was run only after they were frozen."),
    ("- Window level: a window counts as alerted when any key has an anomaly; incident found: "
     "its own service alerted in its windows or the next one; delay = first such window - "
     "start."),
    ("- BGL 2k is a sparse sample (2000 lines over 7 months): every alert line of the "
     "evaluation half has a template never seen in the training half, so the count models "
     "(whose features are training templates) cannot see them; novelty is the only detector "
     "with signal there."),
    ("- Aggregation throughput covers WindowAggregator.add + close_ready for 2 window specs on "
     "structured events; scoring covers DetectorSet.process (5 detectors, model refreshes "
     "included) per (window, key) document; template mining is streams.templates.TemplateMiner "
     "on the scenario's messages, as the structuring stage's main cost."),
]


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 3), "recall": round(r, 3), "f1": round(f, 3),
            "tp": tp, "fp": fp, "fn": fn}


# ----------------------------------------------------------------------------------------
# BGL
# ----------------------------------------------------------------------------------------
LEVELS = {"INFO": "info", "WARNING": "warn", "ERROR": "error", "SEVERE": "error",
          "FATAL": "fatal", "FAILURE": "fatal"}


def bgl_dir() -> Path:
    base = Path(os.environ.get("LOGRIVER_SHARED", ROOT.parent / "shared"))
    return base / "data" / "loghub-2k" / "BGL"


def load_bgl(template_source: str) -> tuple[list[dict[str, Any]], list[bool], str]:
    path = bgl_dir() / "BGL_2k.log_structured_corrected.csv"
    if not path.exists():
        sys.exit(f"BGL data not found at {path} (set LOGRIVER_SHARED)")
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    miner = None
    if template_source == "miner":
        try:
            from streams.templates import TemplateMiner
            miner = TemplateMiner()
        except ImportError:
            sys.exit("--bgl-templates miner: streams.templates.TemplateMiner is not importable")
    events, labels, seen = [], [], set()
    for r in rows:
        frac = r["Time"].rsplit(".", 1)[-1]
        ts = datetime.fromtimestamp(int(r["Timestamp"]), UTC).isoformat().replace("+00:00", "")
        if miner is not None:
            m = miner.match(r["Content"])
            tid, text = m.template_id, m.template
        else:
            tid, text = r["EventId"], r["EventTemplate"]
        events.append({
            "@timestamp": f"{ts}.{frac}Z", "message": r["Content"],
            "log": {"level": LEVELS.get(r["Level"], "info"), "template_id": tid, "template": text},
            "service": {"name": r["Component"]},
            "logriver": {"template_is_new": tid not in seen},
        })
        seen.add(tid)
        labels.append(r["Label"] != "-")
    return events, labels, ("ground-truth EventId" if miner is None else "TemplateMiner")


def best_threshold(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Threshold (flag when score > t) with the best F1 on (scores, truth)."""
    best = (math.inf, -1.0)
    for t in sorted(set(scores.tolist())):
        cand = t - 1e-12
        pred = scores > cand
        tp = int((pred & truth).sum())
        fp = int((pred & ~truth).sum())
        fn = int((~pred & truth).sum())
        f = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if f > best[1]:
            best = (cand, f)
    return best


def run_bgl(template_source: str, window_seconds: int) -> dict[str, Any]:
    events, labels, source = load_bgl(template_source)
    n = len(events)
    train_end = n // 2
    spec = WindowSpec("tumbling", window_seconds, allowed_lateness=0, name="bgl")
    agg = WindowAggregator([spec], pipeline="bgl")
    line_window: list[str] = []
    for ev in events:
        assert not agg.add(ev)
        line_window.append(_window_start(ev["@timestamp"], window_seconds))
    docs = [c.doc for c in agg.flush()]
    win_label: dict[str, bool] = defaultdict(bool)
    win_part: dict[str, str] = {}
    for i, (w, y) in enumerate(zip(line_window, labels)):
        win_label[w] |= y
        part = "train" if i < train_end else "eval"
        win_part.setdefault(w, part)  # a window belongs to the part of its first line
    part_docs = {p: [d for d in docs if win_part[d["window"]["start"]] == p]
                 for p in ("train", "eval")}
    truth = {p: np.array([win_label[d["window"]["start"]] for d in part_docs[p]])
             for p in part_docs}
    out: dict[str, Any] = {"template_source": source, "lines": n, "alert_lines": sum(labels),
                           "window_seconds": window_seconds, "windows": len(docs),
                           "split": {p: {"windows": len(part_docs[p]),
                                         "anomalous_windows": int(truth[p].sum())}
                                     for p in part_docs},
                           "detectors": {}}
    eval_lines = range(train_end, n)
    union_windows: set[str] = set()
    union_lines: set[int] = set()
    fit_rows = [("bgl|", {t["id"]: t["count"] for t in d["template_counts"]})
                for d in part_docs["train"]]
    trained_at = part_docs["train"][-1]["window"]["end"]
    params = {"refresh_every": 10**9, "min_rows": 1, "min_feature_rows": 1}
    for det in [IsolationForestDetector(**params), PCADetector(**params)]:
        det.train(fit_rows, trained_at)
        rule_threshold = det.threshold
        det.threshold, cal_f1 = best_threshold(det.score(part_docs["train"]), truth["train"])
        anomalies = [a for d in part_docs["eval"] for a in det.process_window([d])]
        res = _bgl_eval(anomalies, part_docs["eval"], truth["eval"], line_window, labels,
                        eval_lines)
        res["threshold"] = {"chosen": round(det.threshold, 4),
                            "how": "best window F1 on the training half (in-sample scores)",
                            "train_f1": round(cal_f1, 3),
                            "model_rule": round(rule_threshold, 4),
                            "model_version": det.version}
        rule = det.__class__(**params)
        rule.train(fit_rows, trained_at)
        rule_anoms = [a for d in part_docs["eval"] for a in rule.process_window([d])]
        res["with_model_rule_threshold"] = _bgl_eval(
            rule_anoms, part_docs["eval"], truth["eval"], line_window, labels, eval_lines)
        out["detectors"][det.kind] = res
        union_windows |= {a["window"]["start"] for a in anomalies}
        union_lines |= set(res.pop("_lines"))
        res["with_model_rule_threshold"].pop("_lines")
    # Novelty: min_new_count chosen on the training half (seen set learnt on its first fifth).
    warm = len(part_docs["train"]) // 5
    train_truth = {d["window"]["start"]: bool(t)
                   for d, t in list(zip(part_docs["train"], truth["train"]))[warm:]}
    best = (-1.0, 1)
    for k in (1, 2, 3, 5):
        probe = NoveltyDetector(warmup_windows=warm, min_new_count=k)
        flagged = {a["window"]["start"] for d in part_docs["train"] for a in probe.process_window([d])}
        best = max(best, (_prf_sets(flagged, train_truth)["f1"], -k))
    nov = NoveltyDetector(warmup_windows=0, min_new_count=-best[1])
    for d in part_docs["train"]:
        nov.process_window([d])
    nov_anoms = [a for d in part_docs["eval"] for a in nov.process_window([d])]
    res = _bgl_eval(nov_anoms, part_docs["eval"], truth["eval"], line_window, labels, eval_lines)
    res["threshold"] = {
        "chosen": f"new error/fatal template (>= {nov.min_new_count} lines) or rare burst "
                  f"x{nov.burst_factor:g}, >= {nov.burst_min_count}",
        "how": f"min_new_count in (1, 2, 3, 5) with the best window F1 on the training half "
               f"({best[0]}); seen set learnt on the training half"}
    union_windows |= {a["window"]["start"] for a in nov_anoms}
    union_lines |= set(res.pop("_lines"))
    out["detectors"]["novelty"] = res
    ev_truth = {d["window"]["start"]: bool(t) for d, t in zip(part_docs["eval"], truth["eval"])}
    out["detectors"]["union"] = {
        "window": _prf_sets(union_windows, ev_truth),
        "line": _prf_lines(union_lines, labels, eval_lines),
        "threshold": {"chosen": "as per detector", "how": "any of the above flags"},
    }
    return out


def _window_start(ts: str, size: int) -> str:
    from streams.windows import format_time_us, parse_time_us
    us = parse_time_us(ts)
    return format_time_us(us - us % (size * 1_000_000))


def _bgl_eval(anomalies: list[dict], eval_docs: list[dict], truth: np.ndarray,
              line_window: list[str], labels: list[bool], eval_lines: range) -> dict[str, Any]:
    flagged = {a["window"]["start"] for a in anomalies}
    ev_truth = {d["window"]["start"]: bool(t) for d, t in zip(eval_docs, truth)}
    blamed: dict[str, set[str]] = defaultdict(set)
    for a in anomalies:
        blamed[a["window"]["start"]].update(
            it["name"] for it in a["explanation"]["items"] if it.get("kind") == "template")
    templates = _line_templates()
    lines = [i for i in eval_lines if templates[i] in blamed.get(line_window[i], ())]
    return {"window": _prf_sets(flagged, ev_truth), "line": _prf_lines(set(lines), labels, eval_lines),
            "_lines": lines}


_TEMPLATES: list[str] = []


def _line_templates() -> list[str]:
    return _TEMPLATES


def _prf_sets(flagged: set[str], truth: dict[str, bool]) -> dict[str, float]:
    tp = sum(1 for w, y in truth.items() if y and w in flagged)
    fp = sum(1 for w, y in truth.items() if not y and w in flagged)
    fn = sum(1 for w, y in truth.items() if y and w not in flagged)
    return prf(tp, fp, fn)


def _prf_lines(flagged: set[int], labels: list[bool], eval_lines: range) -> dict[str, float]:
    tp = sum(1 for i in eval_lines if labels[i] and i in flagged)
    fp = sum(1 for i in eval_lines if not labels[i] and i in flagged)
    fn = sum(1 for i in eval_lines if labels[i] and i not in flagged)
    return prf(tp, fp, fn)


# ----------------------------------------------------------------------------------------
# Scenarios and throughput
# ----------------------------------------------------------------------------------------
def scenario_specs() -> list[WindowSpec]:
    return [WindowSpec("tumbling", 60, allowed_lateness=10,
                       key_fields=("kubernetes.namespace", "service.name")),
            WindowSpec("hopping", 300, 60, allowed_lateness=10,
                       key_fields=("kubernetes.namespace", "log.level"))]


def run_scenario(seed: int, n_windows: int, use_miner: bool, check_batch: bool) -> dict[str, Any]:
    t = time.perf_counter()
    sc = scenarios.generate(n_windows=n_windows, seed=seed, use_miner=use_miner)
    gen_s = time.perf_counter() - t
    specs = scenario_specs()
    agg = WindowAggregator(specs, pipeline="kubernetes")
    scorer = DetectorSet(default_detectors(windows=(specs[0].name,)))
    closed: list[dict] = []
    anomalies: list[dict] = []
    late = 0
    agg_s = score_s = 0.0
    scored_docs = 0
    for k in range(0, len(sc.events), 2000):
        t = time.perf_counter()
        for ev in sc.events[k : k + 2000]:
            part = zlib.crc32(ev["kubernetes"]["pod"]["name"].encode()) % 4
            late += len(agg.add(ev, part))
        ready = [c.doc for c in agg.close_ready()]
        agg_s += time.perf_counter() - t
        closed += ready
        t = time.perf_counter()
        anomalies += scorer.process(ready)
        score_s += time.perf_counter() - t
        scored_docs += sum(1 for d in ready if d["window"]["name"] == specs[0].name)
    t = time.perf_counter()
    ready = [c.doc for c in agg.flush()]
    agg_s += time.perf_counter() - t
    closed += ready
    t = time.perf_counter()
    anomalies += scorer.process(ready)
    score_s += time.perf_counter() - t
    scored_docs += sum(1 for d in ready if d["window"]["name"] == specs[0].name)
    res: dict[str, Any] = {"seed": seed, "events": len(sc.events), "windows": n_windows,
                           "template_source": sc.template_source, "late_events": late}
    if check_batch:
        ref = batch_recompute(sc.events, specs, pipeline="kubernetes")
        key = lambda d: (d["window"]["name"], d["window"]["start"], sorted(d["key"].items()))
        res["equals_batch_recompute"] = sorted(closed, key=key) == sorted(ref, key=key)
    res["throughput"] = {
        "generate_s": round(gen_s, 2),
        "aggregation_events_per_s": round(len(sc.events) / agg_s),
        "aggregation_specs": len(specs),
        "scoring_windows_per_s": round(scored_docs / score_s, 1),
        "scoring_window_docs": scored_docs,
        "scoring_s": round(score_s, 2),
    }
    res.update(_evaluate(sc, anomalies))
    res["_series"] = _series(sc, closed, specs[0].name)
    res["_alerts"] = sorted({sc.window_of(a["@timestamp"]) for a in anomalies})
    return res


def _evaluate(sc: scenarios.Scenario, anomalies: list[dict]) -> dict[str, Any]:
    by_window: dict[int, list[dict]] = defaultdict(list)
    for a in anomalies:
        by_window[sc.window_of(a["@timestamp"])].append(a)
    positive = {w for i in sc.incidents if i.should_alert for w in range(i.start, i.end + 1)}
    alerted = set(by_window)
    window = prf(len(alerted & positive), len(alerted - positive), len(positive - alerted))
    incidents = []
    for inc in sc.incidents:
        own = {w: [a for a in by_window[w] if a["key"].get("service_name") == inc.service]
               for w in range(inc.start, inc.end + 2)}
        hits = sorted(w for w, alerts in own.items() if alerts)
        dets = sorted({a["detector"] for w in hits for a in own[w]})
        incidents.append({
            "incident": inc.name, "service": f"{inc.namespace}/{inc.service}",
            "windows": f"{inc.start}-{inc.end}", "should_alert": inc.should_alert,
            "alerted": bool(hits), "delay_windows": hits[0] - inc.start if hits else None,
            "detectors": dets,
            "example": own[hits[0]][0]["explanation"]["summary"][:140] if hits else "",
        })
    # An incident counts as found when its own service raised an anomaly in its windows or
    # the window after; the window-level scores count any anomaly in a window.
    real = [i for i in incidents if i["should_alert"]]
    det = [i for i in real if i["alerted"]]
    false_alarms = [
        {"window": w, "detector": a["detector"], "key": a["key"],
         "summary": a["explanation"]["summary"][:140]}
        for w in sorted(alerted - positive) for a in by_window[w]]
    return {
        "window_level": window,
        "incident_recall": round(len(det) / len(real), 3),
        "max_delay_windows": max((i["delay_windows"] for i in det), default=None),
        "deploy_alerted": any(i["alerted"] for i in incidents if not i["should_alert"]),
        "incidents": incidents,
        "anomaly_docs_by_detector": _count_by(anomalies, "detector"),
        "false_alarms": false_alarms,
    }


def _count_by(docs: list[dict], field: str) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for d in docs:
        out[d[field]] += 1
    return dict(sorted(out.items()))


def _series(sc: scenarios.Scenario, docs: list[dict], name: str) -> dict[str, list[int]]:
    series: dict[str, list[int]] = defaultdict(lambda: [0] * sc.n_windows)
    for d in docs:
        if d["window"]["name"] == name:
            w = sc.window_of(d["window"]["start"])
            if 0 <= w < sc.n_windows:
                series[d["key"]["service_name"]][w] += d["count"]
    return dict(series)


def miner_throughput(messages: list[str]) -> float | None:
    try:
        from streams.templates import TemplateMiner
    except ImportError:
        return None
    miner = TemplateMiner()
    t = time.perf_counter()
    for m in messages:
        miner.match(m)
    return round(len(messages) / (time.perf_counter() - t))


# ----------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------
def markdown(results: dict[str, Any]) -> str:
    L = ["# Anomaly benchmark", "", f"Run {results['run_at']} (2-core machine, shared).", ""]
    b = results.get("bgl")
    if b:
        L += ["## BGL (Loghub 2k, real labels)", "",
              (f"{b['lines']} lines, {b['alert_lines']} alert lines, template ids: "
               f"{b['template_source']}; tumbling {b['window_seconds']} s windows, global key; "
               f"{b['windows']} non-empty windows. Split in time by line: training half "
               f"({b['split']['train']['windows']} windows, "
               f"{b['split']['train']['anomalous_windows']} anomalous), evaluation half "
               f"({b['split']['eval']['windows']}, {b['split']['eval']['anomalous_windows']})."),
              "",
              ("Line level: a line counts as flagged when an anomaly of its window names its "
               "template in the explanation."),
              "",
              "| detector | window P | window R | window F1 | line P | line R | line F1 | threshold | how chosen |",
              "|---|---|---|---|---|---|---|---|---|"]
        for name, r in b["detectors"].items():
            th = r["threshold"]
            L.append(f"| {name} | {r['window']['precision']} | {r['window']['recall']} | "
                     f"{r['window']['f1']} | {r['line']['precision']} | {r['line']['recall']} | "
                     f"{r['line']['f1']} | {th['chosen']} | {th['how']} |")
            if "with_model_rule_threshold" in r:
                m = r["with_model_rule_threshold"]
                L.append(f"| {name} (model's own rule) | {m['window']['precision']} | "
                         f"{m['window']['recall']} | {m['window']['f1']} | {m['line']['precision']} | "
                         f"{m['line']['recall']} | {m['line']['f1']} | {th['model_rule']} | "
                         f"model's unsupervised rule on the training half |")
        L.append("")
    L += ["## Incident scenarios (seeded Kubernetes logs, detector defaults)", "",
          "| seed | events | templates | late | window P | window R | window F1 | incidents found | max delay (windows) | deploy alerted | batch equal |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in results["scenarios"]:
        w = s["window_level"]
        L.append(f"| {s['seed']} | {s['events']} | {s['template_source']} | {s['late_events']} | "
                 f"{w['precision']} | {w['recall']} | {w['f1']} | {s['incident_recall']} | "
                 f"{s['max_delay_windows']} | {s['deploy_alerted']} | "
                 f"{s.get('equals_batch_recompute', 'n/a')} |")
    for s in results["scenarios"]:
        L += ["", f"### Seed {s['seed']}: incidents", "",
              "| incident | service | windows | alerted | delay | detectors | first explanation |",
              "|---|---|---|---|---|---|---|"]
        for i in s["incidents"]:
            L.append(f"| {i['incident']}{'' if i['should_alert'] else ' (must not alert)'} | "
                     f"{i['service']} | {i['windows']} | {i['alerted']} | {i['delay_windows']} | "
                     f"{', '.join(i['detectors'])} | {i['example'].replace('|', '/')} |")
        if s["false_alarms"]:
            L += ["", "False alarms:", ""]
            L += [f"- window {f['window']} {f['detector']} {f['key']}: {f['summary'].replace('|', '/')}"
                  for f in s["false_alarms"]]
    L += ["", "## Notes", "", *NOTES, "", "## Throughput (same run)", "",
          "| seed | aggregation events/s (2 window specs) | scoring windows/s (5 detectors) | template mining lines/s |",
          "|---|---|---|---|"]
    for s in results["scenarios"]:
        t = s["throughput"]
        L.append(f"| {s['seed']} | {t['aggregation_events_per_s']} | {t['scoring_windows_per_s']} | "
                 f"{results.get('miner_lines_per_s', 'n/a')} |")
    return "\n".join(L) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = results["scenarios"][0]
    fig, ax = plt.subplots(figsize=(12, 5))
    for name, ys in sorted(s["_series"].items()):
        ax.plot(range(len(ys)), ys, label=name, lw=1)
    for inc in s["incidents"]:
        a, b = (int(x) for x in inc["windows"].split("-"))
        ax.axvspan(a - 0.5, b + 0.5, color="red" if inc["should_alert"] else "green", alpha=0.15)
        ax.text(a, ax.get_ylim()[1] * 0.95, inc["incident"], fontsize=7, rotation=90, va="top")
    for w in s["_alerts"]:
        ax.axvline(w, color="black", lw=0.6, ls=":")
    ax.set_xlabel("window (60 s)")
    ax.set_ylabel("lines per window")
    ax.set_title(f"Scenario seed {s['seed']}: red = incident, green = normal deploy, "
                 "dotted = window with an anomaly")
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bgl-templates", choices=["truth", "miner"], default="truth")
    ap.add_argument("--bgl-window", type=int, default=3600, help="BGL window size, seconds")
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 11])
    ap.add_argument("--windows", type=int, default=120, help="scenario length in windows")
    ap.add_argument("--no-miner", action="store_true", help="scenario: generator template ids")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    results: dict[str, Any] = {"run_at": datetime.now(UTC).isoformat(timespec="seconds")}
    events, _, _ = load_bgl(args.bgl_templates)
    _TEMPLATES[:] = [e["log"]["template_id"] for e in events]
    results["bgl"] = run_bgl(args.bgl_templates, args.bgl_window)
    results["scenarios"] = [run_scenario(seed, args.windows, not args.no_miner, i == 0)
                            for i, seed in enumerate(args.seeds)]
    sc = scenarios.generate(n_windows=20, seed=1, use_miner=False)
    results["miner_lines_per_s"] = miner_throughput([e["message"] for e in sc.events])
    md = markdown(results)
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "anomaly.md").write_text(md)
    plot(results, args.out / "anomaly.png")
    for s in results["scenarios"]:
        s.pop("_series"), s.pop("_alerts")
    (args.out / "anomaly.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
