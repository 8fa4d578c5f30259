"""``logriver services up|status|down``: the local Kafka and Elasticsearch."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

import streams.services as services_pkg
from streams.cli import CliError
from streams.services import manager
from streams.services.base import SERVICES, ServiceError, ServiceStatus


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``services`` command and its sub-commands."""
    parser = sub.add_parser(
        "services",
        help="fetch, start, inspect and stop the local Kafka and Elasticsearch",
        description=(services_pkg.__doc__ or "").strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--home", help="cache and state folder (default: $LOGRIVER_HOME)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    p_up = actions.add_parser("up", help="fetch if needed, start, wait until they answer")
    p_up.add_argument("--only", choices=SERVICES, help="start just this service")
    p_up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait (default 180)")
    p_up.set_defaults(func=_up)

    p_status = actions.add_parser("status", help="show whether they run and answer")
    p_status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p_status.set_defaults(func=_status)

    p_down = actions.add_parser("down", help="stop them (SIGTERM, then SIGKILL after --timeout)")
    p_down.add_argument("--timeout", type=float, default=60.0, help="seconds before SIGKILL")
    p_down.set_defaults(func=_down)


def _up(args: argparse.Namespace) -> int:
    names = (args.only,) if args.only else SERVICES
    try:
        result = manager.up(names, home=args.home, timeout=args.timeout)
    except ServiceError as exc:
        raise CliError(str(exc)) from None
    print(format_table(list(result.values())))
    return 0


def _status(args: argparse.Namespace) -> int:
    try:
        result = manager.status(args.home)
    except ServiceError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps({k: asdict(v) for k, v in result.items()}, indent=2))
    else:
        print(format_table(list(result.values())))
    return 0


def _down(args: argparse.Namespace) -> int:
    try:
        manager.down(args.home, timeout=args.timeout)
    except ServiceError as exc:
        raise CliError(str(exc)) from None
    return 0


def format_table(rows: list[ServiceStatus]) -> str:
    """A small aligned table: service, state, pid, address, version, detail, log file."""
    header = ("SERVICE", "STATE", "PID", "ADDRESS", "VERSION", "DETAIL", "LOG")
    lines = [header] + [
        (
            s.name,
            "running" if s.running else "stopped",
            str(s.pid or "-"),
            s.address,
            s.version,
            s.detail,
            s.logfile,
        )
        for s in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths)) + "  " + line[-1]
        for line in lines
    )
