"""``logriver run PIPELINE``: start a Faust worker for a pipeline (name or path)."""

from __future__ import annotations

import argparse

from streams.commands.common import add_connection_args, load_or_fail, settings_from
from streams.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a Faust worker for a pipeline (until stopped)")
    p.add_argument("pipeline", help="pipeline name (kubernetes) or path (pipelines/kubernetes.py)")
    p.add_argument("--web-port", type=int, default=None,
                   help="serve Faust's web interface on 127.0.0.1:PORT (off by default)")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve Prometheus /metrics and /health on 127.0.0.1:PORT (off by default)")
    p.add_argument("--metrics-host", default="127.0.0.1",
                   help="address of the metrics endpoint (0.0.0.0 in a pod)")
    p.add_argument("--loglevel", default="warning")
    add_connection_args(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from streams.worker import run_worker

    pipeline = load_or_fail(args.pipeline)
    settings: Settings = settings_from(args)
    run_worker(pipeline, settings, web_port=args.web_port, loglevel=args.loglevel,
               metrics_port=args.metrics_port, metrics_host=args.metrics_host)
    return 0
