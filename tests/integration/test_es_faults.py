"""Elasticsearch faults against the real services, through the real worker:

- a document with a conflicting type is dead-lettered (read back from the real dead-letter
  topic and validated against its schema) while the rest of its bulk request is indexed;
- Elasticsearch stopped for 30 s in the middle of a 50,000-line run, then started again: every
  line is indexed exactly once. This one runs a PRIVATE Elasticsearch (its own home and port;
  the shared one on 9200 is never touched) and the shared Kafka.

(A replay of the same offsets creating no document is in test_spine.py.)
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from elasticsearch import AsyncElasticsearch

from schemas import validate
from streams import services as svc
from streams.demo.chain import WorkerProcess, collect_once, count_events, wait_for_count
from streams.demo.loggen import generate
from streams.ops.config import Settings
from streams.transport.kafka import ensure_topics
from streams.transport.records import encode_batch, event_id, now_rfc3339


async def read_topic(bootstrap: str, topic: str, *, expect: int | None = None,
                     timeout: float = 30.0, idle: float = 3.0) -> list[tuple[bytes | None, bytes]]:
    """Every message of ``topic`` from the beginning: until ``expect`` messages were read, or
    nothing new arrived for ``idle`` seconds (or ``timeout``)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    out: list[tuple[bytes | None, bytes]] = []
    try:
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for msgs in batch.values():
                out.extend((m.key, m.value) for m in msgs)
                last = time.monotonic()
            if expect is not None and len(out) >= expect:
                break
            if expect is None and out and time.monotonic() - last > idle:
                break
    finally:
        await consumer.stop()
    return out


def _record(i: int, **extra) -> dict:
    return {"id": event_id("faults", i), "message": f"order {i} placed by alice",
            "time": now_rfc3339(), "observed": now_rfc3339(), "stream": "stdout",
            "source": {"type": "file", "path": "/var/log/containers/faults.log", "offset": i},
            "kubernetes": {"namespace": "shop", "pod": {"name": "checkout-1"},
                           "container": {"name": "checkout"}},
            **extra}


def test_conflicting_type_is_dead_lettered_rest_of_bulk_indexed(settings, tmp_path: Path):
    n = 200
    records = [_record(i) for i in range(n)]
    # Object fields sent as scalars: ignore_malformed cannot save these, the document is rejected.
    # (A scalar ``service`` no longer is: the pipeline's service step puts the Kubernetes
    # service in service.name and keeps the declared one as attributes.service.)
    records[17]["container"] = 17  # container is an object (container.id)
    records[123]["container"] = "0123456789ab"  # container is an object (container.id)
    bad = {records[17]["id"], records[123]["id"]}
    raw, dl_topic = settings.topic("logs.raw"), settings.topic("logs.deadletter")

    async def produce() -> None:
        await ensure_topics(settings.kafka_bootstrap, [raw])
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:  # one message: one batch, one bulk request
            await producer.send_and_wait(raw, encode_batch(records), key=b"faults/stdout")
        finally:
            await producer.stop()

    asyncio.run(produce())
    with WorkerProcess("kubernetes", settings, log_path=tmp_path / "worker.log") as worker:
        found = asyncio.run(wait_for_count(settings, n - len(bad), timeout=120, worker=worker))
        letters = asyncio.run(read_topic(settings.kafka_bootstrap, dl_topic, expect=len(bad)))
        time.sleep(2)  # nothing more should come
        found = asyncio.run(count_events(settings))
    assert found == n - len(bad), (tmp_path / "worker.log").read_text()[-3000:]
    assert len(letters) == len(bad)
    seen = set()
    for key, value in letters:
        dl = orjson.loads(value)
        validate("deadletter", dl)
        assert dl["stage"] == "index"
        assert dl["reason"] in ("document_parsing_exception", "mapper_parsing_exception"), dl
        assert dl["step"].startswith(f"elasticsearch:{settings.index_prefix}-events-kubernetes")
        assert "object" in dl["detail"]  # "tried to parse field [...] as object, but found a concrete value"
        original = orjson.loads(dl["original"])  # the whole document, as it was sent
        assert original["event"]["id"] == dl["event_id"] == key.decode()
        seen.add(dl["event_id"])
    assert seen == bad

    async def indexed_ids() -> set[str]:
        async with AsyncElasticsearch(settings.es_url) as es:
            resp = await es.search(index=f"{settings.index_prefix}-events-*", size=n,
                                   _source=False)
            return {h["_id"] for h in resp["hits"]["hits"]}

    assert asyncio.run(indexed_ids()) == {r["id"] for r in records} - bad


