"""``logriver kibana export|import``, ``logriver indices install|retention`` and
``logriver setup`` (both installs at once, as docker-compose runs it).

Environment (explicit flags win): ``LOGRIVER_ES_URL`` (default http://127.0.0.1:9200),
``LOGRIVER_INDEX_PREFIX`` (default logriver), ``LOGRIVER_KIBANA_URL``,
``LOGRIVER_KIBANA_API_KEY`` or ``LOGRIVER_KIBANA_USERNAME`` / ``LOGRIVER_KIBANA_PASSWORD``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import orjson
from elasticsearch import ApiError, AsyncElasticsearch, TransportError

from schemas import elasticsearch as es
from schemas import kibana
from streams.cli import CliError

T = TypeVar("T")
DEFAULT_ES_URL = "http://127.0.0.1:9200"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name) or default


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``kibana`` and ``indices`` commands."""
    prefix_help = "index prefix (default: $LOGRIVER_INDEX_PREFIX or logriver)"

    p_kibana = sub.add_parser("kibana", help="Kibana data views and dashboard as code")
    k_actions = p_kibana.add_subparsers(dest="action", metavar="ACTION", required=True)
    p_export = k_actions.add_parser("export", help="write the saved objects as NDJSON")
    p_export.add_argument("-o", "--output", help="file to write (default: stdout)")
    p_export.add_argument("--prefix", help=prefix_help)
    p_export.set_defaults(func=_kibana_export)
    p_import = k_actions.add_parser("import", help="post the saved objects to Kibana (overwrite)")
    p_import.add_argument(
        "--url",
        default=_env("LOGRIVER_KIBANA_URL"),
        help="Kibana URL (default: $LOGRIVER_KIBANA_URL)",
    )
    p_import.add_argument("--file", help="NDJSON to import (default: generated now)")
    p_import.add_argument("--prefix", help=prefix_help)
    p_import.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    p_import.set_defaults(func=_kibana_import)

    p_indices = sub.add_parser("indices", help="Elasticsearch index templates and retention")
    i_actions = p_indices.add_subparsers(dest="action", metavar="ACTION", required=True)
    es_help = f"Elasticsearch URL (default: $LOGRIVER_ES_URL or {DEFAULT_ES_URL})"
    p_install = i_actions.add_parser(
        "install", help="detect the cluster's features, install ILM policies and templates"
    )
    p_install.add_argument("--url", help=es_help)
    p_install.add_argument("--prefix", help=prefix_help)
    p_install.add_argument(
        "--retention-days",
        type=int,
        default=es.DEFAULT_RETENTION_DAYS,
        help=f"ILM delete age where ILM exists (default {es.DEFAULT_RETENTION_DAYS})",
    )
    p_install.set_defaults(func=_indices_install)
    p_retention = i_actions.add_parser(
        "retention", help="delete daily indices older than N days (where ILM is absent)"
    )
    p_retention.add_argument("--days", type=int, required=True, help="days to keep")
    p_retention.add_argument("--url", help=es_help)
    p_retention.add_argument("--prefix", help=prefix_help)
    p_retention.add_argument("--dry-run", action="store_true", help="list, do not delete")
    p_retention.set_defaults(func=_indices_retention)

    p_setup = sub.add_parser(
        "setup", help="install the index templates, then import the Kibana objects if asked"
    )
    p_setup.add_argument("--url", help=es_help)
    p_setup.add_argument("--prefix", help=prefix_help)
    p_setup.add_argument(
        "--retention-days",
        type=int,
        default=es.DEFAULT_RETENTION_DAYS,
        help=f"ILM delete age where ILM exists (default {es.DEFAULT_RETENTION_DAYS})",
    )
    p_setup.add_argument(
        "--kibana-url",
        default=_env("LOGRIVER_KIBANA_URL"),
        help="Kibana URL; no import without it (default: $LOGRIVER_KIBANA_URL)",
    )
    p_setup.add_argument("--timeout", type=float, default=30.0, help="Kibana seconds (default 30)")
    p_setup.set_defaults(func=_setup, file=None)


def _prefix(args: argparse.Namespace) -> str:
    prefix = args.prefix or _env("LOGRIVER_INDEX_PREFIX", es.DEFAULT_PREFIX)
    try:
        return es.check_prefix(prefix or es.DEFAULT_PREFIX)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _kibana_export(args: argparse.Namespace) -> int:
    ndjson = kibana.export_ndjson(_prefix(args))
    if args.output:
        Path(args.output).write_text(ndjson, encoding="utf-8")
    else:
        sys.stdout.write(ndjson)
    return 0


def _kibana_import(args: argparse.Namespace) -> int:
    if not args.url:
        raise CliError("kibana import needs --url (or $LOGRIVER_KIBANA_URL)")
    return _import(args.url, args)


def _import(url: str, args: argparse.Namespace) -> int:
    if args.file:
        try:
            ndjson = Path(args.file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    else:
        ndjson = kibana.export_ndjson(_prefix(args))
    try:
        answer = kibana.import_to_kibana(
            url,
            ndjson,
            api_key=_env("LOGRIVER_KIBANA_API_KEY"),
            username=_env("LOGRIVER_KIBANA_USERNAME"),
            password=_env("LOGRIVER_KIBANA_PASSWORD"),
            timeout=args.timeout,
        )
    except kibana.KibanaError as exc:
        raise CliError(str(exc)) from None
    errors = answer.get("errors") or []
    print(f"imported {answer.get('successCount', 0)} saved objects into {url}")
    for error in errors:
        print(
            f"  failed: {error.get('type')}/{error.get('id')}: {orjson.dumps(error.get('error')).decode()}",
            file=sys.stderr,
        )
    return 0 if answer.get("success") and not errors else 1


def _run_es(url: str | None, work: Callable[[AsyncElasticsearch], Awaitable[T]]) -> T:
    url = url or _env("LOGRIVER_ES_URL", DEFAULT_ES_URL)

    async def run() -> T:
        client = AsyncElasticsearch(url, request_timeout=30)
        try:
            return await work(client)
        finally:
            await client.close()

    try:
        return asyncio.run(run())
    except ApiError as exc:
        raise CliError(f"Elasticsearch at {url} refused: {exc}") from None
    except TransportError as exc:
        raise CliError(f"Elasticsearch is unreachable at {url}: {exc}") from None


def _indices_install(args: argparse.Namespace) -> int:
    prefix = _prefix(args)
    if args.retention_days < 1:
        raise CliError("--retention-days must be at least 1")
    caps = _run_es(args.url, lambda c: es.install(c, prefix, retention_days=args.retention_days))
    print(
        f"mode: {caps.mode} (data streams: {caps.data_streams}, ILM: {caps.ilm}; "
        f"optional field types: {', '.join(sorted(caps.field_types)) or 'none'})"
    )
    for name in caps.installed:
        print(f"  installed {name}")
    if caps.mode == "daily_indices":
        print("no ILM here: schedule `logriver indices retention --days N` to delete old indices")
    return 0


def _indices_retention(args: argparse.Namespace) -> int:
    prefix = _prefix(args)
    if args.days < 0:
        raise CliError("--days must be >= 0")
    names = _run_es(
        args.url, lambda c: es.apply_retention(c, prefix, args.days, dry_run=args.dry_run)
    )
    verb = "would delete" if args.dry_run else "deleted"
    for name in names:
        print(f"{verb} {name}")
    print(f"{verb} {len(names)} indices older than {args.days} days")
    return 0


def _setup(args: argparse.Namespace) -> int:
    code = _indices_install(args)
    if code or not args.kibana_url:
        return code
    return _import(args.kibana_url, args)
