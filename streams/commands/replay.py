"""``logriver replay FILE``: run a pipeline over a log file in-process, with a progress bar,
then print a summary. Optional outputs: the events as JSON lines."""

from __future__ import annotations

import argparse
import os
import sys

import orjson
from tqdm import tqdm

from streams.cli import CliError
from streams.commands.common import load_or_fail
from streams.runner import replay_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="process a log file in-process and print a summary")
    p.add_argument("file")
    p.add_argument("--pipeline", "-p", default="kubernetes", help="pipeline name or path")
    p.add_argument("--format", choices=["auto", "docker", "cri", "plain"], default="auto")
    p.add_argument("--events", metavar="OUT.jsonl", help="write every event as a JSON line")
    p.add_argument("--dead-letters", metavar="OUT.jsonl", help="write dead letters as JSON lines")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_replay)


def _replay(args: argparse.Namespace) -> int:
    if not os.path.isfile(args.file):
        raise CliError(f"no such file: {args.file}")
    pipeline = load_or_fail(args.pipeline)
    events_out = open(args.events, "wb") if args.events else None  # noqa: SIM115
    dl_out = open(args.dead_letters, "wb") if args.dead_letters else None  # noqa: SIM115
    opt = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE

    def on_events(events: list, letters: list) -> None:
        if events_out:
            events_out.writelines(orjson.dumps(e, option=opt) for e in events)
        if dl_out:
            dl_out.writelines(orjson.dumps(d, option=opt) for d in letters)

    size = os.path.getsize(args.file)
    with tqdm(total=size, unit="B", unit_scale=True, desc="replay", file=sys.stderr,
              disable=None) as bar:
        def progress(done: int) -> None:
            bar.update(max(0, done - bar.n))

        summary = replay_file(args.file, pipeline, fmt=None if args.format == "auto" else args.format,
                              progress=progress, on_events=on_events)
    for fh in (events_out, dl_out):
        if fh:
            fh.close()
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
    if data["dead_letter_reasons"]:
        print("dead letters: " + ", ".join(f"{k}={v}" for k, v in data["dead_letter_reasons"].items()))
    return 0