# ---------------------------------------------------------------- Elasticsearch outage

LINES = 50_000
OUTAGE_SECONDS = 30


def _free_port_pair() -> int:
    """A free port P with P + 100 (the transport port) free too."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 100 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 100))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")


@pytest.fixture
def private_es():
    """A private Elasticsearch in its own home (the distribution shared by symlink)."""
    from streams.services.base import default_home

    base = "/var/cache" if os.geteuid() == 0 else None  # reachable by the ES user when root
    home = Path(tempfile.mkdtemp(prefix="logriver-es-faults-", dir=base))
    home.chmod(0o755)
    shared_dist = default_home() / "dist"
    if shared_dist.is_dir():
        (home / "dist").symlink_to(shared_dist)
    port = _free_port_pair()
    try:
        st = svc.up(("elasticsearch",), home=home, es_port=port, es_heap="384m")
    except svc.ServiceError as exc:
        shutil.rmtree(home, ignore_errors=True)
        pytest.fail(f"could not start a private Elasticsearch: {exc}")
    try:
        yield home, port, st["elasticsearch"].address
    finally:
        svc.down(home=home)
        shutil.rmtree(home, ignore_errors=True)


def test_elasticsearch_down_30s_midway_every_line_indexed_once(services, private_es, tmp_path: Path):
    home, port, es_url = private_es
    run = uuid.uuid4().hex[:10]
    settings = Settings(kafka_bootstrap=services["kafka"].address, es_url=es_url,
                        topic_prefix=f"t{run}.", index_prefix=f"lrtest-{run}",
                        state_dir=tmp_path / "state")
    gen = generate(tmp_path / "log", LINES, seed=6)
    sent = asyncio.run(collect_once(settings, gen.root, tmp_path / "cp"))
    assert sent == gen.events
    group = f"{settings.topic_prefix}logriver-kubernetes"
    log_path = tmp_path / "worker.log"
    with WorkerProcess("kubernetes", settings, log_path=log_path) as worker:
        deadline = time.monotonic() + 240
        while (midway := asyncio.run(count_events(settings))) < gen.events // 10:
            assert worker.alive(), log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, f"only {midway} indexed"
            time.sleep(0.3)
        svc.down(home=home)  # stop the private Elasticsearch (SIGTERM, as an operator would)
        stopped_at = time.monotonic()
        assert not svc.status(home=home, probe=False)["elasticsearch"].running
        assert midway < gen.events, "the run finished before Elasticsearch could be stopped"
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))
        # The worker waits: alive, its offsets behind (lag), nothing dropped.
        assert worker.alive(), log_path.read_text()[-3000:]
        lag = asyncio.run(_lag(settings.kafka_bootstrap, group, settings.topic("logs.raw")))
        assert lag > 0
        svc.up(("elasticsearch",), home=home, es_port=port, es_heap="384m")
        found = asyncio.run(wait_for_count(settings, gen.events, timeout=300, worker=worker))
        assert found == gen.events, log_path.read_text()[-3000:]
        time.sleep(2)
        found = asyncio.run(count_events(settings))
    assert found == gen.events
    ids = asyncio.run(_all_ids(settings))
    assert len(ids) == len(set(ids)) == gen.events
    text = log_path.read_text()
    assert "pausing and retrying" in text and "reachable again" in text


async def _lag(bootstrap: str, group: str, topic: str) -> int:
    """Messages of ``topic`` not yet committed by consumer ``group``."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.structs import TopicPartition

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        ends = await consumer.end_offsets(tps)
        return sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in tps)
    finally:
        await consumer.stop()
        await admin.close()


async def _all_ids(settings: Settings) -> list[str]:
    async with AsyncElasticsearch(settings.es_url, request_timeout=60) as es:
        index = f"{settings.index_prefix}-events-kubernetes*"
        await es.indices.refresh(index=index)
        ids: list[str] = []
        after = None
        while True:
            body: dict = {"size": 10_000, "sort": [{"event.id": "asc"}], "_source": False}
            if after:
                body["search_after"] = after
            hits = (await es.search(index=index, body=body))["hits"]["hits"]
            if not hits:
                return ids
            ids.extend(h["_id"] for h in hits)
            after = hits[-1]["sort"]
