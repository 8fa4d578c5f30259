"""The template store of a worker: one miner per raw-topic partition, persisted through a
changelog-backed Faust table and indexed as template documents.

- Ids derive from the template text (``streams.templates.template_id``), so they are the same
  on every worker and after a restart whatever the miner's history; the table keeps what was
  learnt (counts, generalizations) across restarts and rebalances.
- Bounded: each miner holds at most ``Pipeline.max_templates`` templates and evicts the least
  recently matched (see ``streams.templates``); first/last-seen times are kept only for
  templates the miner still holds.
- Every ``interval`` seconds, partitions whose miner changed are snapshotted to the table
  (written to the changelog partition of the raw partition, acknowledged) and
  their templates are indexed as ``templates`` documents (id ``<template id>-p<partition>``,
  operation ``index``: updated in place; a template's total is the sum over partitions).
  A crash loses at most ``interval`` seconds of learning; ids do not change.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import faust
import orjson

from streams.sinks.elasticsearch import Action
from streams.sinks.outputs import Outputs
from streams.templates import TemplateMiner
from streams.transport.records import now_rfc3339
from streams.transport.state import TableState

if TYPE_CHECKING:  # the pipeline declares what this stage runs; it imports no stage back
    from streams.pipeline import Event, Pipeline

log = logging.getLogger(__name__)


class TemplateStore:
    def __init__(self, app: faust.App, pipeline: Pipeline, outputs: Outputs,
                 *, source_topic: str, interval: float = 30.0) -> None:
        self.pipeline = pipeline
        self.outputs = outputs
        self.source_topic = source_topic
        self.table = app.Table(f"templates-{pipeline.name}", partitions=pipeline.partitions,
                               key_type=bytes, value_type=bytes)
        self.state = TableState(self.table)
        self.miners: dict[int, TemplateMiner] = {}
        self.seen: dict[int, dict[str, list[Any]]] = {}  # partition -> id -> [first, last, example, previous]
        self.dirty: set[int] = set()
        app.timer(interval=interval)(self.persist)
        app.on_partitions_revoked.connect(self._on_revoked)
        app.on_before_shutdown.connect(self._on_shutdown)

    def miner(self, partition: int) -> TemplateMiner | None:
        if not self.pipeline.mine_templates:
            return None
        miner = self.miners.get(partition)
        if miner is None:
            try:
                raw = self.state.load(_key(partition))
                if raw:
                    miner = TemplateMiner.restore(orjson.loads(raw))
            except (ValueError, KeyError) as exc:
                log.warning("templates: cannot restore partition %d (%s); starting empty", partition, exc)
            self.miners[partition] = miner = miner or self.pipeline.new_miner()  # type: ignore[assignment]
            self.seen[partition] = {}
        return miner

    def observe(self, partition: int, events: list[Event]) -> None:
        """Track first/last seen and an example for the templates of these events."""
        seen = self.seen.setdefault(partition, {})
        for ev in events:
            log_ = ev.get("log") or {}
            tid = log_.get("template_id")
            if not tid:
                continue
            ts = ev.get("@timestamp")
            entry = seen.get(tid)
            if entry is None:
                seen[tid] = [ts, ts, ev.get("message", "")[:1024], None]
            elif ts and ts > (entry[1] or ""):
                entry[1] = ts
        self.dirty.add(partition)

    def changed(self, partition: int, old_id: str, new_id: str) -> None:
        entry = self.seen.get(partition, {}).get(new_id)
        if entry is not None:
            entry[3] = old_id

    async def persist(self) -> None:
        sink, caps = self.outputs.sink, self.outputs.caps
        for p in sorted(self.dirty):
            miner = self.miners.get(p)
            if miner is None:
                continue
            # acknowledged before the documents are indexed: what Elasticsearch shows is
            # never newer than what a restarted worker resumes from
            await self.state.save(p, _key(p), orjson.dumps(miner.snapshot()))
            if sink is None or caps is None:
                continue
            held = {tid: (text, count) for tid, text, count in miner.templates()}
            seen = self.seen.get(p, {})
            for tid in [t for t in seen if t not in held]:
                del seen[tid]  # evicted by the miner: keep the bookkeeping bounded too
            docs = []
            for tid, (first, last, example, previous) in seen.items():
                text, count = held[tid]
                doc = {"@timestamp": last or now_rfc3339(), "template_id": tid, "template": text,
                       "first_seen": first, "last_seen": last, "count": count,
                       "example": example, "logriver": {"pipeline": self.pipeline.name}}
                if previous:
                    doc["previous_id"] = previous
                docs.append(Action(caps.index_for("templates", self.pipeline.name, doc["@timestamp"]),
                                   f"{tid}-p{p}", doc, op="index"))
            if docs:
                await sink.write(docs)
        self.dirty.clear()

    async def _on_shutdown(self, sender: Any, **kwargs: Any) -> None:
        """A clean stop persists what was learnt since the last interval."""
        try:
            await self.persist()
        except Exception as exc:  # noqa: BLE001 - shutting down; the interval's loss is bounded
            log.warning("templates: final persist failed (%s)", exc)

    async def _on_revoked(self, sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        for tp in revoked:
            if tp.topic == self.source_topic:
                self.miners.pop(tp.partition, None)
                self.seen.pop(tp.partition, None)
                self.dirty.discard(tp.partition)


def _key(partition: int) -> bytes:
    return f"{partition}".encode()
