"""Windows in the real Faust worker: changelog-backed state, exact counts after a SIGKILL,
and the same results with two workers on four partitions as with one."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import ApiError, AsyncElasticsearch

from streams.demo.chain import WorkerProcess, collect_once, count_events
from streams.demo.loggen import generate
from streams.ops.config import Settings
from streams.pipeline import load_pipeline
from streams.windows import batch_recompute

PIPELINE = str(Path(__file__).resolve().parents[1] / "pipelines" / "windows_exact.py")
FIELDS = ("count", "error_count", "bytes")


async def _fetch(settings, kind: str) -> list[dict]:
    for attempt in range(20):
        try:
            return await _fetch_once(settings, kind)
        except ApiError as exc:  # 503 while an index is being created: try again
            if exc.meta.status != 503 or attempt == 19:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")


async def _fetch_once(settings, kind: str) -> list[dict]:
    async with AsyncElasticsearch(settings.es_url) as es:
        index = f"{settings.index_prefix}-{kind}-winexact*"
        await es.indices.refresh(index=index, allow_no_indices=True)
        out, after = [], None
        while True:
            body = {"size": 5000, "sort": [{"event.id": "asc"}]}
            if after:
                body["search_after"] = after
            resp = await es.search(index=index, body=body, allow_no_indices=True)
            hits = resp["hits"]["hits"]
            if not hits:
                return out
            out.extend(h["_source"] for h in hits)
            after = hits[-1]["sort"]


def _table(docs: list[dict]) -> dict[tuple, tuple]:
    return {(d["window"]["name"], d["window"]["start"], tuple(sorted(d["key"].items()))):
            tuple(d[f] for f in FIELDS) for d in docs}


def _wait_metrics(settings, expected: int, worker: WorkerProcess, timeout: float = 180) -> list[dict]:
    deadline = time.monotonic() + timeout
    docs: list[dict] = []
    while time.monotonic() < deadline:
        docs = asyncio.run(_fetch(settings, "metrics"))
        if len(docs) >= expected:
            return docs
        assert worker.alive(), "worker died"
        time.sleep(1)
    return docs


# One start for every run of this module, so runs compare window by window.
START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


def _generate(tmp_path: Path):
    return generate(tmp_path / "log", 8000, seed=11, start=START)


def _expected(settings, gen) -> dict[tuple, tuple]:
    events = asyncio.run(_fetch(settings, "events"))
    assert len(events) == gen.events
    return _table(batch_recompute(events, load_pipeline(PIPELINE).windows, pipeline="winexact"))


async def _chunk_keys(settings) -> tuple[set[bytes], int]:
    """Keys of the window state's changelog written as chunks (``streams.transport.state``), and how
    many of their messages are deletions (the slot a key no longer names)."""
    from aiokafka import AIOKafkaConsumer

    topic = f"{settings.topic_prefix}logriver-winexact-windows-winexact-changelog"
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        keys: set[bytes] = set()
        deleted = 0
        while batch := await consumer.getmany(timeout_ms=2000):
            for m in (m for msgs in batch.values() for m in msgs if b"#" in m.key):
                keys.add(m.key)
                deleted += m.value is None
        return keys, deleted
    finally:
        await consumer.stop()


def test_window_counts_after_sigkill_equal_batch_recomputation(settings, tmp_path, monkeypatch):
    # State chunks of 4 KiB: the SIGKILL lands while states are written as several changelog
    # messages (as a window stage over thousands of containers is, at 900 KiB a chunk).
    monkeypatch.setenv("LOGRIVER_STATE_CHUNK_BYTES", "4096")
    gen = _generate(tmp_path)
    asyncio.run(collect_once(settings, gen.root, tmp_path / "cp"))
    first = WorkerProcess(PIPELINE, settings, log_path=tmp_path / "w1.log").start()
    try:
        deadline = time.monotonic() + 120
        while asyncio.run(count_events(settings, "winexact")) < 1:
            assert first.alive() and time.monotonic() < deadline
            time.sleep(0.2)
        first.kill()  # mid-run: windows open, state partly in the changelog
    finally:
        first.stop()
    with WorkerProcess(PIPELINE, settings, log_path=tmp_path / "w2.log") as worker:
        deadline = time.monotonic() + 180
        while asyncio.run(count_events(settings, "winexact")) < gen.events:
            assert worker.alive() and time.monotonic() < deadline
            time.sleep(0.5)
        expected = _expected(settings, gen)
        got = _table(_wait_metrics(settings, len(expected), worker))
    assert got == expected
    keys, deleted = asyncio.run(_chunk_keys(settings))
    assert keys and deleted, f"state in chunks: {len(keys)} keys, {deleted} deletions"


def test_two_workers_on_four_partitions_equal_one(services, tmp_path):
    results = []
    for n_workers in (1, 2):
        run = uuid.uuid4().hex[:8]
        s = Settings(kafka_bootstrap=services["kafka"].address, es_url=services["elasticsearch"].address,
                     topic_prefix=f"w{n_workers}{run}.", index_prefix=f"lrtest-w{n_workers}{run}",
                     state_dir=tmp_path / f"state{n_workers}")
        gen = _generate(tmp_path / f"run{n_workers}")
        asyncio.run(collect_once(s, gen.root, tmp_path / f"cp{n_workers}"))
        workers = [WorkerProcess(PIPELINE, s, log_path=tmp_path / f"n{n_workers}-{i}.log").start()
                   for i in range(n_workers)]
        try:
            expected_events = gen.events
            deadline = time.monotonic() + 180
            while asyncio.run(count_events(s, "winexact")) < expected_events:
                assert all(w.alive() for w in workers) and time.monotonic() < deadline
                time.sleep(0.5)
            expected = _expected(s, gen)
            results.append(_table(_wait_metrics(s, len(expected), workers[0])))
            assert results[-1] == expected
        finally:
            for w in workers:
                w.stop()
    assert results[0] == results[1]
