"""The Faust worker that runs a pipeline over the raw topic.

One agent per pipeline consumes ``logs.raw`` in parallel partitions (N workers share one
consumer group). For each buffer of Kafka messages it structures the records, indexes the
events into Elasticsearch, publishes them on ``logs.structured`` and dead-letters what cannot
be processed. Faust acks a buffer's messages only after the loop body returned, i.e. after
Elasticsearch acknowledged (or dead-lettered) every document, and flushes the producer before
each commit: offsets never run ahead of what is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from typing import Any

import faust
import orjson
from elasticsearch import AsyncElasticsearch, OrjsonSerializer

from schemas import elasticsearch as es_schema
from streams import config
from streams.deadletter import DeadLetter, dead_letter
from streams.kafka import COMPRESSION, BatchPublisher
from streams.pipeline import Pipeline, Structured
from streams.records import BatchDecodeError, decode_batch
from streams.security import ElasticsearchSecurity, KafkaSecurity
from streams.sinks.elasticsearch import Action, ElasticsearchSink
from streams.stats import WorkerStats
from streams.template_store import TemplateStore
from streams.window_worker import WindowWorker, window_topic_name

log = logging.getLogger(__name__)

TAKE_MAX = 500
# Raw bytes structured at once: a buffer of up to TAKE_MAX messages of up to
# MAX_MESSAGE_BYTES (a collector catching up sends full ones) is processed in slices of
# about this much, so the worker's memory does not grow with the backlog (events, their
# JSON and the bulk bodies take about 20x the raw bytes).
SLICE_BYTES = 4 * 1024 * 1024
MAX_MESSAGE_BYTES = 900 * 1024  # what we publish per message (a default broker takes ~1 MB)
TAKE_WITHIN = 0.25
PROCESS_ATTEMPTS = 3


def group_id(pipeline: Pipeline, settings: config.Settings) -> str:
    return f"{settings.topic_prefix}logriver-{pipeline.name}"


def build_app(
    pipeline: Pipeline, settings: config.Settings, *, web_port: int | None = None,
    metrics_port: int | None = None, metrics_host: str = "127.0.0.1",
) -> faust.App:
    brokers = ";".join(f"kafka://{b.strip()}" for b in settings.kafka_bootstrap.split(","))
    state = settings.state_dir / "faust" / group_id(pipeline, settings)
    state.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        group_id(pipeline, settings),
        broker=brokers,
        store="memory://",
        datadir=str(state),
        topic_partitions=pipeline.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_compression_type=COMPRESSION,
        producer_max_request_size=MAX_MESSAGE_BYTES * 2,
        broker_commit_interval=1.0,
        broker_credentials=KafkaSecurity.from_env().faust_credentials(),
        # A crashed worker's partitions move to the others after this, not after 60 s.
        broker_session_timeout=15.0,
        broker_heartbeat_interval=3.0,
        web_enabled=web_port is not None,
        web_port=web_port or 6066,
        web_host="127.0.0.1",
        value_serializer="raw",
        key_serializer="raw",
    )

    def topic(name: str) -> faust.TopicT:
        return app.topic(settings.topic(name), value_type=bytes, key_type=bytes,
                         value_serializer="raw", key_serializer="raw")

    raw_topic = topic(pipeline.source_topic)
    structured_topic = topic(config.STRUCTURED)
    deadletter_topic = topic(config.DEADLETTER)
    templates_topic = topic(config.TEMPLATES)
    runtime: dict[str, Any] = {}
    stats = WorkerStats(pipeline=pipeline.name)
    if metrics_port is not None:
        from streams.observability import start_metrics_server

        runtime["metrics"] = start_metrics_server(stats, host=metrics_host, port=metrics_port)

    async def send_dead_letters(letters: list[DeadLetter]) -> None:
        stats.dead_lettered(letters)
        # every caller runs after setup() (the agents await it first): the publisher exists
        await runtime["publisher"].publish(
            [((dl.get("event_id") or dl["stage"]).encode(), fit_message(dl, "original"))
             for dl in letters],
            deadletter_topic.get_topic_name())

    setup_lock = asyncio.Lock()

    async def setup() -> None:
        """Connect the sinks (once; every agent awaits it before its first buffer)."""
        async with setup_lock:
            if "caps" not in runtime:
                await _setup()

    async def _setup() -> None:
        # logs.structured, the window topic, dead letters, metrics and anomalies: one produce
        # request per partition and buffer (Faust's per-message send costs more than
        # structuring).
        publisher = BatchPublisher(settings.kafka_bootstrap, structured_topic.get_topic_name())
        await publisher.start()
        runtime["publisher"] = publisher
        client = AsyncElasticsearch(
            settings.es_url, request_timeout=60, max_retries=0,
            serializer=OrjsonSerializer(),  # bulk responses: one item per document to parse
            **ElasticsearchSecurity.from_env().elasticsearch_kwargs(settings.es_url),
        )
        delay = 0.5
        while True:  # Elasticsearch may be down at start: wait for it, never crash
            try:
                caps = await es_schema.install(client, settings.index_prefix)
                break
            except Exception as exc:  # noqa: BLE001 - logged, retried
                log.warning("elasticsearch: cannot install templates yet (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        runtime["client"] = client
        runtime["sink"] = ElasticsearchSink(
            client, dead_letter_fn=send_dead_letters, pipeline=pipeline.name,
            on_health=lambda ok: setattr(stats, "elasticsearch_ok", ok),
            on_bulk=stats.bulk_seconds.append,
        )
        runtime["caps"] = caps

    @app.agent(raw_topic, name=f"structure-{pipeline.name}")
    async def structure(stream: faust.StreamT) -> None:
        await setup()
        async for events in stream.take_events(TAKE_MAX, within=TAKE_WITHIN):
            for part in slices(events, SLICE_BYTES):
                await _process_safely(part)

    async def _process_safely(fevents: list[faust.EventT]) -> None:
        """Faust acks a buffer even when the body raises, so the body must not raise: an
        unexpected error is retried a few times, then the buffer's raw messages are
        dead-lettered with the reason (nothing is lost)."""
        for attempt in range(1, PROCESS_ATTEMPTS + 1):
            try:
                await _process(fevents)
                return
            except Exception as exc:
                log.exception("processing a buffer failed (attempt %d)", attempt)
                error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.5 * attempt)
        await send_dead_letters([
            dead_letter("structure", "internal_error", fe.value, detail=error,
                        pipeline=pipeline.name, topic=fe.message.topic,
                        partition=fe.message.partition, offset=fe.message.offset)
            for fe in fevents
        ])

    templates = TemplateStore(app, pipeline, runtime, source_topic=raw_topic.get_topic_name(),
                              interval=settings.persist_seconds)
    windows = (
        WindowWorker(app, pipeline, settings, runtime=runtime, stats=stats,
                     send_dead_letters=send_dead_letters, topic=topic, ready=setup,
                     max_message_bytes=MAX_MESSAGE_BYTES)
        if pipeline.windows else None
    )

    async def _process(fevents: list[faust.EventT]) -> None:
        letters: list[DeadLetter] = []
        by_partition: dict[int, list[dict[str, Any]]] = {}
        positions: dict[str, list[int]] = {}
        for fe in fevents:
            msg = fe.message
            ps = stats.partition(msg.topic, msg.partition)
            ps.last_offset = msg.offset
            with contextlib.suppress(Exception):  # best effort (rebalancing)
                ps.high_watermark = app.consumer.highwater(msg.tp)
            try:
                batch = decode_batch(fe.value)
                ps.records_in += len(batch)
                by_partition.setdefault(msg.partition, []).extend(batch)
                # position in the raw topic, and the source stream (the message key: one
                # container stream) whose event-time progress the window stage tracks
                if windows is not None:
                    stream = zlib.crc32(msg.key or b"")
                    for i, rec in enumerate(batch):
                        positions[rec["id"]] = [msg.partition, msg.offset, i, stream]
            except BatchDecodeError as exc:
                letters.append(
                    dead_letter("decode", "bad_raw_message", fe.value, detail=str(exc),
                                pipeline=pipeline.name, topic=msg.topic,
                                partition=msg.partition, offset=msg.offset)
                )
        # One template miner per raw partition (its state is co-partitioned in a table).
        result = Structured()
        for partition, records in by_partition.items():
            stats.lines_in["structure"] += len(records)
            part = pipeline.structure(records, templates.miner(partition))
            templates.observe(partition, part.events)
            for change in part.template_changes:
                templates.changed(partition, change["old_id"], change["new_id"])
            result.events += part.events
            result.dead_letters += part.dead_letters
            result.template_changes += part.template_changes
        stats.lines_out["structure"] += len(result.events)
        letters.extend(result.dead_letters)
        if letters:
            await send_dead_letters(letters)
        # Each event is encoded once, for Elasticsearch and for logs.structured.
        encoded = [orjson.dumps(ev, option=orjson.OPT_NON_STR_KEYS) for ev in result.events] \
            if (pipeline.index_events or pipeline.publish_structured) else []
        if pipeline.index_events and result.events:
            caps = runtime["caps"]
            sink = runtime["sink"]
            before = sink.stats.indexed + sink.stats.duplicates
            await sink.write(
                Action(caps.index_for("events", pipeline.name, ev["@timestamp"]), ev["event"]["id"],
                       ev, source=source)
                for ev, source in zip(result.events, encoded)
            )
            stats.lines_in["index"] += len(result.events)
            stats.lines_out["index"] += sink.stats.indexed + sink.stats.duplicates - before
        if pipeline.publish_structured and result.events:
            # Acknowledged before the buffer is acked.
            await runtime["publisher"].publish(
                [(ev["event"]["id"].encode(), fit_message(ev, "message", encoded=source))
                 for ev, source in zip(result.events, encoded)]
            )
        if windows is not None and result.events:
            too_large = await windows.send_window_input(result.events, positions)
            if too_large:
                await send_dead_letters(too_large)
        for change in result.template_changes:
            await templates_topic.send(key=change["new_id"].encode(),
                                       value=orjson.dumps({"type": "change", **change}))
        stats.last_progress = time.time()

    @app.timer(interval=30.0)
    async def report() -> None:
        sink = runtime.get("sink")
        if sink:
            s = sink.stats
            log.info("indexed=%d duplicates=%d dead_lettered=%d retried=%d bulks=%d",
                     s.indexed, s.duplicates, s.dead_lettered, s.retried_items, s.bulk_requests)

    if web_port is not None:
        from streams.console import install_console

        install_console(app, stats, es_url=settings.es_url, kafka_bootstrap=settings.kafka_bootstrap)
    app.logriver_runtime = runtime  # type: ignore[attr-defined]
    app.logriver_stats = stats  # type: ignore[attr-defined]
    return app


def slices(fevents: list[faust.EventT], limit: int) -> list[list[faust.EventT]]:
    """``fevents`` in order, cut into runs of at most ``limit`` bytes of message values (a
    larger message alone)."""
    out: list[list[faust.EventT]] = []
    run: list[faust.EventT] = []
    size = 0
    for fe in fevents:
        n = len(fe.value or b"")
        if run and size + n > limit:
            out.append(run)
            run, size = [], 0
        run.append(fe)
        size += n
    if run:
        out.append(run)
    return out


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


def run_worker(pipeline: Pipeline, settings: config.Settings, *, web_port: int | None = None,
               loglevel: str = "warning", metrics_port: int | None = None,
               metrics_host: str = "127.0.0.1") -> None:
    """Run the worker until SIGTERM/SIGINT (blocking)."""
    from streams.kafka import ensure_topics

    topics = [settings.topic(t) for t in (pipeline.source_topic, *config.ALL_TOPICS)]
    if pipeline.windows:
        topics.append(settings.topic(window_topic_name(pipeline)))
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(
            ensure_topics(settings.kafka_bootstrap, topics, partitions=pipeline.partitions)
        )
    finally:
        loop.close()
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = build_app(pipeline, settings, web_port=web_port, metrics_port=metrics_port,
                    metrics_host=metrics_host)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
