"""Audit a run of the chain against Kafka and Elasticsearch: every raw message accounted for.

For each message of the raw topic (partition, offset) the audit decodes its records and checks
each record id against what the worker left: an event document in Elasticsearch, or a dead
letter (by event id, or the whole message by its topic/partition/offset). A message with a
record in neither place is *lost*; if the group's committed offset is past it, the worker
acknowledged something it never delivered. Documents are counted per event id across every
index of the pipeline (*duplicated*: more than one document for one id).

Used by the kill tests (``tests/integration/test_worker_kills.py``) and the kill soak
(``benchmarks/bench_kills.py``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.ops import config
from streams.transport.records import BatchDecodeError, decode_batch


@dataclass
class RawMessage:
    partition: int
    offset: int
    ids: list[str]  # record ids; empty when the message is not a batch


@dataclass
class Audit:
    raw_messages: int = 0
    raw_records: int = 0
    republished: int = 0  # records whose id an earlier record had (a collector read it again)
    documents: int = 0
    dead_letters: int = 0
    lost: list[tuple[int, int, list[str]]] = field(default_factory=list)  # partition, offset, ids
    duplicated: dict[str, int] = field(default_factory=dict)  # event id -> documents
    committed: dict[int, int] = field(default_factory=dict)  # partition -> committed offset
    end_offsets: dict[int, int] = field(default_factory=dict)

    @property
    def lost_records(self) -> int:
        return sum(len(ids) for _, _, ids in self.lost)

    @property
    def lost_committed(self) -> list[tuple[int, int]]:
        """Lost messages the group's committed offset has passed."""
        return [(p, o) for p, o, _ in self.lost if self.committed.get(p, 0) > o]

    def summary(self) -> str:
        return (f"{self.raw_messages} raw messages ({self.raw_records} records, "
                f"{self.republished} published again), "
                f"{self.documents} documents, {self.dead_letters} dead letters; "
                f"lost {len(self.lost)} messages / {self.lost_records} records "
                f"({len(self.lost_committed)} behind the committed offset), "
                f"duplicated {len(self.duplicated)}; committed {self.committed}, "
                f"ends {self.end_offsets}")


async def read_topic(bootstrap: str, topic: str, *, idle: float = 2.0) -> list[Any]:
    """Every message of ``topic`` from the beginning to its end offsets (aiokafka records)."""
    from aiokafka import AIOKafkaConsumer

    from streams.transport.kafka import topic_partitions

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_bytes=32 * 1024 * 1024)
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, topic)
        if not tps:
            return []
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[Any] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=int(idle * 1000))
            if not batch:
                break
            for msgs in batch.values():
                out.extend(msgs)
        return out
    finally:
        await consumer.stop()


async def raw_messages(settings: config.Settings, topic: str = config.RAW) -> list[RawMessage]:
    out = []
    for m in await read_topic(settings.kafka_bootstrap, settings.topic(topic)):
        try:
            ids = [r["id"] for r in decode_batch(m.value)]
        except (BatchDecodeError, KeyError, TypeError):
            ids = []
        out.append(RawMessage(m.partition, m.offset, ids))
    return out


async def event_ids(settings: config.Settings, pipeline: str) -> Counter[str]:
    """Documents per event id over every events index of ``pipeline``."""
    from elasticsearch import AsyncElasticsearch
    from elasticsearch.helpers import async_scan

    index = f"{settings.index_prefix}-events-{pipeline}*"
    counts: Counter[str] = Counter()
    async with AsyncElasticsearch(settings.es_url, request_timeout=120) as es:
        await es.indices.refresh(index=index, allow_no_indices=True)
        query = {"_source": False, "docvalue_fields": ["event.id"]}
        async for hit in async_scan(es, index=index, query=query, size=5000,
                                    allow_no_indices=True):
            counts[hit["fields"]["event.id"][0]] += 1
    return counts


