"""Where a worker's results go: Elasticsearch (events, metrics, anomalies, templates), the
output topics (one batch publisher) and the dead letters.

``Outputs.ready()`` connects everything once (every agent awaits it before its first buffer):
the publisher, the Elasticsearch client and the index templates, waiting for Elasticsearch
while it is down rather than crashing. Each write returns once the broker or Elasticsearch
acknowledged it (or the document went to the dead letters), so callers ack their input after.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import orjson
from elasticsearch import AsyncElasticsearch, OrjsonSerializer

from schemas import elasticsearch as es_schema
from streams.ops import config
from streams.ops.security import ElasticsearchSecurity
from streams.ops.stats import WorkerStats
from streams.sinks.elasticsearch import Action, ElasticsearchSink
from streams.transport.deadletter import DeadLetter
from streams.transport.kafka import BatchPublisher

log = logging.getLogger(__name__)

# What we publish per message (a default broker takes about 1 MB).
MAX_MESSAGE_BYTES = 900 * 1024


class Outputs:
    def __init__(self, settings: config.Settings, pipeline_name: str, stats: WorkerStats) -> None:
        self.settings = settings
        self.pipeline_name = pipeline_name
        self.stats = stats
        self.structured_topic = settings.topic(config.STRUCTURED)
        self.deadletter_topic = settings.topic(config.DEADLETTER)
        self.publisher: BatchPublisher | None = None
        self.client: AsyncElasticsearch | None = None
        self.sink: ElasticsearchSink | None = None
        self.caps: es_schema.Capabilities | None = None
        self._lock = asyncio.Lock()

    async def ready(self) -> None:
        """Connect the sinks (once; later calls return at once)."""
        async with self._lock:
            if self.caps is None:
                await self._connect()

    async def _connect(self) -> None:
        publisher = BatchPublisher(self.settings.kafka_bootstrap, self.structured_topic)
        await publisher.start()
        self.publisher = publisher
        es_url = self.settings.es_url
        client = AsyncElasticsearch(
            es_url, request_timeout=60, max_retries=0,
            serializer=OrjsonSerializer(),  # bulk responses: one item per document to parse
            **ElasticsearchSecurity.from_env().elasticsearch_kwargs(es_url),
        )
        delay = 0.5
        while True:  # Elasticsearch may be down at start: wait for it, never crash
            try:
                caps = await es_schema.install(client, self.settings.index_prefix)
                break
            except Exception as exc:  # noqa: BLE001 - logged, retried
                log.warning("elasticsearch: cannot install templates yet (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        self.client = client
        self.sink = ElasticsearchSink(
            client, dead_letter_fn=self.dead_letters, pipeline=self.pipeline_name,
            on_health=lambda ok: setattr(self.stats, "elasticsearch_ok", ok),
            on_bulk=self.stats.bulk_seconds.append,
        )
        self.caps = caps

    async def dead_letters(self, letters: list[DeadLetter]) -> None:
        """Publish dead letters (acknowledged when this returns)."""
        if not letters:
            return
        self.stats.dead_lettered(letters)
        assert self.publisher is not None, "Outputs.ready() first"
        await self.publisher.publish(
            [((dl.get("event_id") or dl["stage"]).encode(), fit_message(dl, "original"))
             for dl in letters],
            self.deadletter_topic)

    async def publish(self, items: list[tuple[bytes, bytes]], topic: str | None = None) -> None:
        """Publish keyed messages on ``topic`` (default ``logs.structured``), acknowledged."""
        assert self.publisher is not None, "Outputs.ready() first"
        await self.publisher.publish(items, topic)

    async def partitions_of(self, topic: str) -> list[int]:
        assert self.publisher is not None, "Outputs.ready() first"
        return await self.publisher.partitions_of(topic)

    async def index(self, actions: Iterable[Action]) -> None:
        assert self.sink is not None, "Outputs.ready() first"
        await self.sink.write(actions)

    def index_for(self, kind: str, timestamp: str | None) -> str:
        """The index of a ``kind`` document (events, metrics, anomalies, templates) at ``timestamp``."""
        assert self.caps is not None, "Outputs.ready() first"
        return self.caps.index_for(kind, self.pipeline_name, timestamp)

    def op_type(self, kind: str) -> str:
        assert self.caps is not None, "Outputs.ready() first"
        return self.caps.op_type(kind)


def encode_events(events: list[dict[str, Any]]) -> list[bytes]:
    """Each event's JSON. Keys are strings (parsed JSON, the pipeline's fields) unless a step
    added others: then the buffer is encoded again with non-string keys allowed (the same
    bytes for string keys; orjson is a third slower with that option on)."""
    dumps = orjson.dumps
    try:
        return [dumps(ev) for ev in events]
    except TypeError:
        return [dumps(ev, option=orjson.OPT_NON_STR_KEYS) for ev in events]


def fit_message(doc: dict[str, Any], field: str, limit: int = MAX_MESSAGE_BYTES, *,
                encoded: bytes | None = None) -> bytes:
    """Encode ``doc`` for a topic; when it is larger than ``limit`` (a default broker takes
    about 1 MB), cut the text of ``field`` and say so in ``logriver.topic_truncated`` (the whole
    document is in Elasticsearch, the whole input in the raw topic). ``encoded``: ``doc``'s
    JSON when the caller has it already."""
    value = encoded if encoded is not None else orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)
    if len(value) <= limit or not isinstance(doc.get(field), str):
        return value
    text: str = doc[field]
    keep = max(0, len(text) - (len(value) - limit) - 1024)
    cut = {**doc, field: text[:keep]}
    meta = dict(cut.get("logriver") or {}) if isinstance(cut.get("logriver"), dict) else {}
    meta["topic_truncated"] = {"field": field, "original_chars": len(text)}
    if "logriver" in doc or field == "message":
        cut["logriver"] = meta
    else:
        cut["original_truncated"] = meta["topic_truncated"]
    return orjson.dumps(cut, option=orjson.OPT_NON_STR_KEYS)
