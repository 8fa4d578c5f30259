"""``logriver replay FILE``: run a pipeline over a log file in-process, with a progress bar,
then print a summary. Optional outputs: the events as JSON lines, an HTML report."""

from __future__ import annotations

import argparse
import os
import sys

import orjson
from tqdm import tqdm

from streams.cli import CliError
from streams.cli.common import load_or_fail


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="process a log file in-process and print a summary")
    p.add_argument("file")
    p.add_argument("--pipeline", "-p", default="kubernetes", help="pipeline name or path")
    p.add_argument("--format", choices=["auto", "docker", "cri", "plain"], default="auto")
    p.add_argument("--events", metavar="OUT.jsonl", help="write every event as a JSON line")
    p.add_argument("--dead-letters", metavar="OUT.jsonl", help="write dead letters as JSON lines")
    p.add_argument("--metrics", metavar="OUT.jsonl",
                   help="write the closed windows (metrics documents) as JSON lines")
    p.add_argument("--anomalies", metavar="OUT.jsonl",
                   help="write the anomaly events the pipeline's detectors found as JSON lines")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--report", metavar="REPORT.html",
                   help="write a self-contained HTML report (volume, templates, anomalies, "
                        "dead letters)")
    p.set_defaults(func=_replay)


def _replay(args: argparse.Namespace) -> int:
    if not os.path.isfile(args.file):
        raise CliError(f"no such file: {args.file}")
    from streams.replay.runner import replay_file

    pipeline = load_or_fail(args.pipeline)
    events_out = open(args.events, "wb") if args.events else None  # noqa: SIM115
    dl_out = open(args.dead_letters, "wb") if args.dead_letters else None  # noqa: SIM115
    metrics_out = open(args.metrics, "wb") if args.metrics else None  # noqa: SIM115
    anomalies_out = open(args.anomalies, "wb") if args.anomalies else None  # noqa: SIM115
    opt = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
    collector = None
    if args.report:
        from streams.views.report import ReportCollector

        collector = ReportCollector(title=f"Logriver replay: {os.path.basename(args.file)}")

    def on_events(events: list, letters: list) -> None:
        if collector is not None:
            collector.on_events(events, letters)
        if events_out:
            events_out.writelines(orjson.dumps(e, option=opt) for e in events)
        if dl_out:
            dl_out.writelines(orjson.dumps(d, option=opt) for d in letters)

    def on_windows(metrics: list, anomalies: list) -> None:
        if collector is not None:
            collector.add_anomalies(anomalies)
        if metrics_out:
            metrics_out.writelines(orjson.dumps(m, option=opt) for m in metrics)
        if anomalies_out:
            anomalies_out.writelines(orjson.dumps(a, option=opt) for a in anomalies)

    size = os.path.getsize(args.file)
    with tqdm(total=size, unit="B", unit_scale=True, desc="replay", file=sys.stderr,
              disable=None) as bar:
        def progress(done: int) -> None:
            bar.update(max(0, done - bar.n))

        summary = replay_file(args.file, pipeline, fmt=None if args.format == "auto" else args.format,
                              progress=progress, on_events=on_events, on_windows=on_windows)
    for fh in (events_out, dl_out, metrics_out, anomalies_out):
        if fh:
            fh.close()
    if collector is not None:
        from streams.views.report import write_report

        collector.set_run(summary, source=args.file, pipeline=pipeline.name)
        size_written = write_report(collector, args.report)
        print(f"report: {args.report} ({size_written / 1024:.0f} KiB)", file=sys.stderr)
    data = summary.as_dict()
    if args.json:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    print(f"{data['lines']} lines -> {data['events']} events, {data['dead_letters']} dead letters "
          f"in {data['seconds']} s ({data['lines_per_second']} lines/s)")
    print("by level:  " + ", ".join(f"{k}={v}" for k, v in data["by_level"].items()))
    print("by format: " + ", ".join(f"{k}={v}" for k, v in data["by_format"].items()))
    print(f"templates: {data['distinct_templates']} distinct; top:")
    for t in data["top_templates"]:
        print(f"  {t['count']:>8}  {t['id']}  {t['template'][:100]}")
    if data["windows_closed"]:
        print(f"windows:   {data['windows_closed']} closed; anomalies: {data['anomalies']} "
              + (("(" + ", ".join(f"{k}={v}" for k, v in data["anomalies_by_detector"].items()) + ")")
                 if data["anomalies"] else ""))
    if data["dead_letter_reasons"]:
        print("dead letters: " + ", ".join(f"{k}={v}" for k, v in data["dead_letter_reasons"].items()))
    return 0
