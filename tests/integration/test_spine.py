"""The spine end to end on the real services: files -> collector -> Kafka -> Faust worker ->
Elasticsearch, exactly once, including after a worker is SIGKILLed midway."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from elasticsearch import AsyncElasticsearch

from streams.demo.chain import (
    WorkerProcess,
    collect_once,
    count_events,
    wait_for_count,
    wait_until_consumed,
)
from streams.demo.loggen import generate


async def _all_docs(settings, fields=("event.id",)) -> list[dict]:
    async with AsyncElasticsearch(settings.es_url) as es:
        index = f"{settings.index_prefix}-events-kubernetes*"
        await es.indices.refresh(index=index)
        docs, after = [], None
        while True:
            body = {"size": 5000, "sort": [{"event.id": "asc"}], "_source": list(fields)}
            if after:
                body["search_after"] = after
            resp = await es.search(index=index, body=body)
            hits = resp["hits"]["hits"]
            if not hits:
                return docs
            docs.extend(h["_source"] | {"_id": h["_id"]} for h in hits)
            after = hits[-1]["sort"]


def test_ten_thousand_lines_exactly_once(settings, tmp_path: Path):
    gen = generate(tmp_path / "log", 10_000, seed=1, bad_lines=True)
    with WorkerProcess("kubernetes", settings, log_path=tmp_path / "worker.log") as worker:
        sent = asyncio.run(collect_once(settings, gen.root, tmp_path / "cp"))
        assert sent == gen.events
        found = asyncio.run(wait_for_count(settings, gen.events, timeout=240, worker=worker))
    assert found == gen.events, (tmp_path / "worker.log").read_text()[-3000:]
    docs = asyncio.run(_all_docs(settings, (
        "event.id", "@timestamp", "message", "log.level", "log.severity", "kubernetes.namespace",
        "kubernetes.pod.name", "kubernetes.container.name", "logriver.flags", "log.template_id")))
    ids = [d["event"]["id"] for d in docs]
    assert len(ids) == len(set(ids)) == gen.events
    assert all(d["_id"] == d["event"]["id"] for d in docs)
    by_ns: dict[str, int] = {}
    for d in docs:
        k8s = d["kubernetes"]
        assert k8s["pod"]["name"] and k8s["container"]["name"]
        assert d["@timestamp"].endswith("Z")
        assert d["log"]["template_id"]
        by_ns[k8s["namespace"]] = by_ns.get(k8s["namespace"], 0) + 1
    assert by_ns == dict(gen.by_namespace)
    severities = {d["log"].get("severity") for d in docs}  # normalized beside the original level
    assert {"info", "warn", "error"} <= severities
    flags = [f for d in docs for f in d.get("logriver", {}).get("flags", [])]
    # The four bad lines reach Elasticsearch flagged, with their raw text kept.
    assert "runtime_parse_error" in flags and "invalid_utf8" in flags


def test_worker_sigkilled_midway_then_restarted(settings, tmp_path: Path):
    gen = generate(tmp_path / "log", 20_000, seed=2)
    sent = asyncio.run(collect_once(settings, gen.root, tmp_path / "cp"))
    assert sent == gen.events
    worker = WorkerProcess("kubernetes", settings, log_path=tmp_path / "worker.log").start()
    try:
        deadline = time.monotonic() + 180
        while asyncio.run(count_events(settings)) < 1:
            assert worker.alive() and time.monotonic() < deadline
            time.sleep(0.2)
        worker.kill()
        midway = asyncio.run(count_events(settings))
        assert 0 < midway < gen.events
    finally:
        worker.stop()
    with WorkerProcess("kubernetes", settings, log_path=tmp_path / "worker2.log") as worker2:
        found = asyncio.run(wait_for_count(settings, gen.events, timeout=240, worker=worker2))
    assert found == gen.events
    ids = [d["event"]["id"] for d in asyncio.run(_all_docs(settings))]
    assert len(ids) == len(set(ids)) == gen.events


def test_replaying_the_same_offsets_creates_no_new_documents(settings, tmp_path: Path):
    gen = generate(tmp_path / "log", 500, seed=3)
    asyncio.run(collect_once(settings, gen.root, tmp_path / "cp"))
    # Collect again from scratch (new checkpoint folder): the same lines, the same ids.
    asyncio.run(collect_once(settings, gen.root, tmp_path / "cp2"))
    with WorkerProcess("kubernetes", settings, log_path=tmp_path / "worker.log") as worker:
        asyncio.run(wait_for_count(settings, gen.events, timeout=180, worker=worker))
        # Every raw message, the duplicated second collection included, is committed ...
        lag = asyncio.run(wait_until_consumed(settings, f"{settings.topic_prefix}logriver-kubernetes",
                                              settings.topic("logs.raw")))
        assert lag == 0
        found = asyncio.run(count_events(settings))
    assert found == gen.events


def test_template_store_is_indexed_and_survives_a_restart(settings, tmp_path: Path):
    import dataclasses

    settings = dataclasses.replace(settings, persist_seconds=1.0)
    gen = generate(tmp_path / "log", 2000, seed=4)
    asyncio.run(collect_once(settings, gen.root, tmp_path / "cp"))

    async def templates() -> list[dict]:
        async with AsyncElasticsearch(settings.es_url) as es:
            index = f"{settings.index_prefix}-templates-kubernetes*"
            await es.indices.refresh(index=index, allow_no_indices=True)
            resp = await es.search(index=index, size=1000, allow_no_indices=True)
            return [h["_source"] for h in resp["hits"]["hits"]]

    def wait_templates(worker) -> list[dict]:
        deadline = time.monotonic() + 120
        docs: list[dict] = []
        while time.monotonic() < deadline:
            docs = asyncio.run(templates())
            if docs and sum(d["count"] for d in docs) >= gen.events:
                return docs
            assert worker.alive()
            time.sleep(1)
        return docs

    with WorkerProcess("kubernetes", settings, log_path=tmp_path / "w1.log") as worker:
        asyncio.run(wait_for_count(settings, gen.events, timeout=120, worker=worker))
        docs = wait_templates(worker)
    # every event counted in the template statistics, summed over partitions (at least once:
    # a buffer re-delivered after a rebalance is counted again by the miner)
    assert sum(d["count"] for d in docs) >= gen.events
    assert all(d["template_id"] and d["first_seen"] <= d["last_seen"] for d in docs)
    # a restarted worker resumes its miners from the changelog: the same input again (new ids,
    # collected anew) adds to the counts instead of starting over (a fresh miner would
    # overwrite the documents with counts of the second input only)
    gen2 = generate(tmp_path / "log2", 2000, seed=4)
    asyncio.run(collect_once(settings, gen2.root, tmp_path / "cp2"))
    with WorkerProcess("kubernetes", settings, log_path=tmp_path / "w2.log") as worker:
        asyncio.run(wait_for_count(settings, gen.events + gen2.events, timeout=120, worker=worker))
        deadline = time.monotonic() + 120
        while sum(d["count"] for d in asyncio.run(templates())) < gen.events + gen2.events:
            assert worker.alive() and time.monotonic() < deadline
            time.sleep(1)
    assert sum(d["count"] for d in asyncio.run(templates())) >= gen.events + gen2.events


def test_template_ids_survive_a_sigkill_between_snapshots(settings, tmp_path: Path):
    """A worker that never got to snapshot its miners (persist interval of an hour) is
    SIGKILLed after its input was acknowledged; restarted on new lines of the same statements
    (other values, other user names), it gives every statement the id it gave before: the
    births were journaled before their buffers were acknowledged."""
    import dataclasses

    settings = dataclasses.replace(settings, persist_seconds=3600.0)
    group = f"{settings.topic_prefix}logriver-kubernetes"
    gen = generate(tmp_path / "log", 2000, seed=21)
    asyncio.run(collect_once(settings, gen.root, tmp_path / "cp"))
    worker = WorkerProcess("kubernetes", settings, log_path=tmp_path / "w1.log").start()
    try:
        asyncio.run(wait_for_count(settings, gen.events, timeout=180, worker=worker))
        assert asyncio.run(wait_until_consumed(settings, group, settings.topic("logs.raw"))) == 0
        worker.kill()
    finally:
        worker.stop()
    before = {d["log"]["template_id"] for d in asyncio.run(_all_docs(settings, ("log.template_id",)))}
    gen2 = generate(tmp_path / "log2", 2000, seed=22)
    asyncio.run(collect_once(settings, gen2.root, tmp_path / "cp2"))
    with WorkerProcess("kubernetes", settings, log_path=tmp_path / "w2.log") as worker2:
        asyncio.run(wait_for_count(settings, gen.events + gen2.events, timeout=180, worker=worker2))
    docs = asyncio.run(_all_docs(settings, ("log.template_id", "log.template")))
    after = {d["log"]["template_id"] for d in docs} - before
    assert not after, sorted({d["log"]["template"] for d in docs if d["log"]["template_id"] in after})
