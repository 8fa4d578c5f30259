"""The Faust worker of a pipeline: the app assembled from its parts.

``build_app`` names the parts and delegates: the Faust app and the raw topic, the outputs
(Elasticsearch, output topics, dead letters), the template store, the window agent, the
structure agent, and the timers. ``run_worker`` creates the topics and runs the app until
SIGTERM/SIGINT. N workers share one consumer group and split the raw topic's partitions.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import faust

from streams.ops import config
from streams.ops.security import KafkaSecurity
from streams.ops.stats import WorkerStats
from streams.pipeline import Pipeline
from streams.sinks.outputs import MAX_MESSAGE_BYTES, Outputs
from streams.templates.store import TemplateStore
from streams.transport.kafka import COMPRESSION, ensure_topics
from streams.windows.agent import WindowWorker
from streams.windows.rows import window_topic_name
from streams.worker.consumer import WorkerApp
from streams.worker.structure import StructureAgent

log = logging.getLogger(__name__)


@dataclass
class Worker:
    """The parts of a worker, for the CLI (console, metrics) and tests."""

    app: WorkerApp
    stats: WorkerStats
    outputs: Outputs
    structure: StructureAgent
    templates: TemplateStore
    windows: WindowWorker | None


def group_id(pipeline: Pipeline, settings: config.Settings) -> str:
    return f"{settings.topic_prefix}logriver-{pipeline.name}"


def new_app(pipeline: Pipeline, settings: config.Settings, *, web_port: int | None = None) -> WorkerApp:
    """The Faust app: in-memory tables rebuilt from their changelogs, acks=all, commits
    every second (of what the agents processed: ``streams.worker.consumer``), a crashed
    worker's partitions moved after 15 s."""
    brokers = ";".join(f"kafka://{b.strip()}" for b in settings.kafka_bootstrap.split(","))
    state = settings.state_dir / "faust" / group_id(pipeline, settings)
    state.mkdir(parents=True, exist_ok=True)
    return WorkerApp(
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
        broker_session_timeout=15.0,
        broker_heartbeat_interval=3.0,
        web_enabled=web_port is not None,
        web_port=web_port or 6066,
        web_host="127.0.0.1",
        value_serializer="raw",
        key_serializer="raw",
    )


def raw_topic(app: faust.App, pipeline: Pipeline, settings: config.Settings) -> faust.TopicT:
    return app.topic(settings.topic(pipeline.source_topic), value_type=bytes, key_type=bytes,
                     value_serializer="raw", key_serializer="raw")


def build_app(pipeline: Pipeline, settings: config.Settings, *, web_port: int | None = None,
              metrics_port: int | None = None, metrics_host: str = "127.0.0.1") -> Worker:
    app = new_app(pipeline, settings, web_port=web_port)
    stats = WorkerStats(pipeline=pipeline.name)
    outputs = Outputs(settings, pipeline.name, stats)
    source = raw_topic(app, pipeline, settings)
    templates = TemplateStore(app, pipeline, outputs, source_topic=source.get_topic_name(),
                              templates_topic=settings.topic(config.TEMPLATES),
                              interval=settings.persist_seconds)
    windows = WindowWorker(app, pipeline, settings, outputs=outputs, stats=stats,
                           on_processed=app.processed) if pipeline.windows else None
    structure = StructureAgent(app, pipeline, source, outputs=outputs, stats=stats,
                               templates=templates, windows=windows, settings=settings)
    # Offsets of the agents' inputs are committed only as far as the agents processed them.
    for topic in [source] + ([windows.input] if windows else []):
        app.guard(topic.get_topic_name())
    app.timer(interval=30.0, name="report")(lambda: _report(outputs))
    if metrics_port is not None:
        from streams.ops.metrics import start_metrics_server

        start_metrics_server(stats, host=metrics_host, port=metrics_port)
    return Worker(app, stats, outputs, structure, templates, windows)


async def _report(outputs: Outputs) -> None:
    if outputs.sink is not None:
        s = outputs.sink.stats
        log.info("indexed=%d duplicates=%d dead_lettered=%d retried=%d bulks=%d",
                 s.indexed, s.duplicates, s.dead_lettered, s.retried_items, s.bulk_requests)


def worker_topics(pipeline: Pipeline, settings: config.Settings) -> list[str]:
    """Every topic a worker of ``pipeline`` reads or writes."""
    topics = [settings.topic(t) for t in (pipeline.source_topic, *config.ALL_TOPICS)]
    if pipeline.windows:
        topics.append(settings.topic(window_topic_name(pipeline.name)))
    return topics


def create_topics(pipeline: Pipeline, settings: config.Settings) -> None:
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(ensure_topics(settings.kafka_bootstrap,
                                              worker_topics(pipeline, settings),
                                              partitions=pipeline.partitions))
    finally:
        loop.close()


def run_worker(worker: Worker, *, loglevel: str = "warning") -> None:
    """Run ``worker`` until SIGTERM/SIGINT (blocking); call ``create_topics`` first."""
    faust.Worker(worker.app, loglevel=loglevel, quiet=True).execute_from_commandline()
