"""``logriver parse``: raw lines on stdin -> one JSON event per input line on stdout, in order.

No service is needed: the pipeline runs in-process.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import orjson

from streams.cli import CliError
from streams.cli.common import load_or_fail


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parse", help="parse raw lines from stdin into JSON events (no services)")
    p.add_argument("--pipeline", "-p", default="kubernetes", help="pipeline name or path")
    p.add_argument("--dissect", help="header pattern in dissect syntax; %%{message} is mined")
    p.add_argument("--regex", help="header regular expression with named groups; (?P<message>) is mined")
    p.add_argument("--grok", action="append",
                   help="header pattern in grok syntax, e.g. '%%{COMBINEDAPACHELOG}' (repeat: the "
                        "first that matches wins); Logstash's ECS pattern library is built in")
    p.add_argument("--grok-patterns-dir", action="append", metavar="DIR",
                   help="more grok pattern files (NAME regex lines), as Logstash's patterns_dir")
    p.add_argument("--grok-legacy", action="store_true",
                   help="Logstash's legacy pattern set (clientip, verb...) instead of ecs-v1")
    p.add_argument("--format", choices=["auto", "docker", "cri", "plain"], default="auto",
                   help="container runtime framing of the input lines (default: detect per line)")
    p.set_defaults(func=_parse)


def _parse(args: argparse.Namespace) -> int:
    from streams.parse import Grok, Parser
    from streams.replay.runner import LocalRun, stdin_record

    pipeline = load_or_fail(args.pipeline)
    if args.dissect or args.regex or args.grok:
        try:
            grok = Grok(args.grok, pattern_set="legacy" if args.grok_legacy else "ecs-v1",
                        patterns_dir=args.grok_patterns_dir) if args.grok else None
            parser = Parser(dissect=args.dissect, regex=args.regex, grok=grok)
        except (ValueError, TypeError, OSError) as exc:
            raise CliError(f"bad header pattern: {exc}") from None
        pipeline = dataclasses.replace(pipeline, parser=parser)
    fmt = None if args.format == "auto" else args.format
    run = LocalRun(pipeline, windows=False)  # one event per line; windows belong to replay
    out = sys.stdout.buffer
    for number, line in enumerate(sys.stdin.buffer):
        if line.endswith(b"\n"):
            line = line[:-1]
        events, letters = run.process([stdin_record(line, number, fmt)])
        for obj in events or letters:
            out.write(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE))
    out.flush()
    return 0
