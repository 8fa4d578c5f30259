"""The template store of a worker: one miner per raw-topic partition, persisted through a
changelog-backed Faust table, published as the template catalog.

- Ids are given at birth and never change (``streams.templates.identity``). What a miner
  learnt survives restarts and rebalances: its snapshot is written to the table every
  ``interval`` seconds, and between two snapshots every birth, new text and merge is written
  down as a small *journal* entry (``journal``) before the buffer whose events show it is
  acknowledged. A restarted worker restores the snapshot and replays the journal, so every id
  it gave out is the id it gives again, even after a SIGKILL. (Counts of the last interval
  can be lost; ids cannot.)
- Bounded: each miner holds at most ``Pipeline.max_templates`` templates and evicts the least
  recently matched (see ``streams.templates``); first/last-seen times are kept only for
  templates the miner still holds.
- Every ``interval`` seconds, templates of this worker's partitions that have the same text
  under different ids (one statement born from different first messages on two partitions)
  become one (``consolidate``): the smallest id survives, the others become its aliases.
- Every ``interval`` seconds, the templates that saw events (and the merges) are written to
  the catalog: Elasticsearch index ``<prefix>-templates-<pipeline>`` (one document per template
  and partition, id ``<template id>-p<partition>``, updated in place: a template's total is the
  sum over partitions) and topic ``logs.templates`` (type ``template``). A merged id's
  document says ``alias_of`` (its survivor's document lists it in ``aliases`` and counts its
  events).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import faust
import orjson

from streams.sinks.elasticsearch import Action
from streams.sinks.outputs import Outputs
from streams.templates.miner import TemplateMiner
from streams.transport.records import now_rfc3339
from streams.transport.state import TableState, save_state

if TYPE_CHECKING:  # the pipeline declares what this stage runs; it imports no stage back
    from streams.pipeline import Event, Pipeline

log = logging.getLogger(__name__)

_EXAMPLE_CHARS = 1024


class TemplateStore:
    def __init__(self, app: faust.App, pipeline: Pipeline, outputs: Outputs,
                 *, source_topic: str, templates_topic: str | None = None,
                 interval: float = 30.0) -> None:
        self.pipeline = pipeline
        self.outputs = outputs
        self.source_topic = source_topic
        self.templates_topic = templates_topic
        self.table = app.Table(f"templates-{pipeline.name}", partitions=pipeline.partitions,
                               key_type=bytes, value_type=bytes)
        self.state = TableState(self.table)
        self.miners: dict[int, TemplateMiner] = {}
        # partition -> template id -> [first seen, last seen, example, changed since persisted]
        self.seen: dict[int, dict[str, list[Any]]] = {}
        # partition -> merged id -> (surviving id, time) not yet written to the catalog
        self.merged: dict[int, dict[str, tuple[str, str]]] = {}
        self.journal_seq: dict[int, int] = {}
        self.dirty: set[int] = set()
        app.timer(interval=interval)(self.persist)
        app.on_partitions_revoked.connect(self._on_revoked)
        app.on_before_shutdown.connect(self._on_shutdown)

    def miner(self, partition: int) -> TemplateMiner | None:
        if not self.pipeline.mine_templates:
            return None
        miner = self.miners.get(partition)
        if miner is None:
            miner = self._restore(partition) or self.pipeline.new_miner()
            assert miner is not None
            miner.take_journal()  # from now on it journals what changes
            self.miners[partition] = miner
            self.seen[partition] = {}
            self.merged[partition] = {}
        return miner

    def _restore(self, partition: int) -> TemplateMiner | None:
        miner = None
        try:
            raw = self.state.load(_key(partition))
            if raw:
                miner = TemplateMiner.restore(orjson.loads(raw))
            keys = sorted(k for k in self.table.data if k.startswith(_journal_prefix(partition)))
            if keys:
                miner = miner or self.pipeline.new_miner()
                assert miner is not None
                for k in keys:
                    miner.apply_journal(orjson.loads(self.table.data[k]))
                self.journal_seq[partition] = int(keys[-1].rsplit(b":", 1)[1])
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            log.warning("templates: cannot restore partition %d (%s); starting empty", partition, exc)
            return None
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
                seen[tid] = [ts, ts, (ev.get("message") or "")[:_EXAMPLE_CHARS], True]
            else:
                entry[3] = True
                if ts and ts > (entry[1] or ""):
                    entry[1] = ts
                if ts and ts < (entry[0] or ts):
                    entry[0] = ts
        self.dirty.add(partition)

    def changed(self, partition: int, record: dict[str, Any]) -> None:
        """A template change record (``TemplateChange.record``) of this partition."""
        if record.get("type") == "alias":
            self.merged.setdefault(partition, {})[record["alias_id"]] = (record["template_id"],
                                                                         record["time"])
            absorbed = self.seen.get(partition, {}).pop(record["alias_id"], None)
            survivor = self.seen.get(partition, {}).get(record["template_id"])
            if absorbed is not None and survivor is not None and absorbed[0] \
                    and absorbed[0] < (survivor[0] or absorbed[0]):
                survivor[0] = absorbed[0]
        self.dirty.add(partition)

    async def journal(self, partitions: set[int] | list[int]) -> None:
        """Write down the births, new texts and merges of these partitions' miners since the
        last call (awaited: call it before the buffer that showed them is acknowledged)."""
        for p in partitions:
            miner = self.miners.get(p)
            entries = miner.take_journal() if miner is not None else None
            if entries:
                seq = self.journal_seq[p] = self.journal_seq.get(p, 0) + 1
                key = _journal_prefix(p) + f"{seq:010d}".encode()
                value = orjson.dumps(entries)
                self.table.data[key] = value
                await save_state(self.table, p, key, value)

    def consolidate(self) -> list[dict[str, Any]]:
        """Templates of this worker's partitions with the same text under different ids
        (the same statement born from different first messages) become one: the smallest id
        (the same choice on every worker) survives, the others are renamed to it in their
        miners and recorded as its aliases. Returns the alias messages (``logs.templates``)."""
        by_text: dict[str, set[str]] = {}
        for miner in self.miners.values():
            for tid, text, _count in miner.templates():
                by_text.setdefault(text, set()).add(tid)
        records: list[dict[str, Any]] = []
        now = now_rfc3339()
        for ids in by_text.values():
            if len(ids) < 2:
                continue
            survivor = min(ids)
            for p, miner in self.miners.items():
                for tid in ids - {survivor}:
                    change = miner.rename(tid, survivor)
                    if change is None:
                        continue
                    record = change.record(self.pipeline.name, now)
                    records.append(record)
                    seen = self.seen.get(p, {})
                    if tid in seen:
                        seen[survivor] = seen.pop(tid)
                        seen[survivor][3] = True
                    self.changed(p, record)
        return records

    async def persist(self) -> None:
        if len(self.miners) > 1:
            records = self.consolidate()
            if records and self.templates_topic is not None:
                await self.outputs.publish(
                    [(r["alias_id"].encode(), orjson.dumps(r)) for r in records], self.templates_topic)
        for p in sorted(self.dirty):
            miner = self.miners.get(p)
            if miner is None:
                continue
            # The snapshot holds everything journaled so far: then the journal goes. Written
            # before the documents are indexed: what the catalog shows is never newer than
            # what a restarted worker resumes from.
            miner.take_journal()
            upto = self.journal_seq.get(p, 0)
            await self.state.save(p, _key(p), orjson.dumps(miner.snapshot()))
            prefix = _journal_prefix(p)
            for k in [k for k in self.table.data if k.startswith(prefix)
                      and int(k.rsplit(b":", 1)[1]) <= upto]:
                del self.table.data[k]
                await save_state(self.table, p, k, None)
            await self._write_catalog(p, miner)
        self.dirty.clear()

    async def _write_catalog(self, p: int, miner: TemplateMiner) -> None:
        docs = self.catalog_docs(p, miner)
        if not docs:
            return
        sink, caps = self.outputs.sink, self.outputs.caps
        if sink is not None and caps is not None:
            await sink.write([Action(caps.index_for("templates", self.pipeline.name, d["@timestamp"]),
                                     f"{d['template_id']}-p{p}", d, op="index") for d in docs])
        if self.templates_topic is not None:
            await self.outputs.publish([(d["template_id"].encode(), orjson.dumps(d)) for d in docs],
                                       self.templates_topic)

    def catalog_docs(self, p: int, miner: TemplateMiner) -> list[dict[str, Any]]:
        """The catalog documents of partition ``p`` that changed since the last call: its
        templates that saw events, and its merged ids."""
        held = {tid: (text, count) for tid, text, count in miner.templates()}
        seen = self.seen.get(p, {})
        for tid in [t for t in seen if t not in held]:
            del seen[tid]  # evicted by the miner: keep the bookkeeping bounded too
        merged = self.merged.get(p, {})
        meta = {"pipeline": self.pipeline.name}
        docs = []
        for tid, entry in seen.items():
            if not entry[3]:
                continue
            entry[3] = False
            first, last, example = entry[0], entry[1], entry[2]
            text, count = held[tid]
            doc: dict[str, Any] = {
                "type": "template", "@timestamp": last or now_rfc3339(), "template_id": tid,
                "template": text, "first_seen": first or last, "last_seen": last,
                "count": count, "example": example, "partition": p, "logriver": meta}
            earlier = miner.earlier_texts(tid)
            if earlier:
                doc["texts"] = earlier
            aliases = miner.aliases.of(tid) if len(miner.aliases) else []
            if aliases:
                doc["aliases"] = aliases
            docs.append(doc)
        for alias, (survivor, time) in merged.items():
            text = held.get(survivor, ("", 0))[0]
            docs.append({"type": "template", "@timestamp": time, "template_id": alias,
                         "template": text, "alias_of": survivor, "first_seen": time,
                         "last_seen": time, "count": 0, "partition": p, "logriver": meta})
        merged.clear()
        return docs

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
                self.merged.pop(tp.partition, None)
                self.journal_seq.pop(tp.partition, None)
                self.dirty.discard(tp.partition)


def _key(partition: int) -> bytes:
    return f"{partition}".encode()


def _journal_prefix(partition: int) -> bytes:
    return f"{partition}:j:".encode()
