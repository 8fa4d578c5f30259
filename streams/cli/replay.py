"""``logriver replay PATH...``: run a pipeline in-process over a log file, a node's log
folder (the agent's layouts: ``/var/log`` with ``containers/`` and ``pods/``, docker
json-file or CRI) or globs, with a progress bar, then print a summary. Optional outputs: the
events, dead letters, closed windows and alerts as JSON lines, an HTML report."""

from __future__ import annotations

import argparse
import glob
import os
import sys
from typing import Any

import orjson
from tqdm import tqdm

from streams.cli import CliError
from streams.cli.common import load_or_fail


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="process log files, a node's log folder or globs "
                                      "in-process and print a summary")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="a log file, a folder in the node agent's layouts (e.g. /var/log), "
                        "or a glob; several are merged in event time")
    p.add_argument("--pipeline", "-p", default="kubernetes", help="pipeline name or path")
    p.add_argument("--format", choices=["auto", "docker", "cri", "plain"], default="auto")
    p.add_argument("--events", metavar="OUT.jsonl", help="write every event as a JSON line")
    p.add_argument("--dead-letters", metavar="OUT.jsonl", help="write dead letters as JSON lines")
    p.add_argument("--metrics", metavar="OUT.jsonl",
                   help="write the closed windows (metrics documents) as JSON lines")
    p.add_argument("--anomalies", metavar="OUT.jsonl",
                   help="write the alerts the pipeline's detectors raised as JSON lines (each "
                        "alert once, in its final state, ordered by start)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--report", metavar="REPORT.html",
                   help="write a self-contained HTML report (volume, templates, anomalies, "
                        "dead letters)")
    p.set_defaults(func=_replay)


def _check_paths(paths: list[str]) -> None:
    for path in paths:
        if not (os.path.exists(path) or glob.has_magic(path)):
            raise CliError(f"no such file or folder: {path}")
        if glob.has_magic(path) and not glob.glob(path):
            raise CliError(f"no file matches {path}")


def _replay(args: argparse.Namespace) -> int:
    _check_paths(args.paths)
    pipeline = load_or_fail(args.pipeline)
    outputs = {name: open(path, "wb") if path else None  # noqa: SIM115
               for name, path in (("events", args.events), ("dead_letters", args.dead_letters),
                                  ("metrics", args.metrics))}
    opt = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
    collector = None
    if args.report:
        from streams.views.report import ReportCollector

        name = os.path.basename(args.paths[0].rstrip("/")) + ("" if len(args.paths) == 1 else " ...")
        collector = ReportCollector(title=f"Logriver replay: {name}")

    def on_events(events: list, letters: list) -> None:
        if collector is not None:
            collector.on_events(events, letters)
        if outputs["events"]:
            outputs["events"].writelines(orjson.dumps(e, option=opt) for e in events)
        if outputs["dead_letters"]:
            outputs["dead_letters"].writelines(orjson.dumps(d, option=opt) for d in letters)

    def on_windows(metrics: list, anomalies: list) -> None:
        if outputs["metrics"]:
            outputs["metrics"].writelines(orjson.dumps(m, option=opt) for m in metrics)

    fmt = None if args.format == "auto" else args.format
    try:
        summary = _run(args.paths, pipeline, fmt, on_events, on_windows)
    finally:
        for fh in outputs.values():
            if fh:
                fh.close()
    alerts = sorted(summary.alerts.values(), key=lambda a: (a["@timestamp"], a["event"]["id"]))
    if args.anomalies:
        with open(args.anomalies, "wb") as fh:
            fh.writelines(orjson.dumps(a, option=opt) for a in alerts)
    if collector is not None:
        from streams.views.report import write_report

        collector.add_anomalies(alerts)
        collector.set_run(summary, source=" ".join(args.paths), pipeline=pipeline.name)
        size_written = write_report(collector, args.report)
        print(f"report: {args.report} ({size_written / 1024:.0f} KiB)", file=sys.stderr)
    _print_summary(summary.as_dict(), alerts, args.json)
    return 0


def _run(paths: list[str], pipeline: Any, fmt: str | None, on_events: Any, on_windows: Any) -> Any:
    if len(paths) == 1 and os.path.isfile(paths[0]):
        from streams.replay.runner import replay_file

        size = os.path.getsize(paths[0])
        with tqdm(total=size, unit="B", unit_scale=True, desc="replay", file=sys.stderr,
                  disable=None) as bar:
            def progress(done: int) -> None:
                bar.update(max(0, done - bar.n))

            return replay_file(paths[0], pipeline, fmt=fmt, progress=progress,
                               on_events=on_events, on_windows=on_windows)
    from streams.replay.tree import replay_tree

    bars: dict[str, tqdm] = {}

    def progress_tree(phase: str, done: int) -> None:
        bar = bars.get(phase)
        if bar is None:
            bar = bars[phase] = tqdm(unit=" lines", desc=phase, file=sys.stderr, disable=None)
        bar.update(max(0, done - bar.n))

    try:
        return replay_tree(paths, pipeline, fmt=fmt, progress=progress_tree,
                           on_events=on_events, on_windows=on_windows)
    finally:
        for bar in bars.values():
            bar.close()


def _print_summary(data: dict[str, Any], alerts: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    print(f"{data['lines']} lines -> {data['events']} events, {data['dead_letters']} dead letters "
          f"in {data['seconds']} s ({data['lines_per_second']} lines/s)")
    print("by level:  " + ", ".join(f"{k}={v}" for k, v in data["by_level"].items()))
    print("by format: " + ", ".join(f"{k}={v}" for k, v in data["by_format"].items()))
    print(f"templates: {data['distinct_templates']} distinct; top:")
    for t in data["top_templates"]:
        print(f"  {t['count']:>8}  {t['id']}  {t['template'][:100]}")
    if data["windows_closed"]:
        print(f"windows:   {data['windows_closed']} closed; alerts: {data['anomalies']} "
              + (("(" + ", ".join(f"{k}={v}" for k, v in data["anomalies_by_detector"].items()) + ")")
                 if data["anomalies"] else ""))
    for a in alerts[:20]:
        where = "/".join(str(v) for v in (a.get("key") or {}).values())
        print(f"  {a['alert']['start']} .. {a['alert']['end']}  {a['severity']:<8} {where:<30} "
              f"{a['explanation']['summary'][:90]}")
    if len(alerts) > 20:
        print(f"  ... {len(alerts) - 20} more")
    if data["dead_letter_reasons"]:
        print("dead letters: " + ", ".join(f"{k}={v}" for k, v in data["dead_letter_reasons"].items()))
