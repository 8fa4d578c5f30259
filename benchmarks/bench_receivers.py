"""Receivers -> Kafka throughput, per receiver and mode, against the raw publisher ceiling, in
one run (real Kafka).

    .venv/bin/python benchmarks/bench_receivers.py [--messages 20000] [--keys 100]
        [--before PATH]   # also run every scenario on another tree (e.g. a worktree of an
                          # older commit), side by side

Each scenario runs in a fresh process (the tree's code on its path): the receiver in the main
loop publishing with ``KafkaPublisher`` (acks=all) to a fresh topic, the sender in a separate
process. messages/s = messages published (acknowledged by Kafka) / seconds from the sender's
first byte to the last acknowledgement (capped at ``--cap`` seconds: a slow tree's rate is
what it published by then). Keys interleave: message i belongs to stream i % keys.

- ceiling: the same records, pre-built, published straight with ``KafkaPublisher.publish``,
  one call per key per 1,000 records, all keys concurrently;
- syslog TCP: one connection, newline framing, ``keys`` apps interleaved;
- syslog UDP / GELF UDP: offered at ``--udp-rate`` datagrams/s; delivered and dropped
  (queue + kernel) reported;
- fluentd Message: Docker's driver's shape, one frame per line, ``keys`` tags, no ack; and the
  same with an ack requested per frame (``fluentd-request-ack``), the sender waiting for none;
- fluentd Forward: frames of 100 entries of one tag, tags interleaved;
- splunk HEC: Docker's splunk driver's requests (concatenated inline events, 1,000 per POST,
  one POST at a time on a kept-alive connection, each waiting for its reply);
- CloudWatch: signed PutLogEvents of 1,000 events (boto3), one at a time, streams interleaved.

Writes ``benchmarks/results/receivers.{md,json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import multiprocessing as mp
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SCENARIOS = ("ceiling", "syslog-tcp", "syslog-udp", "gelf-udp", "fluentd-message",
             "fluentd-message-ack", "fluentd-forward", "splunk-hec", "cloudwatch")
HEC_TOKEN = "bench-token"
AWS_KEY, AWS_SECRET = "AKIDBENCHRECEIVERS01", "bench-secret"


# -- senders (child process) ---------------------------------------------------------------


def _payloads(name: str, n: int, keys: int) -> list[bytes]:
    import msgpack
    import orjson

    t = int(time.time())
    if name == "syslog-tcp" or name == "syslog-udp":
        nl = b"\n" if name == "syslog-tcp" else b""
        return [b"<14>Nov 25 10:00:00 node app%d[1]: GET /api/items/%d 200 12ms%s"
                % (i % keys, i, nl) for i in range(n)]
    if name == "gelf-udp":
        return [gzip.compress(orjson.dumps({
            "version": "1.1", "host": "node", "short_message": f"GET /api/items/{i} 200 12ms",
            "timestamp": t + i / 1000, "level": 6, "_container_id": f"{i % keys:064x}",
            "_container_name": f"web-{i % keys}"})) for i in range(n)]
    if name.startswith("fluentd-message"):
        ack = name.endswith("ack")
        return [msgpack.packb([f"docker.{i % keys:012x}", t, {
            "container_id": f"{i % keys:064x}", "container_name": f"/web-{i % keys}",
            "source": "stdout", "log": f"GET /api/items/{i} 200 12ms"},
            *([{"chunk": f"c{i}"}] if ack else [])]) for i in range(n)]
    if name == "splunk-hec":
        return [orjson.dumps({"event": {"line": f"GET /api/items/{i} 200 12ms",
                                        "source": "stdout", "tag": f"{i % keys:012x}"},
                              "time": f"{t + i / 1000:.6f}", "host": "node"}) for i in range(n)]
    if name == "fluentd-forward":
        frames = []
        for start in range(0, n, 100):
            tag = f"app.{(start // 100) % keys}"
            frames.append(msgpack.packb([tag, [[t, {"log": f"GET /api/items/{i} 200 12ms"}]
                                               for i in range(start, min(n, start + 100))]]))
        return frames
    raise ValueError(name)


def _send_http(name: str, port: int, n: int, keys: int, ready: Any) -> None:
    if name == "cloudwatch":
        import boto3

        logs = boto3.client("logs", endpoint_url=f"http://127.0.0.1:{port}",
                            region_name="eu-west-1", aws_access_key_id=AWS_KEY,
                            aws_secret_access_key=AWS_SECRET)
        logs.create_log_group(logGroupName="bench")
        for k in range(keys):
            logs.create_log_stream(logGroupName="bench", logStreamName=f"s{k}")
        now = int(time.time() * 1000)
        batches = [[{"timestamp": now + i, "message": f"GET /api/items/{i} 200 12ms"}
                    for i in range(start, min(n, start + 1000))] for start in range(0, n, 1000)]
        ready.set()
        for b, events in enumerate(batches):
            logs.put_log_events(logGroupName="bench", logStreamName=f"s{b % keys}",
                                logEvents=events)
        return
    import http.client

    payloads = _payloads(name, n, keys)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    ready.set()
    for start in range(0, n, 1000):
        conn.request("POST", "/services/collector/event/1.0",
                     body=b"".join(payloads[start:start + 1000]),
                     headers={"Authorization": f"Splunk {HEC_TOKEN}"})
        conn.getresponse().read()
    conn.close()


def _send(name: str, port: int, n: int, keys: int, udp_rate: float, ready: Any) -> None:
    if name in ("splunk-hec", "cloudwatch"):
        _send_http(name, port, n, keys, ready)
        return
    payloads = _payloads(name, n, keys)
    if name.endswith("udp"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ready.set()
        start = time.perf_counter()
        for i, p in enumerate(payloads):
            s.sendto(p, ("127.0.0.1", port))
            if i % 100 == 99:  # paced at udp_rate
                delay = start + (i + 1) / udp_rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
        s.close()
        return
    with socket.create_connection(("127.0.0.1", port)) as s:
        ready.set()
        s.sendall(b"".join(payloads))
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):  # acks, until the receiver closes
            pass


# -- receiver side (one process per scenario) --------------------------------------------------


def _publisher(bootstrap: str, topic: str) -> Any:
    from streams.transport.kafka import KafkaPublisher

    try:
        return KafkaPublisher(bootstrap, topic, deadletter_topic=topic + ".dead")
    except TypeError:  # an older tree
        return KafkaPublisher(bootstrap, topic)


async def _ceiling(bootstrap: str, topic: str, n: int, keys: int) -> dict[str, Any]:
    from streams.transport.records import event_id, now_rfc3339

    records = [{"id": event_id("bench", i), "message": f"GET /api/items/{i} 200 12ms",
                "time": None, "observed": now_rfc3339(), "stream": "stdout",
                "source": {"type": "syslog", "host": "node"}} for i in range(n)]
    pub = _publisher(bootstrap, topic)
    await pub.start()
    try:
        start = time.perf_counter()
        for chunk in range(0, n, 1000):
            groups: dict[int, list[Any]] = {}
            for i in range(chunk, min(n, chunk + 1000)):
                groups.setdefault(i % keys, []).append(records[i])
            await asyncio.gather(*(pub.publish(b"k%d" % k, recs) for k, recs in groups.items()))
        elapsed = time.perf_counter() - start
    finally:
        await pub.stop()
    return {"published": n, "seconds": elapsed, "drops": 0}


def _receiver(name: str, pub: Any) -> Any:
    if name.startswith("syslog"):
        from streams.sources.receivers.syslog import SyslogReceiver

        udp = name.endswith("udp")
        return SyslogReceiver(pub, udp_port=0 if udp else None, tcp_port=None if udp else 0)
    if name == "gelf-udp":
        from streams.sources.receivers.gelf import GelfReceiver

        return GelfReceiver(pub, udp_port=0, tcp_port=None)
    if name == "splunk-hec":
        from streams.sources.receivers.splunk import SplunkHecReceiver

        return SplunkHecReceiver(pub, tokens=[HEC_TOKEN])
    if name == "cloudwatch":
        from streams.ops.security import Secret
        from streams.sources.receivers.cloudwatch import CloudWatchReceiver
        from streams.sources.receivers.sigv4 import AwsCredential

        return CloudWatchReceiver(pub, credentials=[AwsCredential(AWS_KEY, Secret(AWS_SECRET))])
    from streams.sources.receivers.fluentd import FluentdReceiver

    return FluentdReceiver(pub)


async def _scenario(name: str, bootstrap: str, topic: str, n: int, keys: int,
                    udp_rate: float, cap: float) -> dict[str, Any]:
    from streams.transport.kafka import ensure_topics

    await ensure_topics(bootstrap, [topic, topic + ".dead"])
    if name == "ceiling":
        return await _ceiling(bootstrap, topic, n, keys)
    pub = _publisher(bootstrap, topic)
    await pub.start()
    rec = _receiver(name, pub)
    await rec.start()
    port = {"syslog-udp": "udp_port", "gelf-udp": "udp_port", "syslog-tcp": "tcp_port"}.get(
        name, "port")
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    sender = ctx.Process(target=_send, args=(name, getattr(rec, port), n, keys, udp_rate, ready))
    sender.start()
    await asyncio.get_running_loop().run_in_executor(None, ready.wait, 60)
    start = time.perf_counter()
    deadline = start + cap
    udp = name.endswith("udp")
    last, quiet_since = -1, time.perf_counter()
    while rec.published < n and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
        if udp and not sender.is_alive():  # lost datagrams never come: stop when quiet
            if rec.published != last:
                last, quiet_since = rec.published, time.perf_counter()
            elif time.perf_counter() - quiet_since > 2.0:
                break
    elapsed = time.perf_counter() - start
    if udp and rec.published < n:
        elapsed = quiet_since - start
    published = rec.published
    drops = rec.errors.get("queue_full", 0)
    kernel = rec.kernel_drops() if hasattr(rec, "kernel_drops") else None
    await rec.stop()
    await pub.stop()
    sender.join(30)
    if sender.is_alive():
        sender.kill()
    return {"published": published, "seconds": elapsed, "drops": drops, "kernel_drops": kernel}


def _one(args: argparse.Namespace) -> None:
    result = asyncio.run(_scenario(args.one, args.bootstrap, args.topic, args.messages,
                                   args.keys, args.udp_rate, args.cap))
    print("RESULT " + json.dumps(result))


def _run(tree: Path, name: str, args: argparse.Namespace) -> dict[str, Any]:
    topic = f"bench-receivers-{uuid.uuid4().hex[:8]}.logs.raw"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name, "--topic", topic,
           "--bootstrap", args.bootstrap, "--messages", str(args.messages), "--keys",
           str(args.keys), "--udp-rate", str(args.udp_rate), "--cap", str(args.cap)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.cap + 300,
                         cwd=str(tree), check=False)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
            result["rate"] = result["published"] / max(result["seconds"], 1e-9)
            return result
    raise RuntimeError(f"{name} on {tree} failed:\n{out.stderr[-3000:]}")


def _table(rows: dict[str, dict[str, Any]], before: dict[str, dict[str, Any]] | None,
           args: argparse.Namespace) -> str:
    ceiling = rows["ceiling"]["rate"]
    head = "| scenario | messages/s | vs ceiling | published | drops (queue / kernel) |"
    sep = "|---|---|---|---|---|"
    if before:
        head += " before: messages/s | before: published |"
        sep += "---|---|"
    lines = [head, sep]
    for name in SCENARIOS:
        r = rows[name]
        drops = f"{r['drops']} / {r.get('kernel_drops', 0) or 0}"
        line = (f"| {name} | {r['rate']:,.0f} | {r['rate'] / ceiling:.2f} | "
                f"{r['published']:,} of {args.messages:,} | {drops} |")
        if before:
            b = before.get(name)
            line += f" {b['rate']:,.0f} | {b['published']:,} |" if b else " - | - |"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--keys", type=int, default=100)
    p.add_argument("--udp-rate", type=float, default=10_000.0)
    p.add_argument("--cap", type=float, default=60.0, help="seconds per scenario at most")
    p.add_argument("--bootstrap", default=os.environ.get("LOGRIVER_KAFKA", "127.0.0.1:9092"))
    p.add_argument("--before", type=Path, help="also run on this tree (an older checkout)")
    p.add_argument("--only", nargs="*", choices=SCENARIOS)
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--topic", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        _one(args)
        return
    names = args.only or SCENARIOS
    rows, before = {}, {}
    for name in dict.fromkeys(["ceiling", *names]):
        rows[name] = _run(ROOT, name, args)
        print(f"{name:22s} {rows[name]['rate']:10,.0f} msg/s  {rows[name]}", flush=True)
        if args.before:
            try:
                before[name] = _run(args.before, name, args)
            except RuntimeError:  # the older tree has no such receiver
                continue
            print(f"{'  before':22s} {before[name]['rate']:10,.0f} msg/s  {before[name]}",
                  flush=True)
    if args.only:
        return
    table = _table(rows, before or None, args)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    cmd = "python benchmarks/bench_receivers.py " + " ".join(sys.argv[1:])
    (RESULTS / "receivers.json").write_text(json.dumps(
        {"date": stamp, "args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
         "before": before}, indent=1))
    (RESULTS / "receivers.md").write_text(
        f"# Receivers -> Kafka\n\n`{cmd}` ({stamp}, {platform.machine()}, {os.cpu_count()} "
        f"cores shared with Kafka, Elasticsearch and other work)\n\n{args.messages:,} messages "
        f"per scenario, {args.keys} interleaved keys, UDP offered at {args.udp_rate:,.0f}/s; "
        f"messages/s from the sender's first byte to Kafka's last acknowledgement (acks=all)"
        f"{'; before = ' + str(args.before) if args.before else ''}.\n\n{table}\n")


if __name__ == "__main__":
    main()
