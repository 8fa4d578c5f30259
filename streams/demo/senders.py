"""Clients of the receivers, as the Docker log drivers and hostile peers talk to them: used by
the receiver benchmark (``benchmarks/bench_receivers.py``) and the integration tests.

``hostile_run`` is the issue-17 scenario: a thousand idle TCP connections held, slow-loris
senders, declared-but-never-sent msgpack lengths, garbage interleaved with valid messages on
every protocol, large UDP datagrams, and a new client that must get in while all that is held.
Every valid message carries a unique marker so the caller can check which arrived.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import random
import socket
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import msgpack
import orjson


@dataclass
class Ports:
    syslog_tcp: int
    syslog_udp: int
    gelf_udp: int
    fluentd: int
    host: str = "127.0.0.1"


def syslog_line(marker: str, app: str = "app") -> bytes:
    return f"<14>Nov 25 10:00:00 node {app}[1]: {marker}\n".encode()


def gelf_datagram(marker: str, container: str = "c" * 64) -> bytes:
    return gzip.compress(orjson.dumps({"version": "1.1", "host": "node", "short_message": marker,
                                       "timestamp": time.time(), "level": 6,
                                       "_container_id": container}))


def fluentd_frame(marker: str, tag: str = "docker.app", chunk: str | None = None) -> bytes:
    frame: list[Any] = [tag, int(time.time()), {"log": marker, "source": "stdout"}]
    if chunk is not None:
        frame.append({"chunk": chunk})
    return msgpack.packb(frame)


def garbage(rng: random.Random, size: int = 200) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(size))


@dataclass
class HostileReport:
    sent: set[str] = field(default_factory=set)  # markers of valid messages
    idle_held: int = 0
    newcomer_acked: bool = False
    garbage_sent: int = 0
    syslog_udp_sent: int = 0  # datagrams to the syslog UDP port (valid, garbage, flood)


async def _hold_idle(ports: Ports, n: int) -> list[asyncio.StreamWriter]:
    out = []
    for _ in range(n):
        _, w = await asyncio.open_connection(ports.host, ports.fluentd)
        out.append(w)
    return out


async def _slow_loris(ports: Ports, seconds: float) -> None:
    writers = []
    for _ in range(20):
        _, w = await asyncio.open_connection(ports.host, ports.syslog_tcp)
        writers.append(w)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for w in writers:
            if not w.is_closing():
                w.write(b"<")
        await asyncio.sleep(0.5)
    for w in writers:
        w.close()


async def _bombs(ports: Ports) -> list[asyncio.StreamWriter]:
    out = []
    for _ in range(20):  # 5 KB of array headers declaring 8 Mi elements each, never sent
        _, w = await asyncio.open_connection(ports.host, ports.fluentd)
        w.write(b"\xdd\x00\x7f\xff\xff" * 1000)
        out.append(w)
    return out


async def _garbage_fluentd(ports: Ports, rng: random.Random, n: int) -> None:
    for _ in range(n):
        try:
            _, w = await asyncio.open_connection(ports.host, ports.fluentd)
            w.write(rng.choice([garbage(rng), b"\xc1" * 10, b"\x93\xa1t" + garbage(rng, 50)]))
            await w.drain()
            w.close()
        except OSError:
            continue


async def _valid_and_garbage(ports: Ports, report: HostileReport, n: int, rate: float) -> None:
    """``n`` valid messages per protocol, each followed by garbage, at ``rate`` per second."""
    rng = random.Random(17)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    _, syslog_w = await asyncio.open_connection(ports.host, ports.syslog_tcp)
    _, fl_w = await asyncio.open_connection(ports.host, ports.fluentd)
    bomb = zlib.compress(b"\0" * (1024 * 1024))
    for i in range(n):
        for proto in ("syslog-tcp", "syslog-udp", "gelf-udp", "fluentd"):
            report.sent.add(f"valid {proto} {i}")
        syslog_w.write(syslog_line(f"valid syslog-tcp {i}", f"app{i % 50}"))
        syslog_w.write(garbage(rng).replace(b"\n", b" ") + b"\n")
        udp.sendto(syslog_line(f"valid syslog-udp {i}", f"app{i % 50}"),
                   (ports.host, ports.syslog_udp))
        udp.sendto(garbage(rng), (ports.host, ports.syslog_udp))
        report.syslog_udp_sent += 2
        udp.sendto(gelf_datagram(f"valid gelf-udp {i}", f"{i % 50:064x}"),
                   (ports.host, ports.gelf_udp))
        udp.sendto(rng.choice([garbage(rng), bomb, b"\x1f\x8b" + garbage(rng)]),
                   (ports.host, ports.gelf_udp))
        fl_w.write(fluentd_frame(f"valid fluentd {i}", f"docker.app{i % 50}"))
        report.garbage_sent += 3
        if i % 50 == 49:
            await syslog_w.drain()
            await fl_w.drain()
            await asyncio.sleep(50 / rate)
    await syslog_w.drain()
    await fl_w.drain()
    syslog_w.close()
    fl_w.close()
    udp.close()


async def _newcomer(ports: Ports, report: HostileReport) -> None:
    reader, w = await asyncio.open_connection(ports.host, ports.fluentd)
    w.write(fluentd_frame("valid newcomer", chunk="newcomer"))
    await w.drain()
    data = await asyncio.wait_for(reader.read(100), 30)
    report.newcomer_acked = msgpack.unpackb(data) == {"ack": "newcomer"} if data else False
    report.sent.add("valid newcomer")
    w.close()


async def _flood(ports: Ports, n: int, report: HostileReport) -> None:
    """Memory pressure: ``n`` datagrams of 60 KB of random bytes to syslog and ``n`` gzip
    bombs (20 MiB of zeros, 20 KB compressed) to GELF, as fast as the socket takes them."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = os.urandom(60_000)
    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024))
    for i in range(n):
        udp.sendto(payload, (ports.host, ports.syslog_udp))
        udp.sendto(bomb, (ports.host, ports.gelf_udp))
        report.syslog_udp_sent += 1
        if i % 100 == 99:
            await asyncio.sleep(0)
    udp.close()


async def hostile_run(ports: Ports, n: int = 2000, rate: float = 500.0, idle: int = 1000,
                      flood: int = 2000, settle: float = 10.0) -> HostileReport:
    """The whole scenario (see the module doc): idle connections, declared-length bombs and
    slow-loris senders held throughout; first a flood of large datagrams (its drops are
    counted, not expected to arrive), then ``n`` valid messages per protocol with garbage
    between them at ``rate`` per second, and a new client. Returns what was sent."""
    report = HostileReport()
    held = await _hold_idle(ports, idle)
    report.idle_held = len(held)
    bombs = await _bombs(ports)
    loris = asyncio.create_task(_slow_loris(ports, settle + n / rate + 5.0))
    await _flood(ports, flood, report)
    await asyncio.sleep(settle)  # the collector works through what the flood left queued
    await asyncio.gather(
        _valid_and_garbage(ports, report, n, rate),
        _garbage_fluentd(ports, random.Random(3), 200),
    )
    await _newcomer(ports, report)
    await loris
    for w in held + bombs:
        w.close()
    return report


def peak_rss_mib(pid: int) -> float:
    """A process's peak resident set (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0
