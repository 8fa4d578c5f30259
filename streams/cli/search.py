"""``logriver search``: what a user asks first, answered from Elasticsearch.

    logriver search errors --namespace shop --since 1h
    logriver search templates --pod checkout-7d9f8b6c5-x2x4z [--since 24h]
    logriver search anomalies --service checkout
    logriver search logs 'payment AND declined' --since 15m

A table by default, ``--json`` for scripts. The queries live in ``streams.views.query``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from typing import Any

import orjson

from streams.cli import CliError
from streams.cli.common import settings_from
from streams.views import query


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search events, templates and anomalies in Elasticsearch")
    what = p.add_subparsers(dest="search_what", metavar="WHAT")

    def common(sp: argparse.ArgumentParser, since: str | None) -> None:
        sp.add_argument("--es-url", help="Elasticsearch URL (env LOGRIVER_ES_URL, default http://127.0.0.1:$LOGRIVER_ES_PORT or 9200)")
        sp.add_argument("--index-prefix", help="index prefix (env LOGRIVER_INDEX_PREFIX, default logriver)")
        sp.add_argument("--since", default=since,
                        help=f"time range back from now: 30s, 15m, 1h, 7d (default {since or 'all'})")
        sp.add_argument("--size", "-n", type=int, default=20, help="rows to show (default 20)")
        sp.add_argument("--json", action="store_true", help="print JSON instead of a table")
        sp.set_defaults(func=_search)

    e = what.add_parser("errors", help="error and fatal events, newest first")
    e.add_argument("--namespace", "-N")
    e.add_argument("--pod")
    e.add_argument("--service")
    common(e, "1h")

    t = what.add_parser("templates", help="the most frequent log templates of a pod")
    t.add_argument("--pod")
    t.add_argument("--namespace", "-N")
    t.add_argument("--service")
    common(t, None)

    a = what.add_parser("anomalies", help="alerts naming a service (or namespace, pod), newest first")
    a.add_argument("--service")
    a.add_argument("--namespace", "-N")
    a.add_argument("--pod", help="a pod among the alert's influencers")
    a.add_argument("--detector")
    a.add_argument("--min-score", type=float)
    common(a, None)

    q = what.add_parser("logs", help="a free query (Lucene syntax; message by default)")
    q.add_argument("query", nargs="?", default="*")
    q.add_argument("--namespace", "-N")
    q.add_argument("--pod")
    q.add_argument("--service")
    q.add_argument("--level")
    common(q, "15m")
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])


async def run_query(args: argparse.Namespace) -> query.Result:
    """Run the query ``args`` describe (also used by tests)."""
    from elasticsearch import AsyncElasticsearch

    s = settings_from(args)
    common: dict[str, Any] = {"since": args.since, "size": args.size}
    async with AsyncElasticsearch(s.es_url, request_timeout=30, max_retries=1) as es:
        if args.search_what == "errors":
            return await query.errors(es, s.index_prefix, namespace=args.namespace, pod=args.pod,
                                      service=args.service, **common)
        if args.search_what == "templates":
            return await query.top_templates(es, s.index_prefix, pod=args.pod,
                                             namespace=args.namespace, service=args.service,
                                             **common)
        if args.search_what == "anomalies":
            return await query.anomalies(es, s.index_prefix, service=args.service,
                                         namespace=args.namespace, pod=args.pod,
                                         detector=args.detector,
                                         min_score=args.min_score, **common)
        return await query.logs(es, s.index_prefix, args.query, namespace=args.namespace,
                                pod=args.pod, service=args.service, level=args.level, **common)


def _search(args: argparse.Namespace) -> int:
    try:
        query.parse_since(args.since)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.size < 0:
        raise CliError("--size must be >= 0")
    from elastic_transport import ConnectionError as TransportConnectionError
    from elasticsearch import ApiError

    try:
        result = asyncio.run(run_query(args))
    except TransportConnectionError as exc:
        raise CliError(f"Elasticsearch unreachable: {exc}") from None
    except ApiError as exc:
        raise CliError(f"Elasticsearch answered {exc.meta.status}: {exc}") from None
    if args.json:
        sys.stdout.write(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(format_table(result))
    return 0


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return " ".join(str(value).split())  # one line per row


def format_table(result: query.Result, width: int | None = None) -> str:
    """A plain-text table; the last column is cut to the terminal width."""
    width = width or shutil.get_terminal_size((160, 24)).columns
    cols = result.columns
    cells = [[_cell(r.get(c)) for c in cols] for r in result.rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(cols)]
    if cols:
        widths[-1] = max(len(cols[-1]), min(widths[-1], width - sum(w + 2 for w in widths[:-1])))
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
    for row in cells:
        row[-1] = row[-1] if len(row[-1]) <= widths[-1] else row[-1][: max(1, widths[-1] - 1)] + "…"
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    shown = len(result.rows)
    noun = {"templates": "events"}.get(result.kind, result.kind)
    lines.append(f"({shown} shown of {result.total} matching {noun})")
    return "\n".join(lines) + "\n"
