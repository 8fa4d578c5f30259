"""The ``logriver`` command line. Each command lives in its own module, which exposes
``register(subparsers)``; this file only wires them together.

The top of the tree: it may import anything; nothing but ``streams.__main__`` imports it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from streams.ops.process import tune_gc

# The module that adds each sub-command (it exposes ``register(subparsers)`` and sets
# ``func``). ``main`` imports only the module of the command it runs: the modules pull in
# heavy clients (Elasticsearch, Faust), and a collector should not start by importing them.
COMMANDS = {
    "services": "streams.cli.services",
    "run": "streams.cli.run",
    "collect": "streams.cli.collect",
    "parse": "streams.cli.parse",
    "replay": "streams.cli.replay",
    "demo": "streams.cli.demo",
    "search": "streams.cli.search",
    "kibana": "schemas.cli",
    "indices": "schemas.cli",
    "setup": "schemas.cli",
}
COMMAND_MODULES = list(dict.fromkeys(COMMANDS.values()))
# Commands that talk to Kafka for long: their Kafka client's repeated errors are rate-limited.
KAFKA_COMMANDS = {"run", "collect", "demo"}


class CliError(Exception):
    """An error to show the user as one clear line, with exit code 2."""


def build_parser(modules: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser with the commands of ``modules`` (default: every command)."""
    parser = argparse.ArgumentParser(
        prog="logriver",
        description="Logriver: stream-processing log analytics on Kafka, Faust and Elasticsearch.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES if modules is None else modules:
        importlib.import_module(name).register(sub)
    return parser


def _command_of(argv: list[str]) -> str | None:
    """The command word of ``argv`` (the first argument that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = _command_of(argv)
    parser = build_parser([COMMANDS[command]] if command in COMMANDS else None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    tune_gc()
    if command in KAFKA_COMMANDS:
        from streams.ops import logfilter

        logfilter.install()
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"logriver: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
