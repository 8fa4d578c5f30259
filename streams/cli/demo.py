"""``logriver demo``: the main job, end to end, on the real services.

Starts Kafka and Elasticsearch if needed, writes a realistic set of container logs, collects
them into Kafka with the node agent, runs the Faust worker for the kubernetes pipeline, waits
until every line is searchable, and prints a summary verified by querying Elasticsearch.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
import uuid
from pathlib import Path

from streams.cli import CliError
from streams.demo.chain import WorkerProcess, collect_once, wait_for_count
from streams.demo.loggen import generate
from streams.ops.config import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job end to end (services, collector, worker, Elasticsearch)")
    p.add_argument("--lines", type=int, default=20_000, help="container log lines to write (default 20000)")
    p.add_argument("--workdir", help="where to write the node's log files (default: a temporary folder)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for every line")
    p.add_argument("--no-services", action="store_true", help="do not start services; use running ones")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    settings = Settings()
    if not args.no_services:
        from streams import services

        print("services: starting Kafka and Elasticsearch if needed ...", flush=True)
        t0 = time.perf_counter()
        try:
            up = services.up()
        except services.ServiceError as exc:
            raise CliError(str(exc)) from None
        for st in up.values():
            print(f"  {st.name:<14} {st.address}  (pid {st.pid})")
        print(f"  ready in {time.perf_counter() - t0:.1f} s")
    run = uuid.uuid4().hex[:8]
    settings = dataclasses.replace(
        settings, topic_prefix=f"demo-{run}.", index_prefix=f"logriver-demo-{run}"
    )
    with tempfile.TemporaryDirectory(prefix="logriver-demo-") as tmp:
        root = Path(args.workdir or tmp) / "var-log"
        gen = generate(root, args.lines, seed=7, bad_lines=True)
        print(f"wrote {gen.lines} lines in {len(gen.files)} container log files under {root}")
        with WorkerProcess("kubernetes", settings) as worker:
            started = time.perf_counter()
            n = asyncio.run(collect_once(settings, root, Path(tmp) / "checkpoints"))
            print(f"collected {n} lines into Kafka topic {settings.topic('logs.raw')}", flush=True)
            found = asyncio.run(
                wait_for_count(settings, gen.events, timeout=args.timeout, worker=worker, progress=True)
            )
            elapsed = time.perf_counter() - started
            summary = asyncio.run(_summary(settings))
    print()
    print(f"lines written      {gen.lines}   ({gen.events} events once stack traces are merged)")
    print(f"events collected   {n}")
    print(f"documents indexed  {found}   (index {settings.index_prefix}-events-kubernetes-*)")
    print(f"elapsed            {elapsed:.1f} s   ({gen.lines / elapsed:,.0f} lines/s, collect to searchable)")
    print("per namespace      " + ", ".join(f"{k}={v}" for k, v in summary["namespace"]))
    print("per level          " + ", ".join(f"{k}={v}" for k, v in summary["level"]))
    print(f"flagged lines      {summary['flagged']}  (bad input kept with a flag: "
          + ", ".join(f"{k}={v}" for k, v in summary["flags"]) + ")")
    print(f"distinct templates {summary['templates']}")
    ok = found == n == gen.events and dict(summary["namespace"]) == dict(gen.by_namespace)
    print("verified: " + ("every event is searchable exactly once" if ok else
                          f"MISMATCH (expected {gen.events} events per namespace {dict(gen.by_namespace)})"))
    return 0 if ok else 1


async def _summary(settings: Settings) -> dict:
    from elasticsearch import AsyncElasticsearch

    async with AsyncElasticsearch(settings.es_url) as es:
        resp = await es.search(
            index=f"{settings.index_prefix}-events-*",
            size=0,
            aggs={
                "namespace": {"terms": {"field": "kubernetes.namespace", "size": 50}},
                "level": {"terms": {"field": "log.severity", "size": 20, "missing": "-"}},
                "flags": {"terms": {"field": "logriver.flags", "size": 20}},
                "templates": {"cardinality": {"field": "log.template_id"}},
                "flagged": {"filter": {"exists": {"field": "logriver.flags"}}},
            },
        )
    aggs = resp["aggregations"]
    return {
        "namespace": [(b["key"], b["doc_count"]) for b in aggs["namespace"]["buckets"]],
        "level": [(b["key"], b["doc_count"]) for b in aggs["level"]["buckets"]],
        "flags": [(b["key"], b["doc_count"]) for b in aggs["flags"]["buckets"]],
        "templates": aggs["templates"]["value"],
        "flagged": aggs["flagged"]["doc_count"],
    }
