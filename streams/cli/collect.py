"""``logriver collect``: the node agent (what a DaemonSet runs) and the sidecar tail.

Node mode tails ``<root>/containers/*.log`` and ``<root>/pods/*/*/*.log`` with their rotated
files (``*.log.<timestamp>``, uncompressed copytruncate copies), and with dockerd the files those
symlinks lead to, ``<docker-root>/containers/<id>/<id>-json.log`` and dockerd's rotations
``<id>-json.log.1``, ``.2``... (``--docker-root``, default ``/var/lib/docker`` beside
``/var/log``); a rotated file next to a tailed one is resumed from its checkpoint whatever its
name; compressed ones are skipped and counted (``logriver_files_skipped``). ``--k8s-api`` adds
labels and node from the API, optional; sidecar mode tails
any ``--glob`` with metadata given as ``--meta kubernetes.namespace=shop``. Receivers for the
Docker log drivers run beside the tailer when asked (``--syslog-udp 5514``, ``--gelf-udp
12201``, ``--fluentd 24224``, ``--journald``, ``--splunk-hec 8088``, ``--cloudwatch 4566``; ``--no-tail``
runs only them). Everything goes to
the raw topic with acks=all; checkpoints live in ``--checkpoint-dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

from streams.cli import CliError
from streams.cli.common import add_connection_args, load_or_fail, settings_from
from streams.ops import config
from streams.ops.stats import WorkerStats
from streams.sources.checkpoints import CheckpointStore
from streams.sources.files import FileTailer, default_node_globs
from streams.transport.kafka import KafkaPublisher, ensure_topics

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("collect", help="tail container log files into Kafka (node agent / sidecar)")
    p.add_argument("--root", default="/var/log", help="node log root (default /var/log)")
    p.add_argument("--docker-root", default=None,
                   help="dockerd's data root, whose containers/<id>/<id>-json.log* the kubelet "
                        "symlinks lead to with dockerd (default: /var/lib/docker beside --root)")
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
    p.add_argument("--pipeline", help="take the multiline rules this pipeline declares")
    p.add_argument("--no-tail", action="store_true", help="run only the receivers, tail no file")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve Prometheus /metrics and /health on PORT (off by default)")
    p.add_argument("--metrics-host", default="127.0.0.1",
                   help="address of the metrics endpoint (0.0.0.0 in a pod)")
    p.add_argument("--k8s-api", nargs="?", const="in-cluster", metavar="URL",
                   help="add pod labels and node name from the Kubernetes API (in-cluster service "
                        "account, or the API server URL given); cached, never blocks, optional")
    p.add_argument("--k8s-token-file", help="bearer token for --k8s-api URL (default: the service account's)")
    r = p.add_argument_group("receivers (Docker log drivers); off unless a port is given")
    r.add_argument("--listen", default="127.0.0.1", help="address receivers bind (default 127.0.0.1)")
    r.add_argument("--syslog-udp", type=int, metavar="PORT")
    r.add_argument("--syslog-tcp", type=int, metavar="PORT")
    r.add_argument("--gelf-udp", type=int, metavar="PORT")
    r.add_argument("--gelf-tcp", type=int, metavar="PORT")
    r.add_argument("--fluentd", type=int, metavar="PORT", help="fluentd forward protocol (TCP)")
    r.add_argument("--fluentd-shared-key-file", metavar="PATH",
                   help="require the forward protocol's shared-key handshake with the key in "
                        "PATH (or set LOGRIVER_FLUENTD_SHARED_KEY / ..._FILE)")
    r.add_argument("--fluentd-users-file", metavar="PATH",
                   help="also require a user: 'user:password' lines (needs a shared key)")
    r.add_argument("--fluentd-self-hostname", metavar="NAME",
                   help="hostname sent to authenticated fluentd clients (default: hostname)")
    r.add_argument("--splunk-hec", type=int, metavar="PORT",
                   help="Splunk HTTP Event Collector (Docker's splunk driver, HEC clients)")
    r.add_argument("--splunk-hec-tokens-file", metavar="PATH",
                   help="accepted HEC tokens, one per line (or LOGRIVER_SPLUNK_HEC_TOKEN / ..._FILE)")
    r.add_argument("--splunk-hec-ack", action="store_true",
                   help="HEC indexer acknowledgement: a channel is required, ackIds are issued "
                        "once Kafka acknowledged")
    r.add_argument("--cloudwatch", type=int, metavar="PORT",
                   help="CloudWatch Logs API (Docker's awslogs driver with awslogs-endpoint, AWS "
                        "SDKs with an endpoint URL), SigV4-verified")
    r.add_argument("--cloudwatch-credentials-file", metavar="PATH",
                   help="accepted access keys, AWS shared-credentials format (or "
                        "LOGRIVER_CLOUDWATCH_ACCESS_KEY_ID + ..._SECRET_ACCESS_KEY[_FILE])")
    r.add_argument("--docker-tag", metavar="TEMPLATE", action="append",
                   help="a tag template Docker's drivers were given (tag log option), to read "
                        "container id, name and image back from tags (syslog, fluentd, splunk, "
                        "cloudwatch stream names; repeatable, tried in order; then {{.ID}}, "
                        "{{.FullID}}, {{.ImageName}}/{{.Name}}/{{.ID}})")
    r.add_argument("--journald", action="store_true", help="follow journalctl -o json")
    r.add_argument("--journald-namespace", metavar="NAME",
                   help="with --journald: follow this journal namespace (journalctl --namespace)")
    r.add_argument("--syslog-timezone", default="local", metavar="ZONE",
                   help="zone of RFC 3164 timestamps, which carry none: 'local' (default: this "
                        "host's, as Docker's driver writes dockerd's local time), 'UTC' or an "
                        "IANA name such as America/New_York")
    r.add_argument("--receiver-idle-timeout", type=float, default=3600.0, metavar="SECONDS",
                   help="close a TCP connection silent this long (default 3600)")
    r.add_argument("--receiver-max-connections", type=int, default=4096, metavar="N",
                   help="TCP connections per receiver (default 4096; when full, the idlest "
                        "is closed to admit a new one)")
    r.add_argument("--receiver-max-connections-per-peer", type=int, default=1024, metavar="N",
                   help="TCP connections per sender address (default 1024)")
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
    globs = args.glob or default_node_globs(args.root, args.docker_root)
    if not args.glob and not Path(args.root).is_dir():
        raise CliError(f"log root {args.root} is not a directory")
    return asyncio.run(collect(settings, globs, args))


async def collect(settings: config.Settings, globs: list[str], args: argparse.Namespace) -> int:
    topic = settings.topic(config.RAW)
    deadletters = settings.topic(config.DEADLETTER)
    await ensure_topics(settings.kafka_bootstrap, [topic, deadletters])
    checkpoints = CheckpointStore(Path(args.checkpoint_dir) / "checkpoints.json")
    rules = None
    if args.pipeline:
        rules = load_or_fail(args.pipeline).multiline_rules()
    stats = WorkerStats(pipeline="collector", role="collector")
    async with KafkaPublisher(settings.kafka_bootstrap, topic, deadletter_topic=deadletters,
                              on_health=lambda ok: setattr(stats, "kafka_ok", ok)) as kafka:
        publisher: Any = kafka
        pods = None
        if getattr(args, "k8s_api", None):
            from streams.sources.k8s_api import EnrichingPublisher, PodMetadata
            try:
                pods = PodMetadata.from_environment(args.k8s_api, args.k8s_token_file)
                publisher = EnrichingPublisher(kafka, pods)
            except (OSError, ValueError) as exc:  # works without API access
                log.warning("k8s api: disabled (%s)", exc)
        tailer = FileTailer(
            globs, publisher, checkpoints, host=args.host,
            fmt=None if args.format == "auto" else args.format,
            extra_metadata=parse_meta(args.meta), max_line_bytes=args.max_line_bytes,
            **({"multiline": rules} if rules is not None else {}),
        )
        receivers = build_receivers(args, kafka, stats)
        if receivers:
            raise_open_files_limit()
        metrics = None
        if args.metrics_port is not None:
            from streams.ops.metrics import start_metrics_server

            metrics = start_metrics_server(stats,
                                           host=args.metrics_host, port=args.metrics_port,
                                           sources=[tailer, *receivers, kafka])
        try:
            for rec in receivers:
                await rec.start()
                log.info("receiver %s listening", type(rec).__name__)
            if args.once:
                n = await tailer.drain()
                log.info("collected %d lines", n)
                return 0
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            if args.no_tail:
                await stop.wait()
            else:
                await tailer.run(stop)
        finally:  # receivers publish what they accepted before the producer stops
            await asyncio.gather(*(rec.stop() for rec in receivers), return_exceptions=True)
            tailer.close()
            if metrics is not None:
                metrics.stop()
            if pods is not None:
                await pods.close()
    return 0


def raise_open_files_limit(want: int = 65536) -> int:
    """Receivers hold a socket per connection (thousands: see their caps): raise the soft
    limit of open files towards the hard one. Returns the soft limit in force."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (OSError, ValueError) as exc:
            log.warning("receivers: cannot raise the open-files limit (%s); %d in force",
                        exc, soft)
    return soft


