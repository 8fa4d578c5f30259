"""``logriver run PIPELINE``: start a Faust worker for a pipeline (name or path)."""

from __future__ import annotations

import argparse

from streams.cli.common import add_connection_args, load_or_fail, settings_from
from streams.ops.config import Settings


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
    import asyncio

    from streams.worker.app import build_app, create_topics, run_worker

    pipeline = load_or_fail(args.pipeline)
    settings: Settings = settings_from(args)
    create_topics(pipeline, settings)
    asyncio.set_event_loop(asyncio.new_event_loop())
    worker = build_app(pipeline, settings, web_port=args.web_port,
                       metrics_port=args.metrics_port, metrics_host=args.metrics_host)
    if args.web_port is not None:
        from streams.views.console import install_console

        install_console(worker.app, worker.stats, es_url=settings.es_url,
                        kafka_bootstrap=settings.kafka_bootstrap)
    run_worker(worker, loglevel=args.loglevel)
    return 0
