"""``logriver collect``: the node agent (what a DaemonSet runs) and the sidecar tail.

Node mode tails ``<root>/containers/*.log`` and ``<root>/pods/*/*/*.log``; sidecar mode tails
any ``--glob`` with metadata given as ``--meta kubernetes.namespace=shop``. Lines go to the raw
topic with acks=all; checkpoints live in ``--checkpoint-dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

from streams import config
from streams.cli import CliError
from streams.commands.common import add_connection_args, settings_from
from streams.kafka import KafkaPublisher, ensure_topics
from streams.sources.checkpoints import CheckpointStore
from streams.sources.files import FileTailer, default_node_globs

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("collect", help="tail container log files into Kafka (node agent / sidecar)")
    p.add_argument("--root", default="/var/log", help="node log root (default /var/log)")
    p.add_argument("--glob", action="append", default=[],
                   help="sidecar mode: tail these globs instead of the node layout (repeatable)")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                   help="metadata to add to every record, dotted keys (sidecar mode)")
    p.add_argument("--format", choices=["auto", "docker", "cri", "plain"], default="auto")
    p.add_argument("--checkpoint-dir", default=str(Path.home() / ".cache" / "logriver" / "collector"))
    p.add_argument("--host", help="node name recorded on every line (default: hostname)")
    p.add_argument("--once", action="store_true",
                   help="read what is there, publish it, and exit (no following)")
    p.add_argument("--max-line-bytes", type=int, default=1024 * 1024)
    add_connection_args(p)
    p.set_defaults(func=_collect)


def parse_meta(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise CliError(f"--meta wants KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _collect(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    globs = args.glob or default_node_globs(args.root)
    if not args.glob and not Path(args.root).is_dir():
        raise CliError(f"log root {args.root} is not a directory")
    return asyncio.run(collect(settings, globs, args))


async def collect(settings: config.Settings, globs: list[str], args: argparse.Namespace) -> int:
    topic = settings.topic(config.RAW)
    await ensure_topics(settings.kafka_bootstrap, [topic])
    checkpoints = CheckpointStore(Path(args.checkpoint_dir) / "checkpoints.json")
    async with KafkaPublisher(settings.kafka_bootstrap, topic) as publisher:
        tailer = FileTailer(
            globs, publisher, checkpoints, host=args.host,
            fmt=None if args.format == "auto" else args.format,
            extra_metadata=parse_meta(args.meta), max_line_bytes=args.max_line_bytes,
        )
        try:
            if args.once:
                n = await tailer.drain()
                log.info("collected %d lines", n)
                return 0
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await tailer.run(stop)
        finally:
            tailer.close()
    return 0