def build_receivers(args: argparse.Namespace, publisher: KafkaPublisher,
                    stats: WorkerStats | None = None) -> list[Any]:
    from streams.sources.receivers.fluentd import FluentdReceiver
    from streams.sources.receivers.gelf import GelfReceiver
    from streams.sources.receivers.intake import Budget
    from streams.sources.receivers.journald import JournaldFollower
    from streams.sources.receivers.syslog import SyslogReceiver

    out: list[Any] = []
    common = {"host": args.listen, "budget": Budget(),  # one memory budget for them all
              "idle_timeout": getattr(args, "receiver_idle_timeout", 3600.0),
              "max_connections": getattr(args, "receiver_max_connections", 4096),
              "max_connections_per_peer": getattr(args, "receiver_max_connections_per_peer",
                                                  1024)}
    if args.syslog_udp is not None or args.syslog_tcp is not None:
        from streams.sources.receivers.syslog import timezone_setting

        try:
            tz = timezone_setting(getattr(args, "syslog_timezone", "local"))
        except ValueError as exc:
            raise CliError(f"--syslog-timezone: {exc}") from None
        out.append(SyslogReceiver(publisher, udp_port=args.syslog_udp, tcp_port=args.syslog_tcp,
                                  timezone=tz, docker_tag=getattr(args, "docker_tag", None),
                                  **common))
    if args.gelf_udp is not None or args.gelf_tcp is not None:
        out.append(GelfReceiver(publisher, udp_port=args.gelf_udp, tcp_port=args.gelf_tcp,
                                **common))
    if args.fluentd is not None:
        from streams.ops.security import SecurityConfigError
        from streams.sources.receivers.fluentd import auth_settings

        try:
            auth = auth_settings(getattr(args, "fluentd_shared_key_file", None),
                                 getattr(args, "fluentd_users_file", None),
                                 getattr(args, "fluentd_self_hostname", None))
        except SecurityConfigError as exc:
            raise CliError(str(exc)) from None
        out.append(FluentdReceiver(publisher, port=args.fluentd, **common, **auth,
                                   docker_tag=getattr(args, "docker_tag", None)))
    if getattr(args, "splunk_hec", None) is not None:
        out.append(_splunk(args, publisher, stats))
    if getattr(args, "cloudwatch", None) is not None:
        out.append(_cloudwatch(args, publisher))
    if args.journald:
        out.append(JournaldFollower(publisher, namespace=getattr(args, "journald_namespace", None)))
    return out


