"""The structure agent: one per pipeline, over the raw topic's partitions.

For each buffer of raw messages: decode the record batches, structure them (one template
miner per raw partition), then dead-letter what failed, index the events into Elasticsearch,
publish them on ``logs.structured``, send their window input and the template changes. A
slice is marked processed (``WorkerApp.processed``) after every output was acknowledged or it
was dead-lettered, and offsets are committed only as far as that (``streams.worker.consumer``:
Faust's own acks are not enough); the body never raises (a failing buffer is retried, then its
raw messages are dead-lettered with the reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson

from streams.ops import config
from streams.ops.stats import WorkerStats
from streams.pipeline import Event, Pipeline, Structured
from streams.sinks.outputs import MAX_MESSAGE_BYTES, Outputs, encode_events, fit_message
from streams.templates.store import TemplateStore
from streams.transport.deadletter import DeadLetter, dead_letter
from streams.transport.records import BatchDecodeError, Record, decode_batch
from streams.windows.agent import WindowWorker
from streams.windows.rows import origin_of
from streams.worker.buffers import SLICE_BYTES, TAKE_MAX, TAKE_WITHIN, slices
from streams.worker.consumer import WorkerApp

log = logging.getLogger(__name__)

PROCESS_ATTEMPTS = 3


@dataclass
class Decoded:
    """A buffer's raw records by raw partition, their raw positions (for the window stage)
    and the messages that could not be decoded."""

    by_partition: dict[int, list[Record]] = field(default_factory=dict)
    positions: dict[str, list[int]] = field(default_factory=dict)
    letters: list[DeadLetter] = field(default_factory=list)


class StructureAgent:
    def __init__(self, app: faust.App, pipeline: Pipeline, raw_topic: faust.TopicT, *,
                 outputs: Outputs, stats: WorkerStats, templates: TemplateStore,
                 windows: WindowWorker | None, settings: config.Settings) -> None:
        self.app = app
        self.pipeline = pipeline
        self.outputs = outputs
        self.stats = stats
        self.templates = templates
        self.windows = windows
        self.templates_topic = settings.topic(config.TEMPLATES)
        app.agent(raw_topic, name=f"structure-{pipeline.name}")(self._agent)

    async def _agent(self, stream: faust.StreamT) -> None:
        await self.outputs.ready()
        guarded = self.app if isinstance(self.app, WorkerApp) else None  # commits follow it
        async for events in stream.take_events(TAKE_MAX, within=TAKE_WITHIN):
            for part in slices(events, SLICE_BYTES):
                await self.process_safely(part)
                if guarded is not None:
                    guarded.processed(part)

    async def process_safely(self, fevents: list[faust.EventT]) -> None:
        """Faust acks a buffer even when the body raises, so the body must not raise: an
        unexpected error is retried a few times, then the buffer's raw messages are
        dead-lettered with the reason (nothing is lost)."""
        error = ""
        for attempt in range(1, PROCESS_ATTEMPTS + 1):
            try:
                await self.process(fevents)
                return
            except Exception as exc:
                log.exception("processing a buffer failed (attempt %d)", attempt)
                error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.5 * attempt)
        await self.outputs.dead_letters([
            dead_letter("structure", "internal_error", fe.value, detail=error,
                        pipeline=self.pipeline.name, topic=fe.message.topic,
                        partition=fe.message.partition, offset=fe.message.offset)
            for fe in fevents
        ])

    async def process(self, fevents: list[faust.EventT]) -> None:
        decoded = self.decode(fevents)
        result = self.structure(decoded.by_partition)
        await self.outputs.dead_letters(decoded.letters + result.dead_letters)
        events = result.events
        if events:
            # Each event is encoded once, for Elasticsearch and for logs.structured.
            encoded = encode_events(events) \
                if (self.pipeline.index_events or self.pipeline.publish_structured) else []
            await self.index(events, encoded)
            await self.publish(events, encoded)
            if self.windows is not None:
                aliases = {c["alias_id"]: c["template_id"] for c in result.template_changes
                           if c["type"] == "alias"}
                if aliases:  # before the rows that already count the merged template as one
                    await self.windows.send_aliases(aliases)
                await self.outputs.dead_letters(
                    await self.windows.send_window_input(events, decoded.positions))
        await self.publish_template_changes(result.template_changes)
        # template births, new texts and merges are written down before this buffer is acked:
        # the ids its events were indexed with are the ids a restarted worker gives again
        await self.templates.journal(decoded.by_partition)
        self.stats.progressed()

    def decode(self, fevents: list[faust.EventT]) -> Decoded:
        out = Decoded()
        for fe in fevents:
            msg = fe.message
            ps = self.stats.partition(msg.topic, msg.partition)
            ps.last_offset = msg.offset
            with contextlib.suppress(Exception):  # best effort (rebalancing)
                ps.high_watermark = self.app.consumer.highwater(msg.tp)
            try:
                batch = decode_batch(fe.value)
            except BatchDecodeError as exc:
                out.letters.append(
                    dead_letter("decode", "bad_raw_message", fe.value, detail=str(exc),
                                pipeline=self.pipeline.name, topic=msg.topic,
                                partition=msg.partition, offset=msg.offset))
                continue
            ps.records_in += len(batch)
            out.by_partition.setdefault(msg.partition, []).extend(batch)
            # position in the raw topic, the source stream (the message key: one container
            # stream) whose event-time progress the window stage tracks, and the line's
            # position in its file. A line the node agent published twice (read again from
            # its checkpoint) can come twice in one buffer: it keeps its first position (the
            # window agent counts the copy once; with the copy's, the rows between the two
            # would come after a later position and be skipped as re-delivered).
            if self.windows is not None:
                stream = zlib.crc32(msg.key or b"")
                positions = out.positions
                for i, rec in enumerate(batch):
                    if rec["id"] not in positions:
                        positions[rec["id"]] = [msg.partition, msg.offset, i, stream,
                                                *origin_of(rec)]
        return out

    def structure(self, by_partition: dict[int, list[Record]]) -> Structured:
        """Structure each raw partition's records with that partition's template miner (its
        state is co-partitioned in a table)."""
        result = Structured()
        for partition, records in by_partition.items():
            self.stats.lines_in["structure"] += len(records)
            part = self.pipeline.structure(records, self.templates.miner(partition))
            self.templates.observe(partition, part.events)
            for change in part.template_changes:
                self.templates.changed(partition, change)
            result.events += part.events
            result.dead_letters += part.dead_letters
            result.template_changes += part.template_changes
        self.stats.lines_out["structure"] += len(result.events)
        return result

    async def index(self, events: list[Event], encoded: list[bytes]) -> None:
        if not self.pipeline.index_events:
            return
        sink = self.outputs.sink
        assert sink is not None
        before = sink.stats.indexed + sink.stats.duplicates
        index_for = self.outputs.index_for
        await sink.write_encoded([index_for("events", ev["@timestamp"]) for ev in events],
                                 [ev["event"]["id"] for ev in events], encoded, events)
        self.stats.lines_in["index"] += len(events)
        self.stats.lines_out["index"] += sink.stats.indexed + sink.stats.duplicates - before

    async def publish(self, events: list[Event], encoded: list[bytes]) -> None:
        if not self.pipeline.publish_structured:
            return
        limit = MAX_MESSAGE_BYTES
        await self.outputs.publish(
            [(ev["event"]["id"].encode(),
              source if len(source) <= limit else fit_message(ev, "message", encoded=source))
             for ev, source in zip(events, encoded)])

    async def publish_template_changes(self, changes: list[dict[str, Any]]) -> None:
        """Key: the id whose state the message tells (the merged id for an alias)."""
        if changes:
            await self.outputs.publish(
                [((c.get("alias_id") or c["template_id"]).encode(), orjson.dumps(c)) for c in changes],
                self.templates_topic)
