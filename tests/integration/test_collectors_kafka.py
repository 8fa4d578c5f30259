"""Collectors against the real Kafka: the agent's receivers (syslog, GELF, fluentd forward)
run by `logriver collect`, and the Python logging handler."""

from __future__ import annotations

import asyncio
import gzip
import logging
import logging.handlers
import socket
import subprocess
import sys
import time

import msgpack
import orjson
from aiokafka import AIOKafkaConsumer

from streams.sources.logging_handler import KafkaLoggingHandler
from streams.transport.records import decode_batch


def _free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _consume(settings, want: int, timeout: float = 60.0) -> list[dict]:
    consumer = AIOKafkaConsumer(settings.topic("logs.raw"), bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    out: list[dict] = []
    try:
        deadline = time.monotonic() + timeout
        while len(out) < want and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for msgs in batch.values():
                for m in msgs:
                    out.extend(decode_batch(m.value))
    finally:
        await consumer.stop()
    return out


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


def test_receivers_publish_to_the_raw_topic(settings, tmp_path):
    syslog_udp, gelf_udp = _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_DGRAM)
    syslog_tcp, fluentd = _free_port(), _free_port()
    cmd = [sys.executable, "-m", "streams", "collect", "--no-tail", "--root", str(tmp_path),
           "--checkpoint-dir", str(tmp_path / "cp"), "--kafka", settings.kafka_bootstrap,
           "--topic-prefix", settings.topic_prefix, "--syslog-udp", str(syslog_udp),
           "--syslog-tcp", str(syslog_tcp), "--gelf-udp", str(gelf_udp), "--fluentd", str(fluentd)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "agent.log", "wb"))  # noqa: SIM115
    try:
        _wait_port(syslog_tcp)
        _wait_port(fluentd)
        # syslog: Python's own SysLogHandler, over UDP and TCP
        for port, socktype in ((syslog_udp, socket.SOCK_DGRAM), (syslog_tcp, socket.SOCK_STREAM)):
            h = logging.handlers.SysLogHandler(address=("127.0.0.1", port), socktype=socktype)
            lg = logging.getLogger(f"it-syslog-{port}")
            lg.addHandler(h)
            lg.error("disk %s is full", f"sd{port}")
            h.close()
        # GELF: a gzip-compressed datagram with an additional field
        gelf = {"version": "1.1", "host": "web-1", "short_message": "GELF hello", "level": 3, "_pod": "web-1"}
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(gzip.compress(orjson.dumps(gelf)), ("127.0.0.1", gelf_udp))
        # fluentd forward, Message mode with an ack request (what Docker's fluentd driver sends)
        with socket.create_connection(("127.0.0.1", fluentd), timeout=10) as s:
            s.sendall(msgpack.packb(["docker.abc", int(time.time()), {"log": "fluent hello", "source": "stdout"},
                                    {"chunk": "Y2h1bmsx"}]))
            ack = msgpack.unpackb(s.recv(4096))
            assert ack == {"ack": "Y2h1bmsx"}
        records = asyncio.run(_consume(settings, 4))
    finally:
        proc.terminate()
        proc.wait(30)
    messages = {r["message"]: r for r in records}
    assert any(m.endswith(f"disk sd{syslog_udp} is full") for m in messages)
    assert any(m.endswith(f"disk sd{syslog_tcp} is full") for m in messages)
    assert messages["GELF hello"]["fields"]["pod"] == "web-1"
    assert messages["fluent hello"]["source"]["type"] == "fluentd"
    assert len({r["id"] for r in records}) == len(records)


def test_logging_handler_ships_records_without_blocking(settings):
    handler = KafkaLoggingHandler(settings.kafka_bootstrap, settings.topic("logs.raw"))
    lg = logging.getLogger("it-app")
    lg.propagate = False
    lg.addHandler(handler)
    lg.setLevel(logging.INFO)
    try:
        for i in range(50):
            lg.info("order %d placed", i)
        try:
            raise ValueError("boom")
        except ValueError:
            lg.exception("failed")
    finally:
        handler.close()
        lg.removeHandler(handler)
    records = asyncio.run(_consume(settings, 51))
    msgs = [r["message"] for r in records]
    assert [m for m in msgs if m.startswith("order")] == [f"order {i} placed" for i in range(50)]
    assert any("ValueError: boom" in m for m in msgs)
    assert handler.dropped == 0