def _splunk(args: argparse.Namespace, publisher: KafkaPublisher, stats: WorkerStats | None) -> Any:
    from streams.ops.security import SecurityConfigError
    from streams.sources.receivers.splunk import SplunkHecReceiver, token_settings

    try:
        tokens = token_settings(getattr(args, "splunk_hec_tokens_file", None))
        return SplunkHecReceiver(
            publisher, host=args.listen, port=args.splunk_hec, tokens=tokens,
            ack=getattr(args, "splunk_hec_ack", False), docker_tag=getattr(args, "docker_tag", None),
            health=(lambda: stats.kafka_ok) if stats is not None else None)
    except (SecurityConfigError, ValueError) as exc:
        raise CliError(str(exc)) from None


def _cloudwatch(args: argparse.Namespace, publisher: KafkaPublisher) -> Any:
    from streams.ops.security import SecurityConfigError
    from streams.sources.receivers.cloudwatch import CloudWatchReceiver, credential_settings

    try:
        creds = credential_settings(getattr(args, "cloudwatch_credentials_file", None))
        return CloudWatchReceiver(
            publisher, host=args.listen, port=args.cloudwatch, credentials=creds,
            state_path=Path(args.checkpoint_dir) / "cloudwatch-state.json",
            docker_tag=getattr(args, "docker_tag", None))
    except (SecurityConfigError, ValueError) as exc:
        raise CliError(str(exc)) from None
