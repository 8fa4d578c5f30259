"""The window + scoring agent of the Faust worker.

Data flow: the structuring agent sends a compact projection of each event (``windowing.
projection``) to ``logs.windows.<pipeline>``, keyed by the fields every window spec groups by,
in batches per key. Each projection carries its position in the raw topic
``[partition, offset, index]``. This agent consumes that topic in parallel partitions; per
partition it keeps a ``WindowStage`` whose state lives in a changelog-backed Faust table
(written to the changelog and acknowledged by the broker at the end of each buffer, before
the agent takes the next one, so before Faust commits the buffer's offsets).

Exactly-once counts after a crash: the stage's snapshot records, per raw partition, the
last position applied. Input re-delivered after a SIGKILL (the structuring agent re-sends
what it had not committed, or this agent re-reads what it had not committed) is skipped by
position, so the restored state counts every event once. Closed windows and anomalies are
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
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import faust
import orjson

from streams import config
from streams.deadletter import DeadLetter, dead_letter
from streams.kafka import group_lag
from streams.pipeline import Pipeline
from streams.sinks.elasticsearch import Action
from streams.state import TableState
from streams.stats import WorkerStats
from streams.windowing import WindowStage, partition_fields, projection
from streams.windows.spec import get_path

log = logging.getLogger(__name__)

IDLE_CLOSE_SECONDS = 5.0
IDLE_CHECK_SECONDS = 5.0


def window_topic_name(pipeline: Pipeline) -> str:
    return f"logs.windows.{pipeline.name}"


class WindowWorker:
    """Installs the window agent on ``app``; ``send_projections`` is what the structuring
    agent calls for each buffer."""

    def __init__(
        self,
        app: faust.App,
        pipeline: Pipeline,
        settings: config.Settings,
        *,
        runtime: dict[str, Any],
        stats: WorkerStats,
        send_dead_letters: Callable[[list[DeadLetter]], Awaitable[None]],
        topic: Callable[[str], faust.TopicT],
        ready: Callable[[], Awaitable[None]],
        max_message_bytes: int = 900 * 1024,
    ) -> None:
        self.ready = ready
        self.max_message_bytes = max_message_bytes
        self.app = app
        self.pipeline = pipeline
        self.runtime = runtime
        self.stats = stats
        self.send_dead_letters = send_dead_letters
        self.fields = partition_fields(pipeline.windows)
        self.key_paths = [tuple(f.split(".")) for f in self.fields]
        self.all_key_fields = tuple(dict.fromkeys(f for s in pipeline.windows for f in s.key_fields))
        self.input = topic(window_topic_name(pipeline))
        self.metrics_topic = topic(config.METRICS)
        self.anomalies_topic = topic(config.ANOMALIES)
        self.table = app.Table(
            f"windows-{pipeline.name}", partitions=pipeline.partitions,
            key_type=bytes, value_type=bytes,
        )
        self.state = TableState(self.table)
        self.group = app.conf.id
        self.bootstrap = settings.kafka_bootstrap
        self.source_idle_seconds = settings.source_idle_seconds
        self.lag_topics = [settings.topic(pipeline.source_topic), self.input.get_topic_name()]
        self.last_lag_check = 0.0
        self.stages: dict[int, WindowStage] = {}
        # partition -> "raw partition|key" -> last [offset, index] applied
        self.applied: dict[int, dict[str, list[int]]] = {}
        self.last_input: dict[int, float] = {}
        self.lock = asyncio.Lock()
        app.agent(self.input, name=f"windows-{pipeline.name}")(self._agent)
        app.timer(interval=1.0)(self._idle_close)
        app.on_partitions_revoked.connect(self._on_revoked)

    # -- input side (called by the structuring agent) ----------------------------------
    async def send_projections(self, events: list[dict[str, Any]],
                               positions: dict[str, list[int]]) -> list[DeadLetter]:
        """Publish the projections of a buffer's events on the window topic (acknowledged
        when this returns). Returns the dead letters of projections too large alone."""
        items, letters = window_messages(events, positions, self.key_paths, self.all_key_fields,
                                         self.max_message_bytes, pipeline=self.pipeline.name)
        await self.runtime["publisher"].publish(items, self.input.get_topic_name())
        return letters

    # -- the agent ------------------------------------------------------------------------
    async def _agent(self, stream: faust.StreamT) -> None:
        await self.ready()  # the sinks: a restarted worker may have window input first
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

    def _new_stage(self) -> WindowStage:
        return WindowStage(self.pipeline.name, self.pipeline.windows, self.pipeline.detectors,
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
                    stage.aggregator.restore(state["aggregator"])
                    applied = state["applied"]
                raw_det = self.state.load(_key(partition, "det"))
                if raw_det and stage.detectors is not None:
                    stage.detectors.restore(orjson.loads(raw_det))
            except ValueError as exc:  # never written by this code: say so loudly, go on
                log.error("window state of partition %d cannot be restored (%s): its open "
                          "windows start empty", partition, exc)
                stage = self._new_stage()
                applied = {}
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
                projs = _projections(fe.value)
            except ValueError as exc:  # not JSON (JSONDecodeError is one), or not projections
                letters.append(dead_letter("window", "bad_window_input", fe.value, detail=str(exc),
                                           pipeline=self.pipeline.name, topic=fe.message.topic,
                                           partition=p, offset=fe.message.offset))
                continue
            key = (fe.key or b"").decode("utf-8", "replace")
            for proj in projs:
                src, off, idx, *stream = proj.pop("pos")
                # Positions grow per (raw partition, key): one structuring agent sends each
                # key's projections of a raw partition in order.
                slot = f"{src}|{key}"
                last = applied.get(slot)
                if last is not None and [off, idx] <= last:
                    continue  # re-delivered after a crash: already counted
                applied[slot] = [off, idx]
                self.stats.lines_in["window"] += 1
                # the source of event-time progress: one container stream (3-element
                # positions, from before streams were sent: the raw partition)
                late = stage.add([proj], source=f"{src}:{stream[0]}" if stream else src)
                self.stats.late_events += len(late)
                letters.extend(late)
        if letters:
            await self.send_dead_letters(letters)
        for p in sorted(touched):
            await self._close(p, self.stages[p].close())

    async def _close(self, p: int, result: tuple[list[dict], list[dict]]) -> None:
        """Index and publish what closed, then persist the partition's state."""
        metrics, anomalies = result
        await self._emit(metrics, anomalies)
        stage = self.stages[p]
        state = {"aggregator": stage.aggregator.snapshot(), "applied": self.applied[p]}
        await self.state.save(p, _key(p, "agg"), orjson.dumps(state))
        if (metrics or anomalies) and stage.detectors is not None:
            await self.state.save(p, _key(p, "det"), orjson.dumps(stage.detectors.snapshot()))

    async def _emit(self, metrics: list[dict], anomalies: list[dict]) -> None:
        if not metrics and not anomalies:
            return
        caps, sink = self.runtime["caps"], self.runtime["sink"]
        name = self.pipeline.name
        await sink.write(
            [Action(caps.index_for("metrics", name, m["@timestamp"]), m["event"]["id"], m,
                    op=caps.op_type("metrics")) for m in metrics]
            + [Action(caps.index_for("anomalies", name, a["@timestamp"]), a["event"]["id"], a,
                      op=caps.op_type("anomalies")) for a in anomalies]
        )
        publisher = self.runtime["publisher"]
        await publisher.publish([(m["event"]["id"].encode(), orjson.dumps(m)) for m in metrics],
                                self.metrics_topic.get_topic_name())
        await publisher.publish([(a["event"]["id"].encode(), orjson.dumps(a)) for a in anomalies],
                                self.anomalies_topic.get_topic_name())
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
        if not idle or now - self.last_lag_check < IDLE_CHECK_SECONDS:
            return
        self.last_lag_check = now
        try:
            lag = await group_lag(self.bootstrap, self.group, self.lag_topics)
        except Exception as exc:  # noqa: BLE001 - Kafka unreachable: try again later
            log.warning("window idle check: cannot read the group's lag: %s", exc)
            return
        if lag > 0:
            return
        async with self.lock:
            for p, stage in list(self.stages.items()):
                if now - self.last_input.get(p, now) < IDLE_CLOSE_SECONDS:
                    continue
                result = stage.close(now_watermark=time.time())
                if result[0] or result[1]:
                    await self._close(p, result)

    async def _on_revoked(self, sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        for tp in revoked:
            if tp.topic == self.input.get_topic_name():
                self.stages.pop(tp.partition, None)
                self.applied.pop(tp.partition, None)


def _projections(value: bytes) -> list[dict[str, Any]]:
    """The projections of one window-topic message, checked before anything is applied:
    ValueError when it is not a JSON list of objects each with a ``pos`` [partition, offset,
    index] (a poison message must be dead-lettered alone, not fail its whole batch)."""
    projs = orjson.loads(value)
    if not isinstance(projs, list):
        raise ValueError(f"not a list of projections: {type(projs).__name__}")  # noqa: TRY004
    for proj in projs:
        pos = proj.get("pos") if isinstance(proj, dict) else None
        if not (isinstance(pos, list) and len(pos) in (3, 4) and all(type(x) is int for x in pos)):
            raise ValueError("not a projection with a position [partition, offset, index, stream]")
    return projs


def window_messages(events: list[dict[str, Any]], positions: dict[str, list[int]],
                    key_paths: list[tuple[str, ...]], fields: tuple[str, ...], limit: int,
                    *, pipeline: str) -> tuple[list[tuple[bytes, bytes]], list[DeadLetter]]:
    """The window-topic messages of a buffer's events: (key, JSON array of projections each
    with its raw position), keyed by the partition fields, each key's projections in order,
    packed into messages of at most ``limit`` bytes; and dead letters for projections larger
    than ``limit`` alone (a huge key value: never sent, never silently dropped)."""
    groups: dict[bytes, list[bytes]] = {}
    for ev in events:
        key = "\x1f".join(str(get_path(ev, p)) for p in key_paths).encode()
        proj = projection(ev, fields)
        proj["pos"] = positions[ev["event"]["id"]]
        groups.setdefault(key, []).append(orjson.dumps(proj))
    items: list[tuple[bytes, bytes]] = []
    letters: list[DeadLetter] = []
    for key, encoded in groups.items():
        for value in pack_json_arrays(encoded, limit):
            if len(value) > limit:
                letters.append(dead_letter(
                    "window", "window_input_too_large", value, pipeline=pipeline,
                    event_id=orjson.loads(value)[0]["event"]["id"],
                    detail=f"one projection is {len(value)} bytes, over the {limit} bytes of a "
                           "window-topic message"))
            else:
                items.append((key, value))
    return items, letters


def pack_json_arrays(encoded: list[bytes], limit: int) -> Iterator[bytes]:
    """JSON arrays of the already encoded values, in order, each at most ``limit`` bytes
    (a value larger than that alone comes out alone)."""
    chunk: list[bytes] = []
    size = 2
    for value in encoded:
        if chunk and size + len(value) + 1 > limit:
            yield b"[" + b",".join(chunk) + b"]"
            chunk, size = [], 2
        chunk.append(value)
        size += len(value) + 1
    if chunk:
        yield b"[" + b",".join(chunk) + b"]"


def _key(partition: int, what: str) -> bytes:
    return f"{partition}:{what}".encode()