async def committed_offsets(settings: config.Settings, group: str, topic: str) -> dict[int, int]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def end_offsets(settings: config.Settings, topic: str) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer

    from streams.transport.kafka import topic_partitions

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, topic)
        return {tp.partition: o for tp, o in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def audit(settings: config.Settings, pipeline: str, *, group: str | None = None) -> Audit:
    """Account for every raw message of ``settings``' raw topic (see the module docstring)."""
    raw_topic = settings.topic(config.RAW)
    raws = await raw_messages(settings)
    docs = await event_ids(settings, pipeline)
    letters = [orjson.loads(m.value) for m in
               await read_topic(settings.kafka_bootstrap, settings.topic(config.DEADLETTER))]
    lettered_ids = {dl["event_id"] for dl in letters if dl.get("event_id")}
    lettered_msgs = {(dl["source"]["partition"], dl["source"]["offset"]) for dl in letters
                     if (dl.get("source") or {}).get("topic") == raw_topic}
    records = sum(len(r.ids) for r in raws)
    out = Audit(raw_messages=len(raws), raw_records=records,
                republished=records - len({i for r in raws for i in r.ids}),
                documents=sum(docs.values()), dead_letters=len(letters))
    for r in raws:
        if (r.partition, r.offset) in lettered_msgs:
            continue
        missing = [i for i in r.ids if i not in docs and i not in lettered_ids]
        if missing or not r.ids:
            out.lost.append((r.partition, r.offset, missing))
    out.duplicated = {i: n for i, n in docs.items() if n > 1}
    out.committed = await committed_offsets(
        settings, group or f"{settings.topic_prefix}logriver-{pipeline}", raw_topic)
    out.end_offsets = await end_offsets(settings, raw_topic)
    return out


WINDOW_FIELDS = ("count", "error_count", "bytes")


@dataclass
class WindowAudit:
    """Window documents against a batch recomputation over the indexed events."""

    expected: int = 0
    documents: int = 0
    missing: int = 0
    extra: int = 0
    over: int = 0  # a count above the recomputation: events counted twice
    under: int = 0  # a count below it: events not counted

    @property
    def exact(self) -> bool:
        return self.documents == self.expected and not (self.missing or self.extra
                                                        or self.over or self.under)

    def summary(self) -> str:
        return (f"{self.documents}/{self.expected} windows: missing {self.missing}, extra "
                f"{self.extra}, over-counted {self.over}, under-counted {self.under}")


async def documents(settings: config.Settings, kind: str, pipeline: str) -> list[dict[str, Any]]:
    """Every document of ``kind`` (events, metrics, anomalies) of ``pipeline``."""
    from elasticsearch import AsyncElasticsearch
    from elasticsearch.helpers import async_scan

    index = f"{settings.index_prefix}-{kind}-{pipeline}*"
    async with AsyncElasticsearch(settings.es_url, request_timeout=120) as es:
        await es.indices.refresh(index=index, allow_no_indices=True)
        return [h["_source"] async for h in async_scan(es, index=index, size=5000,
                                                       allow_no_indices=True)]


def _window_table(docs: list[dict[str, Any]]) -> dict[tuple, tuple]:
    return {(d["window"]["name"], d["window"]["start"], tuple(sorted(d["key"].items()))):
            tuple(d[f] for f in WINDOW_FIELDS) for d in docs}


async def window_audit(settings: config.Settings, pipeline: Any) -> WindowAudit:
    """The window documents of ``pipeline`` (a ``Pipeline``) against
    ``streams.windows.batch_recompute`` over its indexed events."""
    from streams.windows import batch_recompute

    events = await documents(settings, "events", pipeline.name)
    docs = await documents(settings, "metrics", pipeline.name)
    want = _window_table(batch_recompute(events, pipeline.windows, pipeline=pipeline.name))
    got = _window_table(docs)
    out = WindowAudit(expected=len(want), documents=len(docs),
                      missing=len(set(want) - set(got)), extra=len(set(got) - set(want)))
    for k in set(want) & set(got):
        if got[k] != want[k]:
            if got[k][0] > want[k][0]:
                out.over += 1
            else:
                out.under += 1
    return out
