"""The node agent against the real Kafka, the hard way: 200,000 lines written by four writer
processes into four container log files (docker json-file and CRI, with CRI partials and
docker chunks), rotated both ways (kubelet-style rename to ``0.log.<timestamp>`` and
copytruncate to ``0.log.<n>``) while ``logriver collect`` is SIGKILLed twice and restarted.

Every line carries a unique sequence number; the test consumes the raw topic and checks that
every line arrived whole, that nothing else arrived, and that a duplicate (from the last
unacknowledged batch before a kill) always carries the same id as the first copy."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer

from streams.transport.records import decode_batch

WRITERS = (  # (format, rotation, via a containers/ symlink)
    ("docker", "rename", True),
    ("cri", "rename", True),
    ("cri", "copytruncate", False),
    ("docker", "copytruncate", False),
)
LINES_PER_WRITER = 50_000
ROTATE_EVERY = 9_000  # lines: ~5 rotations per file
BATCH = 250  # lines per write(); rotations happen between writes
PAUSE = 0.04  # seconds between writes: ~6k lines/s per writer
SPLIT_EVERY = 37  # every n-th line is written in runtime chunks (CRI P..F, docker pieces)


def _cid(w: int) -> str:
    return f"{w:x}" * 64


def _paths(root: Path, w: int) -> tuple[Path, Path]:
    ns, pod, container = f"ns{w}", f"app-{w}", f"c{w}"
    d = root / "pods" / f"{ns}_{pod}_0000000{w}-aaaa-bbbb-cccc-dddddddddddd" / container
    return d, root / "containers" / f"{pod}_{ns}_{container}-{_cid(w)}.log"


def message(w: int, i: int) -> str:
    return f"w{w} seq {i:06d} order={i * 7 % 1000} status=ok"


def _frame(fmt: str, text: str, ts: str) -> bytes:
    if fmt == "docker":
        return orjson.dumps({"log": text, "stream": "stdout", "time": ts}) + b"\n"
    return f"{ts} stdout {'F' if text.endswith(chr(10)) else 'P'} {text.rstrip(chr(10))}\n".encode()


def _encode(fmt: str, text: str, split: bool) -> bytes:
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z"
    if not split:
        return _frame(fmt, text + "\n", ts)
    a, b = len(text) // 3, 2 * len(text) // 3
    return b"".join(_frame(fmt, piece, ts) for piece in (text[:a], text[a:b], text[b:] + "\n"))


def writer(root: str, w: int, fmt: str, rotation: str, progress) -> None:
    d, _link = _paths(Path(root), w)
    path = d / "0.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    rotations = 0
    since_rotation = 0
    for start in range(0, LINES_PER_WRITER, BATCH):
        chunk = b"".join(_encode(fmt, message(w, i), i % SPLIT_EVERY == 5)
                         for i in range(start, min(start + BATCH, LINES_PER_WRITER)))
        os.write(fd, chunk)
        since_rotation += BATCH
        progress[w] = min(start + BATCH, LINES_PER_WRITER)
        if since_rotation >= ROTATE_EVERY:
            rotations += 1
            since_rotation = 0
            if rotation == "rename":  # what kubelet does: rename, the runtime reopens
                os.rename(path, d / f"0.log.20261126-{rotations:06d}")
                os.close(fd)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            else:  # logrotate copytruncate (the writer pauses during copy + truncate)
                shutil.copyfile(path, d / f"0.log.{rotations}")
                os.ftruncate(fd, 0)
        time.sleep(PAUSE)
    os.close(fd)


def _agent(settings, root: Path, log_path: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streams", "collect", "--root", str(root),
           "--checkpoint-dir", str(root.parent / "checkpoints"), "--host", "node-1",
           "--kafka", settings.kafka_bootstrap, "--topic-prefix", settings.topic_prefix]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log_path, "ab"))


async def _consume_until(settings, expected: set[str], timeout: float) -> list[dict]:
    consumer = AIOKafkaConsumer(settings.topic("logs.raw"), bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="earliest", group_id=None,
                                fetch_max_bytes=32 * 1024 * 1024)
    await consumer.start()
    out: list[dict] = []
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not expected <= seen:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for msgs in batch.values():
                for m in msgs:
                    recs = decode_batch(m.value)
                    out.extend(recs)
                    seen.update(r["message"] for r in recs)
        # a little longer, to see duplicates still in flight
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            for msgs in (await consumer.getmany(timeout_ms=300)).values():
                for m in msgs:
                    out.extend(decode_batch(m.value))
    finally:
        await consumer.stop()
    return out


def test_200k_lines_rotating_both_ways_agent_killed_twice(settings, tmp_path):
    root = tmp_path / "log"
    (root / "containers").mkdir(parents=True)
    for w, (_fmt, _rot, symlink) in enumerate(WRITERS):
        d, link = _paths(root, w)
        d.mkdir(parents=True)
        if symlink:  # what kubelet creates: containers/<pod>_<ns>_<c>-<id>.log -> pods/.../0.log
            (d / "0.log").touch()
            os.symlink(d / "0.log", link)
    agent_log = tmp_path / "agent.log"
    ctx = mp.get_context("fork")
    progress = ctx.Array("i", len(WRITERS))
    t0 = time.monotonic()
    agent = _agent(settings, root, agent_log)
    writers = [ctx.Process(target=writer, args=(str(root), w, fmt, rot, progress))
               for w, (fmt, rot, _) in enumerate(WRITERS)]
    for p in writers:
        p.start()
    total = len(WRITERS) * LINES_PER_WRITER
    kills = []
    try:
        checkpoints = root.parent / "checkpoints" / "checkpoints.json"
        for fraction in (0.3, 0.65):
            started = time.time()
            # kill mid-stream: writers past the mark and the agent publishing (a checkpoint
            # written since it started), then a little more so a batch is in flight
            while sum(progress) < fraction * total or not (
                    checkpoints.exists() and checkpoints.stat().st_mtime > started):
                assert agent.poll() is None, agent_log.read_text()[-3000:]
                time.sleep(0.05)
            time.sleep(0.35)
            agent.send_signal(signal.SIGKILL)
            agent.wait()
            kills.append(round(time.monotonic() - t0, 1))
            time.sleep(1.5)  # rotations happen while the agent is down
            agent = _agent(settings, root, agent_log)
        for p in writers:
            p.join(120)
            assert p.exitcode == 0
        written = round(time.monotonic() - t0, 1)
        expected = {message(w, i) for w in range(len(WRITERS)) for i in range(LINES_PER_WRITER)}
        records = asyncio.run(_consume_until(settings, expected, timeout=240))
        assert agent.poll() is None, agent_log.read_text()[-3000:]
    finally:
        for p in writers:
            if p.is_alive():
                p.kill()
        if agent.poll() is None:
            agent.terminate()
            agent.wait(30)
    elapsed = round(time.monotonic() - t0, 1)

    got = {r["message"] for r in records}
    missing = sorted(expected - got)
    assert not missing, f"{len(missing)} lines lost, e.g. {missing[:5]}"
    extra = sorted(got - expected)
    assert not extra, f"{len(extra)} unexpected messages (fragments?), e.g. {extra[:5]}"
    ids_by_message: dict[str, set[str]] = defaultdict(set)
    messages_by_id: dict[str, set[str]] = defaultdict(set)
    for r in records:
        ids_by_message[r["message"]].add(r["id"])
        messages_by_id[r["id"]].add(r["message"])
    assert all(len(v) == 1 for v in ids_by_message.values()), "a line arrived twice with different ids"
    assert all(len(v) == 1 for v in messages_by_id.values()), "one id for different lines"
    assert not [r for r in records if r.get("flags")], "lines flagged (incomplete/truncated)"
    # metadata from the file name, the container id also for rotated files read via pods/
    by_writer = {int(r["message"].split()[0][1:]): r for r in records}
    for w, (_fmt, _rot, symlink) in enumerate(WRITERS):
        assert by_writer[w]["kubernetes"]["namespace"] == f"ns{w}"
    dups = len(records) - len(expected)
    rotated = sum(1 for r in records if not r["source"]["path"].endswith(".log"))
    assert all(r.get("container", {}).get("id") == _cid(w) for w in (0, 1)
               for r in records if r["message"].startswith(f"w{w} ")), "rotated file lost its container id"
    print(f"\n200k durability: {len(records)} records, {dups} duplicates (same ids), kills at {kills}s, "
          f"writers done {written}s, all delivered {elapsed}s, {rotated} read from rotated files")


# -- backpressure: a private Kafka stopped and restarted under the tailer -------------------
def _free_port_block(n: int = 3) -> int:
    import random
    import socket
    for _ in range(200):
        base = random.randint(20000, 40000)
        try:
            socks = []
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free ports")


def test_kafka_down_pauses_reading_and_resumes_by_itself(services, tmp_path):
    """Never touches the shared Kafka: a private one on free ports, stopped and restarted."""
    from streams import services as svc
    from streams.sources.checkpoints import CheckpointStore
    from streams.sources.files import FileTailer
    from streams.transport.kafka import KafkaPublisher, ensure_topics

    home = tmp_path / "kafka-home"
    (home / "dist").mkdir(parents=True)
    src = Path("/var/cache/logriver/dist")
    for d in (src.glob("kafka-*") if src.is_dir() else []):  # reuse the fetched jars
        (home / "dist" / d.name).symlink_to(d)
    port = _free_port_block(3)
    svc.up(("kafka",), home=home, kafka_port=port, kafka_heap="256m")
    bootstrap = f"127.0.0.1:{port}"
    logdir = tmp_path / "logs"
    logdir.mkdir()
    f = logdir / f"web-1_shop_app-{'c' * 64}.log"

    def write(start: int, n: int) -> None:
        with open(f, "ab") as fh:
            fh.write(b"".join(orjson.dumps({"log": f"bp seq {i:06d}\n", "stream": "stdout",
                                            "time": "2026-11-26T00:00:00.000000001Z"}) + b"\n"
                              for i in range(start, start + n)))

    timeline: dict[str, float] = {}

    async def main() -> list[dict]:
        topic = "bp.logs.raw"
        await ensure_topics(bootstrap, [topic], partitions=1)
        cps = CheckpointStore(tmp_path / "cp.json", min_interval=0)
        pub = KafkaPublisher(bootstrap, topic, retry_for=5.0, request_timeout_ms=4000)
        await pub.start()
        tailer = FileTailer([str(logdir / "*.log")], pub, cps, host="node-1", read_size=16 * 1024,
                            multiline=None, poll_interval=0.1)
        tailer.retry_max_delay = 1.0
        stop = asyncio.Event()
        task = asyncio.create_task(tailer.run(stop))

        async def until(cond, timeout):
            deadline = time.monotonic() + timeout
            while not cond() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            return cond()

        def acked() -> int:
            tf = next(iter(tailer.files.values()), None)
            cp = tf and cps.get(tf.identity)
            return cp.offset if cp else 0

        write(0, 5000)
        assert await until(lambda: acked() == f.stat().st_size, 60), "first lines not acknowledged"
        t0 = time.monotonic()
        await asyncio.to_thread(svc.down, home)  # Kafka goes away
        timeline["down"] = time.monotonic() - t0
        write(5000, 20000)
        size = f.stat().st_size
        await asyncio.sleep(8)  # long enough for the publisher to give up and the tailer to retry
        tf = next(iter(tailer.files.values()))
        assert not task.done(), "the tailer died while Kafka was down"
        paused_at, acked_while_down = tf.offset, acked()
        assert paused_at - acked_while_down <= 16 * 1024  # one chunk in memory, then paused
        assert paused_at < size
        assert tailer.publish_failures >= 1
        await asyncio.to_thread(svc.up, ("kafka",), home=home, kafka_port=port, kafka_heap="256m")
        timeline["up"] = time.monotonic() - t0
        ok = await until(lambda: acked() == f.stat().st_size, 90)
        timeline["resumed"] = time.monotonic() - t0
        stop.set()
        await task
        await pub.stop()
        assert ok, f"did not resume: acked {acked()} of {f.stat().st_size}"
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    group_id=None)
        await consumer.start()
        out: list[dict] = []
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len({r["message"] for r in out}) < 25000:
                for msgs in (await consumer.getmany(timeout_ms=500)).values():
                    for m in msgs:
                        out.extend(decode_batch(m.value))
        finally:
            await consumer.stop()
        return out

    try:
        records = asyncio.run(main())
    finally:
        svc.down(home)
    want = {f"bp seq {i:06d}" for i in range(25000)}
    got = {r["message"] for r in records}
    assert want == got, f"{len(want - got)} lost"
    ids: dict[str, set[str]] = defaultdict(set)
    for r in records:
        ids[r["message"]].add(r["id"])
    assert all(len(v) == 1 for v in ids.values())
    print(f"\nbackpressure: {len(records)} records ({len(records) - 25000} duplicates), timeline {timeline}")
