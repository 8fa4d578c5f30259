"""The window + scoring agent of the Faust worker.

Data flow: the structuring agent sends what the window stage counts of each event, as
compact rows (``window_messages``), to ``logs.windows.<pipeline>``, keyed by the fields every
window spec groups by, in batches per key. Each row carries its position in the raw topic
``[partition, offset, index]`` and its source stream. This agent consumes that topic in parallel partitions; per
partition it keeps a ``WindowStage`` whose state lives in a changelog-backed Faust table
(written to the changelog and acknowledged by the broker at the end of each buffer, before
the agent takes the next one, so before Faust commits the buffer's offsets).

Exactly-once counts after a crash: the stage's snapshot records, per file stream (a line
of a file) or raw partition (anything else) and key, the last position applied. Input
re-delivered after a SIGKILL (the structuring agent re-sends what it had not committed, or
this agent re-reads what it had not committed) is skipped by position, so the restored state
counts every event once; so is a line a node agent published again after its own crash (same
position in its file, new raw offset). Closed windows and anomalies are
indexed with deterministic ids and published on ``logs.metrics`` / ``logs.anomalies``.

Windows close on event time: the slowest active source's newest event minus the allowed
lateness, where a source is one container stream of the raw topic (its message key; a
partition holds many, and a node agent catching up reads each file's backlog at its own
pace), idle after ``LOGRIVER_SOURCE_IDLE_SECONDS`` without events. When the whole consumer group has caught up (no lag on the raw topic nor on the
window topic, checked every ``IDLE_CHECK_SECONDS``) and a partition has had no input for
``IDLE_CLOSE_SECONDS``, the wall clock serves as its watermark, so the last windows of a
finite input close too — and never while another worker still has input for them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import faust
import orjson

from streams.ops import config
from streams.ops.stats import WorkerStats
from streams.sinks.elasticsearch import Action
from streams.sinks.outputs import MAX_MESSAGE_BYTES, Outputs
from streams.transport.deadletter import DeadLetter, dead_letter
from streams.transport.kafka import group_lags
from streams.transport.state import TableState
from streams.windows.rows import (
    WINDOW_INPUT_VERSION,
    decode_window_input,
    late_event,
    progress_messages,
    window_messages,
    window_topic_name,
)
from streams.windows.spec import row_fields
from streams.windows.stage import WindowStage, partition_fields

if TYPE_CHECKING:  # the pipeline declares what this stage runs; it imports no stage back
    from streams.pipeline import Pipeline

log = logging.getLogger(__name__)

IDLE_CLOSE_SECONDS = 5.0
IDLE_CHECK_SECONDS = 5.0
CATCHUP_BEHIND_SECONDS = 600.0  # event time this far behind the wall clock: catching up


class WindowWorker:
    """Installs the window agent on ``app``; ``send_window_input`` is what the structuring
    agent calls for each buffer."""

    def __init__(
        self,
        app: faust.App,
        pipeline: Pipeline,
        settings: config.Settings,
        *,
        outputs: Outputs,
        stats: WorkerStats,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        on_processed: Callable[[list[faust.EventT]], None] | None = None,
    ) -> None:
        self.outputs = outputs
        # told after each buffer was counted (state saved) or dead-lettered: the worker
        # commits the window topic's offsets only that far
        self.on_processed = on_processed
        self.send_dead_letters = outputs.dead_letters
        self.max_message_bytes = max_message_bytes
        self.app = app
        self.pipeline = pipeline
        self.stats = stats
        self.fields = partition_fields(pipeline.windows)
        self.key_paths = [tuple(f.split(".")) for f in self.fields]
        self.row_fields = row_fields(pipeline.windows)
        self.input = app.topic(settings.topic(window_topic_name(pipeline.name)),
                               value_type=bytes, key_type=bytes,
                               value_serializer="raw", key_serializer="raw")
        self.metrics_topic = settings.topic(config.METRICS)
        self.anomalies_topic = settings.topic(config.ANOMALIES)
        self.table = app.Table(
            f"windows-{pipeline.name}", partitions=pipeline.partitions,
            key_type=bytes, value_type=bytes,
        )
        self.state = TableState(self.table)
        self.group = app.conf.id
        self.bootstrap = settings.kafka_bootstrap
        self.source_idle_seconds = settings.source_idle_seconds
        self.catchup_hold_us = round(settings.catchup_hold_seconds * 1e6)
        self.lag_topics = [settings.topic(pipeline.source_topic), self.input.get_topic_name()]
        self.last_lag_check = float("-inf")  # monotonic time starts at boot: never 0.0
        # every stream's progress goes to every window partition (rows.progress_messages),
        # and nothing closes on event time before each raw partition reported or the
        # group caught up: a stream first read late must not find its windows closed
        self.raw_partitions = pipeline.partitions
        self.caught_up = False
        self.stages: dict[int, WindowStage] = {}
        # partition -> "raw partition|key" -> last [offset, index] applied
        self.applied: dict[int, dict[str, list[int]]] = {}
        self.last_input: dict[int, float] = {}
        self.lock = asyncio.Lock()
        self._broadcast_keys: list[bytes] | None = None
        app.agent(self.input, name=f"windows-{pipeline.name}")(self._agent)
        app.timer(interval=1.0)(self._idle_close)
        app.on_partitions_revoked.connect(self._on_revoked)

    # -- input side (called by the structuring agent) ----------------------------------
    async def send_window_input(self, events: list[dict[str, Any]],
                                positions: dict[str, list[int]]) -> list[DeadLetter]:
        """Publish the window input of a buffer's events on the window topic (acknowledged
        when this returns). Returns the dead letters of rows too large alone."""
        items, letters = window_messages(events, positions, self.key_paths, self.row_fields,
                                         self.max_message_bytes, pipeline=self.pipeline.name)
        topic = self.input.get_topic_name()
        items += progress_messages(events, positions, self.row_fields,
                                   await self._partition_keys(topic))
        await self.outputs.publish(items, topic)
        return letters

    async def send_aliases(self, aliases: dict[str, str]) -> None:
        """Tell every window partition that templates were merged (merged id -> surviving
        id): a message without rows to each, so open windows count a merged template once.
        (Applying it twice changes nothing: re-delivery is harmless.)"""
        if not aliases:
            return
        topic = self.input.get_topic_name()
        keys = await self._partition_keys(topic)
        value = orjson.dumps({"v": WINDOW_INPUT_VERSION, "fields": list(self.row_fields),
                              "texts": {}, "aliases": aliases, "rows": []})
        await self.outputs.publish([(k, value) for k in keys], topic)

    async def _partition_keys(self, topic: str) -> list[bytes]:
        """One message key per partition of ``topic`` (keys partition as the Java client
        does: found by trying a few)."""
        from streams.transport.partitioner import partitions_for_keys  # (numpy)

        parts = await self.outputs.partitions_of(topic)
        if self._broadcast_keys is None or len(self._broadcast_keys) != len(parts):
            candidates = [f"\x00aliases:{i}".encode() for i in range(64 * len(parts))]
            found: dict[int, bytes] = {}
            for key, p in zip(candidates, partitions_for_keys(candidates, parts)):
                found.setdefault(p, key)
            self._broadcast_keys = [found[p] for p in sorted(found)]
        return self._broadcast_keys

    # -- the agent ------------------------------------------------------------------------
    async def _agent(self, stream: faust.StreamT) -> None:
        await self.outputs.ready()  # a restarted worker may have window input first
        async for fevents in stream.take_events(2000, within=0.5):
            error = ""
            for attempt in range(3):
                try:
                    async with self.lock:
                        await self._process(fevents)
                    break
                except Exception as exc:
                    log.exception("window stage failed (attempt %d)", attempt + 1)
                    error = f"{type(exc).__name__}: {exc}"  # ``exc`` is unbound after except
                    await asyncio.sleep(0.5 * (attempt + 1))
            else:
                await self.send_dead_letters([
                    dead_letter("window", "internal_error", fe.value, pipeline=self.pipeline.name,
                                detail=error, topic=fe.message.topic,
                                partition=fe.message.partition, offset=fe.message.offset)
                    for fe in fevents
                ])
            if self.on_processed is not None:
                self.on_processed(fevents)

    def _new_stage(self) -> WindowStage:
        p = self.pipeline
        return WindowStage(p.name, p.windows, p.detectors, warmup_windows=p.warmup_windows,
                           alert_gap=p.alert_gap_windows,
                           idle_source_seconds=self.source_idle_seconds)

    def _stage(self, partition: int) -> WindowStage:
        stage = self.stages.get(partition)
        if stage is None:
            stage = self._new_stage()
            applied: dict[str, list[int]] = {}
            try:
                raw = self.state.load(_key(partition, "agg"))
                if raw:
                    state = orjson.loads(raw)
                    stage.restore(state)
                    applied = state["applied"]
                raw_det = self.state.load(_key(partition, "det"))
                if raw_det and stage.scoring:
                    stage.restore_scoring(orjson.loads(raw_det))
            except ValueError as exc:  # never written by this code: say so loudly, go on
                log.error("window state of partition %d cannot be restored (%s): its open "
                          "windows start empty", partition, exc)
                stage = self._new_stage()
                applied = {}
            if not self.caught_up:
                heard = {_raw_partition(src) for src in stage.aggregator.max_time}
                stage.aggregator.waiting_for = set(range(self.raw_partitions)) - heard
            self.stages[partition] = stage
            self.applied[partition] = applied
        return stage

    async def _process(self, fevents: list[faust.EventT]) -> None:
        touched: set[int] = set()
        letters: list[DeadLetter] = []
        now = time.monotonic()
        for fe in fevents:
            p = fe.message.partition
            stage = self._stage(p)
            applied = self.applied[p]
            touched.add(p)
            self.last_input[p] = now
            try:
                msg = decode_window_input(fe.value)
            except ValueError as exc:  # not JSON (JSONDecodeError is one), or not window input
                letters.append(dead_letter("window", "bad_window_input", fe.value, detail=str(exc),
                                           pipeline=self.pipeline.name, topic=fe.message.topic,
                                           partition=p, offset=fe.message.offset))
                continue
            key = (fe.key or b"").decode("utf-8", "replace")
            letters += self._apply_rows(stage, applied, key, msg)
        if letters:
            await self.send_dead_letters(letters)
        for p in sorted(touched):
            stage = self.stages[p]
            self._hold(stage)
            await self._close(p, stage.close())

    def _hold(self, stage: WindowStage) -> None:
        """While the input is far behind the wall clock (a backfill), windows close
        ``LOGRIVER_CATCHUP_HOLD_SECONDS`` later in event time: the node agent reads each
        file's backlog in chunks, so a stream's first rows can come after other streams'
        later ones."""
        agg = stage.aggregator
        newest = max(agg.max_time.values(), default=None)
        behind = newest is not None and time.time() * 1e6 - newest > CATCHUP_BEHIND_SECONDS * 1e6
        agg.hold_us = self.catchup_hold_us if behind else 0
        if newest is not None and not behind:  # live input: every stream keeps sending
            agg.waiting_for.clear()

    def _apply_rows(self, stage: WindowStage, applied: dict[str, list[int]], key: str,
                    msg: dict[str, Any]) -> list[DeadLetter]:
        """Count a message's rows not counted yet. A line of a file is known by its
        position in the file (``rows.origin_of``): the node agent emits a file stream's lines
        in order, and one structuring agent sends each key's rows of a raw partition in
        order, so a row at or before the last one applied of its file stream and key was
        counted already (delivered again after a worker crash, or published again by a node
        agent that crashed before its checkpoint). Other rows are known by their raw position
        (partition, offset, index), which grows the same way per raw partition and key."""
        agg = stage.aggregator
        fields = msg["fields"]
        remap = None
        if tuple(fields) != agg.key_fields:  # the pipeline's windows changed meanwhile
            where = {f: i for i, f in enumerate(fields)}
            remap = [where.get(f) for f in agg.key_fields]
        for absorbed, survivor in (msg.get("aliases") or {}).items():
            agg.alias(absorbed, survivor)
        texts = msg["texts"]
        for tid, text in texts.items():
            agg.remember_template(tid, text)
        for src, stream, ts in msg.get("progress", ()):
            agg.advance(f"{src}:{stream}", ts)
            agg.waiting_for.discard(src)
        letters: list[DeadLetter] = []
        counted = 0
        slots: dict[int, str] = {}
        files: dict[int, str] = {}
        for ts, eid, size, is_error, is_new, tid, is_5xx, dur, vals, src, off, idx, stream, \
                *origin in msg["rows"]:
            if src not in slots:
                slots[src] = f"{src}|{key}"
                agg.waiting_for.discard(src)
            if origin and origin[0] is not None:
                fstream, foff = origin
                slot = files.get(fstream)
                if slot is None:
                    slot = files[fstream] = f"f{fstream}|{key}"
                last = applied.get(slot)
                if last is not None and foff <= last[0]:
                    continue  # counted already
                applied[slot] = [foff, ts or 0]  # (its time: forgotten once its windows closed)
            else:
                slot = slots[src]
                last = applied.get(slot)
                if last is not None and (off < last[0] or (off == last[0] and idx <= last[1])):
                    continue  # re-delivered after a crash: already counted
                applied[slot] = [off, idx]
            counted += 1
            if remap is not None:
                vals = [None if j is None else vals[j] for j in remap]
            late = stage.add_row(
                ts, f"{src}:{stream}", (size, is_error, is_new, tid, is_5xx, dur), vals,
                lambda ts=ts, eid=eid, vals=vals: late_event(ts, eid, agg.key_fields, vals),
                texts.get(tid) if tid is not None else None)
            if late:
                self.stats.late_events += len(late)
                letters += late
        self.stats.lines_in["window"] += counted
        return letters

    async def _close(self, p: int, result: tuple[list[dict], list[dict]]) -> None:
        """Index and publish what closed, then persist the partition's state: the scoring
        state first (windows closed again after a crash between the two writes are
        recognized there and not scored twice), then the windows' state."""
        metrics, anomalies = result
        await self._emit(metrics, anomalies)
        stage = self.stages[p]
        if metrics:
            _forget_closed_files(self.applied[p], stage.aggregator)
        if (metrics or anomalies) and stage.scoring:
            await self.state.save(p, _key(p, "det"), orjson.dumps(stage.scoring_snapshot()))
        state = {**stage.snapshot(), "applied": self.applied[p]}
        await self.state.save(p, _key(p, "agg"), orjson.dumps(state))

    async def _emit(self, metrics: list[dict], anomalies: list[dict]) -> None:
        if not metrics and not anomalies:
            return
        out = self.outputs
        await out.index(
            [Action(out.index_for("metrics", m["@timestamp"]), m["event"]["id"], m,
                    op=out.op_type("metrics")) for m in metrics]
            + [Action(out.index_for("anomalies", a["@timestamp"]), a["event"]["id"], a,
                      op=out.op_type("anomalies")) for a in anomalies]
        )
        await out.publish([(m["event"]["id"].encode(), orjson.dumps(m)) for m in metrics],
                          self.metrics_topic)
        await out.publish([(a["event"]["id"].encode(), orjson.dumps(a)) for a in anomalies],
                          self.anomalies_topic)
        self.stats.recent_windows.extend(metrics)
        for a in anomalies:
            self.stats.recent_anomalies.append(a)
            if a.get("model", {}).get("version"):
                self.stats.model_versions[a.get("detector", "?")] = a["model"]["version"]
        self.stats.lines_out["window"] += len(metrics)
        self.stats.lines_out["score"] += len(anomalies)

    async def _idle_close(self) -> None:
        """Close windows of partitions idle for a while, with the wall clock as watermark,
        once the whole group has caught up."""
        now = time.monotonic()
        # Partitions assigned to us with state in the table but no input since (e.g. after a
        # rebalance) must close too: load them.
        topic = self.input.get_topic_name()
        for tp in self.app.assignor.assigned_actives():
            if tp.topic == topic and tp.partition not in self.stages \
                    and _key(tp.partition, "agg") in self.table.data:
                self._stage(tp.partition)
                self.last_input[tp.partition] = now - IDLE_CLOSE_SECONDS
        idle = [p for p in self.stages if now - self.last_input.get(p, now) >= IDLE_CLOSE_SECONDS]
        waiting = any(st.aggregator.waiting_for for st in self.stages.values())
        if not (idle or waiting) or now - self.last_lag_check < IDLE_CHECK_SECONDS:
            return
        self.last_lag_check = now
        try:
            lags = await group_lags(self.bootstrap, self.group, self.lag_topics)
        except Exception as exc:  # noqa: BLE001 - Kafka unreachable: try again later
            log.warning("window idle check: cannot read the group's lag: %s", exc)
            return
        self._stop_waiting(lags)
        if sum(lag for lag, _ in lags.values()) > 0:
            return
        self.caught_up = True  # every raw partition has been read: stop waiting for any
        for st in self.stages.values():
            st.aggregator.waiting_for.clear()
        async with self.lock:
            for p, stage in list(self.stages.items()):
                if now - self.last_input.get(p, now) < IDLE_CLOSE_SECONDS:
                    continue
                result = stage.close(now_watermark=time.time())
                if result[0] or result[1]:
                    await self._close(p, result)

    def _stop_waiting(self, lags: dict[tuple[str, int], tuple[int, int]]) -> None:
        """A raw partition that never had a message, or was read to its end while this
        window partition was too, has nothing more to say: stop waiting for it."""
        raw, window = self.lag_topics
        for p, stage in self.stages.items():
            w_lag = lags.get((window, p), (1, 1))[0]
            for src in list(stage.aggregator.waiting_for):
                lag, end = lags.get((raw, src), (1, 1))
                if end == 0 or (lag == 0 and w_lag == 0):
                    stage.aggregator.waiting_for.discard(src)

    async def _on_revoked(self, sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        for tp in revoked:
            if tp.topic == self.input.get_topic_name():
                self.stages.pop(tp.partition, None)
                self.applied.pop(tp.partition, None)


def _forget_closed_files(applied: dict[str, list[int]], agg: Any) -> None:
    """Forget the file streams whose last row's windows have all closed (a row of theirs at
    or before it would be late anyway): files come and go, the state must not grow with them."""
    if not agg.closed_upto or any(c is None for c in agg.closed_upto):
        return
    horizon = min(c - spec.size_us for c, spec in zip(agg.closed_upto, agg.specs))
    for slot in [s for s, last in applied.items() if s[0] == "f" and last[1] < horizon]:
        del applied[slot]


def _raw_partition(source: object) -> int | None:
    """The raw partition of a source named ``"<raw partition>:<stream>"``."""
    head = str(source).split(":", 1)[0]
    return int(head) if head.lstrip("-").isdigit() else None


def _key(partition: int, what: str) -> bytes:
    return f"{partition}:{what}".encode()
