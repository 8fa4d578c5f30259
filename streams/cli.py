"""The ``logriver`` command line. Each command lives in its own module, which exposes
``register(subparsers)``; this file only wires them together."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Modules that add sub-commands. Each exposes ``register(subparsers)`` and sets ``func``.
COMMAND_MODULES = [
    "streams.services.cli",
    "streams.commands.run",
    "streams.commands.collect",
    "streams.commands.parse",
    "streams.commands.replay",
    "streams.commands.demo",
    "streams.commands.search",
    "schemas.cli",
]


class CliError(Exception):
    """An error to show the user as one clear line, with exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logriver",
        description="Logriver: stream-processing log analytics on Kafka, Faust and Elasticsearch.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"logriver: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
