"""Receivers run by `logriver collect` against the real Kafka, the hard way (issue 17.4 and
issue 20 defects 1 and 3): hostile senders beside valid ones, SIGTERM right after a burst, a
record over the topic's limit, and what /metrics counts."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import msgpack
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.demo.senders import Ports, fluentd_frame, hostile_run, peak_rss_mib
from streams.transport.records import decode_batch

pytestmark = pytest.mark.timeout(600)


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


async def _consume(bootstrap: str, topic: str, want: int | None = None,
                   timeout: float = 60.0, quiet: float = 5.0) -> list[dict]:
    """Records of ``topic`` (dead letters: the messages themselves): until ``want`` arrived,
    or nothing new came for ``quiet`` seconds, or ``timeout``."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    out: list[dict] = []
    try:
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline and (want is None or len(out) < want):
            batch = await consumer.getmany(timeout_ms=500)
            for msgs in batch.values():
                for m in msgs:
                    last = time.monotonic()
                    out.extend(decode_batch(m.value) if topic.endswith("raw")
                               else [orjson.loads(m.value)])
            if want is None and time.monotonic() - last > quiet:
                break
    finally:
        await consumer.stop()
    return out


def _collector(settings, tmp_path: Path, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streams", "collect", "--no-tail", "--root", str(tmp_path),
           "--checkpoint-dir", str(tmp_path / "cp"), "--kafka", settings.kafka_bootstrap,
           "--topic-prefix", settings.topic_prefix, *args]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "agent.log", "wb"))


def _counter(text: str, stage: str, reason: str) -> float:
    for line in text.splitlines():
        if (line.startswith("logriver_errors_total") and f'stage="{stage}"' in line
                and f'reason="{reason}"' in line):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return resp.read().decode()


def test_hostile_senders_cannot_starve_valid_ones(settings, tmp_path: Path) -> None:
    from streams.cli.collect import raise_open_files_limit

    raise_open_files_limit()  # this process holds the client end of 1,000 connections
    ports = Ports(_free_port(), _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_DGRAM),
                  _free_port())
    metrics = _free_port()
    proc = _collector(settings, tmp_path, "--syslog-tcp", str(ports.syslog_tcp),
                      "--syslog-udp", str(ports.syslog_udp), "--gelf-udp", str(ports.gelf_udp),
                      "--fluentd", str(ports.fluentd), "--metrics-port", str(metrics))
    try:
        _wait_port(ports.fluentd)
        _wait_port(metrics)
        report = asyncio.run(hostile_run(ports, n=2000, rate=500.0, idle=1000))
        records = asyncio.run(_consume(settings.kafka_bootstrap, settings.topic("logs.raw"),
                                       timeout=180))
        text = _metrics(metrics)
        peak = peak_rss_mib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    got = {r["message"] for r in records if r["message"].startswith("valid ")}
    missing = report.sent - got
    by_proto: dict[str, int] = {}
    for m in missing:
        by_proto[m.split()[1]] = by_proto.get(m.split()[1], 0) + 1
    print(f"hostile run: {len(report.sent)} valid sent, {len(missing)} missing {by_proto}, "
          f"{report.idle_held} idle held, collector peak RSS {peak:.0f} MiB")
    print("\n".join(line for line in text.splitlines()
                    if line.startswith("logriver_errors_total") and "receive_" in line))
    assert report.idle_held == 1000 and report.newcomer_acked
    assert not missing, sorted(missing)[:10]
    assert peak <= 300, f"collector peak RSS {peak:.0f} MiB"
    assert len({r["id"] for r in records}) == len(records)
    # the garbage is counted, not silent; every syslog datagram arrived or its drop counted
    assert 'reason="syslog_parse_error"' in text and 'reason="frame_malformed"' in text
    udp = sum(1 for r in records
              if r["source"]["type"] == "syslog" and r["source"].get("transport") == "udp")
    dropped = sum(_counter(text, "receive_syslog", reason) for reason in ("queue_full",
                                                                          "kernel_drop"))
    assert udp + dropped == report.syslog_udp_sent, (udp, dropped, report.syslog_udp_sent)


def test_sigterm_right_after_a_burst_loses_nothing(settings, tmp_path: Path) -> None:
    port = _free_port()
    proc = _collector(settings, tmp_path, "--fluentd", str(port))
    try:
        _wait_port(port)
        with socket.create_connection(("127.0.0.1", port)) as s:
            # Docker's fluentd driver: Message mode, one frame per line, no ack asked
            s.sendall(b"".join(fluentd_frame(f"burst {i}", "docker.burst") for i in range(2000)))
        proc.send_signal(signal.SIGTERM)  # right after the sender finished
        assert proc.wait(90) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    records = asyncio.run(_consume(settings.kafka_bootstrap, settings.topic("logs.raw"), 2000))
    assert sorted(r["message"] for r in records) == sorted(f"burst {i}" for i in range(2000))


def test_record_over_the_topic_limit_is_dead_lettered(settings, tmp_path: Path) -> None:
    raw, dead = settings.topic("logs.raw"), settings.topic("logs.deadletter")

    async def small_topic() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(raw, 1, 1,
                                                topic_configs={"max.message.bytes": "200000"})])
        finally:
            await admin.close()

    asyncio.run(small_topic())
    port = _free_port()
    proc = _collector(settings, tmp_path, "--fluentd", str(port))
    try:
        _wait_port(port)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            entries = [[int(time.time()), {"log": "before"}],
                       [int(time.time()), {"log": "huge", "blob": "x" * 500_000}],
                       [int(time.time()), {"log": "after"}]]
            s.sendall(msgpack.packb(["app", entries, {"chunk": "c1"}]))
            assert msgpack.unpackb(s.recv(100)) == {"ack": "c1"}
            s.sendall(msgpack.packb(["app", int(time.time()), {"log": "later"},
                                     {"chunk": "c2"}]))  # the partition still works
            assert msgpack.unpackb(s.recv(100)) == {"ack": "c2"}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    records = asyncio.run(_consume(settings.kafka_bootstrap, raw, 3))
    assert [r["message"] for r in records] == ["before", "after", "later"]
    (letter,) = asyncio.run(_consume(settings.kafka_bootstrap, dead, 1))
    assert letter["reason"] == "record_too_large" and letter["stage"] == "collect"
    assert "max.message.bytes=200000" in letter["detail"]
