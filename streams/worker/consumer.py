"""Faust's Kafka consumer, guarded: no offset is committed past a message no agent processed.

Why (faust-streaming 0.15.3, aiokafka 0.14; file references are to the installed sources).
A restarted worker lost raw messages: they were in ``logs.raw``, never reached Elasticsearch or
the dead letters, and the group's committed offset was past them. The chain that loses them:

1. ``faust/tables/recovery.py`` ``on_recovery_completed`` (~l.649-660) resumes the source
   partitions, then awaits ``consumer.perform_seek()``; the fetcher, already running for the
   changelogs (~l.444-453), delivers source records meanwhile and an agent's buffer fills.
2. ``perform_seek`` seeks back to the committed offsets and sets faust's *read offset* there
   (``faust/transport/consumer.py`` ~l.565-580), while the drain loop is still iterating a batch
   fetched before the seek, ~250 messages ahead.
3. ``app.flow_control.resume()`` clears every flow-controlled queue
   (``mode/utils/queues.py`` ~l.97-101), the agents' channel queues included: those messages
   are neither processed nor acknowledged.
4. The drain loop goes on with the old batch and overwrites the read offset; the records fetched
   again from the committed offset are then dropped as below it ("DROPPED MESSAGE ROFF",
   ``consumer.py`` ~l.1208-1230).
5. Commits pass the hole: a record after the overwritten read offset makes ``_add_gap``
   (~l.1157-1167) record the cleared messages as a "gap", which ``_new_offset`` (~l.1087-1141)
   counts as acknowledged; and ``_new_offset`` only refuses a gap at the head of the acked list
   when it is wider than one offset (upstream issue faust-streaming#606, open PR #707; the
   same race is faust-streaming#596, the prefetch variant #221/#223).
Besides: ``Stream.__aiter__`` acknowledges a message it *skips* (stale generation or flow
suspended, ``faust/streams.py`` ~l.1283-1296 and ~l.1335-1345), and ``take_events`` acknowledges a
buffer whose processing raised or was cancelled (~l.540-550): Faust's acks do not mean
"processed".

What this module guarantees instead, for the topics registered with ``guard`` (the raw topic and
the window topic):

- commits follow ``streams.worker.offsets.PartitionLedger``: an offset is committed only when
  every offset since the last commit was marked processed by an agent (``processed``, called
  after the outputs were acknowledged or the input dead-lettered) or proven absent from the log;
- a guarded partition delivers nothing until it was positioned at its committed offset in the
  current generation, nor while the group rebalances (queues are cleared then); a record fetched
  but not delivered is fetched again before anything after it is delivered;
- fetches and seeks never overlap, and records fetched before a seek are never delivered after
  it, so the fetch chain that proves holes is the log's own.
Other topics (changelogs, Faust's internal ones) keep Faust's behaviour unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import faust
from faust.transport.consumer import ensure_TP
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from streams.worker.offsets import PartitionLedger

log = logging.getLogger(__name__)

GAP_SECONDS = 60.0  # see GuardedConsumer._stalled_gaps


class GuardedConsumer(AIOKafkaConsumer):
    """The aiokafka consumer of a worker app with guarded topics (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the app's set (``WorkerApp.guard``), shared: topics guarded later count too
        self.guarded: set[str] = getattr(self.app, "guarded_topics", set())
        self.ledgers: dict[TP, PartitionLedger] = {}
        self._fetch_lock = asyncio.Lock()
        self.redelivered = 0  # partitions fetched again after records could not be delivered
        self.gaps_refetched = 0  # of which found by the backstop (_stalled_gaps)

    # -- what the agents tell ----------------------------------------------------------------
    def is_guarded(self, tp: Any) -> bool:
        return tp.topic in self.guarded

    def ledger(self, tp: Any) -> PartitionLedger:
        tp = ensure_TP(tp)
        led = self.ledgers.get(tp)
        if led is None:
            led = self.ledgers[tp] = PartitionLedger()
        return led

    def processed(self, events: Iterable[faust.EventT]) -> None:
        """The agent is done with these events: outputs acknowledged or dead-lettered."""
        for event in events:
            msg = event.message
            if msg.topic in self.guarded:
                self.ledger(msg.tp).processed(msg.offset)

    def ack(self, message: Any) -> bool:
        """Faust's acknowledgement, kept for what it is used for (``wait_empty`` before a
        rebalance or a stop), but not as progress: commits of guarded topics follow the
        ledger."""
        if message.topic not in self.guarded:
            return super().ack(message)
        with ack_lock:
            if message.acked:
                return False
            message.acked = True
            self._unacked_messages.discard(message)
            notify(self._waiting_for_ack)
            return True

    # -- commits -------------------------------------------------------------------------------
    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Iterable[TP]:
        yield from (tp for tp in super()._filter_tps_with_pending_acks(topics)
                    if not self.is_guarded(tp))
        for tp, led in list(self.ledgers.items()):
            if (topics is None or tp in topics or tp.topic in topics) \
                    and led.committable() is not None:
                yield tp

    def _new_offset(self, tp: TP) -> int | None:
        if self.is_guarded(tp):
            return self.ledger(tp).committable()
        return super()._new_offset(tp)

    def _should_commit(self, tp: TP, offset: int) -> bool:
        if self.is_guarded(tp):
            base = self.ledger(tp).base
            return base is not None and offset > base
        return super()._should_commit(tp, offset)

    async def _commit_offsets(self, offsets: Mapping[TP, int],
                              start_new_transaction: bool = True) -> bool:
        assignment = self.assignment()
        did_commit = await super()._commit_offsets(offsets, start_new_transaction)
        if did_commit:
            for tp, offset in offsets.items():
                if self.is_guarded(tp) and tp in assignment:
                    self.ledger(tp).committed(offset)
        return did_commit

    # -- assignment and seeks --------------------------------------------------------------
    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        await super().on_partitions_revoked(revoked)  # waits for the agents, commits
        for tp in revoked:
            self.ledgers.pop(ensure_TP(tp), None)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        for tp in assigned:  # not delivering until positioned in this generation
            if self.is_guarded(tp):
                self.ledgers[ensure_TP(tp)] = PartitionLedger()
        await super().on_partitions_assigned(assigned, generation_id)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """Position every partition at its committed offset (Faust's ``perform_seek``); a
        guarded partition without one (aiokafka then does not seek at all) at the start of
        its log, and its ledger synced there."""
        async with self._fetch_lock:
            committed = await super().seek_to_committed()
            fresh = [tp for tp, off in committed.items()
                     if self.is_guarded(tp) and not (off and off > 0)]
            starts = dict(await self.earliest_offsets(*fresh)) if fresh else {}
            if starts:
                await self._thread.seek_wait({tp: starts[tp] for tp in fresh})
            for tp, off in committed.items():
                if self.is_guarded(tp):
                    start = off if off and off > 0 else starts[tp]
                    self.ledger(tp).sync(start, base=start)
        return committed

    async def seek(self, partition: TP, offset: int) -> None:
        if not self.is_guarded(partition):
            return await super().seek(partition, offset)
        async with self._fetch_lock:
            await super().seek(partition, offset)
            self.ledger(partition).sync(offset)

    def _stalled_gaps(self) -> None:
        """A backstop: an offset left behind while later ones were processed for
        ``GAP_SECONDS`` (a delivery lost in a way not foreseen above) is fetched again,
        rather than holding the partition's commits forever."""
        now = time.monotonic()
        for tp, led in self.ledgers.items():
            gap = led.gap() if led.synced and led.reseek is None else None
            if gap is None:
                led.gap_seen = None
            elif led.gap_seen is None or led.gap_seen[0] != gap:
                led.gap_seen = (gap, now)
            elif now - led.gap_seen[1] >= GAP_SECONDS:
                log.warning("%s: offset %d not processed while later ones were, for %.0fs: "
                            "fetching again from it", tp, gap, now - led.gap_seen[1])
                led.undelivered(gap)
                led.gap_seen = None
                self.gaps_refetched += 1

    async def _reseek(self) -> None:
        """Fetch again what was fetched but not delivered (between fetches, never during)."""
        if self.app.rebalancing:
            return  # the rebalance ends with a seek to the committed offsets
        self._stalled_gaps()
        pending = {tp: led.reseek for tp, led in self.ledgers.items()
                   if led.reseek is not None and led.base is not None}
        if pending:
            async with self._fetch_lock:
                await self._thread.seek_wait(pending)
                for tp, offset in pending.items():
                    self.ledger(tp).sync(offset)
            self.redelivered += len(pending)
            log.info("fetching again from %s (fetched, not delivered)", pending)

    # -- the drain loop --------------------------------------------------------------------------
    async def _fetch(self, timeout: float) -> tuple[Any, Any, dict[TP, int], int] | None:
        """One fetch, never concurrent with a seek: the records, the partitions fetched, the
        epochs of the guarded partitions when it started, and the generation."""
        if not self.flow_active:
            await self.wait(self.can_resume_flow)  # type: ignore[arg-type]
        active = None if self.app.client_only else self._get_active_partitions()
        if not (self.app.client_only or active):
            await self.sleep(1)
            return None
        async with self._fetch_lock:
            epochs = {tp: led.epoch for tp, led in self.ledgers.items()}
            generation = self.app.consumer_generation_id
            records = await self._getmany(active_partitions=active, timeout=timeout)
        if not records or self.should_stop:
            return None
        return records, active, epochs, generation

    def _flowing(self, tp: TP, active: Any, generation: int) -> bool:
        """Whether Faust would deliver a record of ``tp`` fetched in ``generation`` now."""
        return self.flow_active and self.app.consumer_generation_id == generation and (
            active is None or tp in active or tp in self._buffered_partitions)

    def _deliverable(self, tp: TP, offset: int, epoch: int | None, flowing: bool) -> bool:
        """Whether a fetched record of a guarded partition may go to the agents now."""
        led = self.ledger(tp)
        if epoch != led.epoch:
            return False  # fetched before a seek: stale, the seek fetches it again
        if flowing and led.synced and led.reseek is None and not self.app.rebalancing:
            led.fetched(offset)
            return True
        if led.synced or led.reseek is not None:
            led.undelivered(offset)
        return False

    async def _deliver(self, tp: TP, message: Any, callback: Any) -> bool:
        """Hand ``message`` to the conductor; False when the delivery was abandoned because
        the flow stopped (a rebalance) before the channels took it."""
        self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
        delivery = callback(message)
        result = await self.wait_first(delivery, self.suspend_flow.wait())
        return delivery in result.done

    async def _drain_unguarded(self, tp: TP, message: Any, callback: Any) -> None:
        """Faust's own handling of a record (``Consumer._drain_messages``)."""
        offset = message.offset
        r_offset = self._read_offset[tp]
        if r_offset is None or offset >= r_offset:
            if offset - (r_offset or 0) > 1 and r_offset \
                    and self.app.topics.acks_enabled_for(message.topic):
                await self._add_gap(tp, r_offset + 1, offset)
            if self._commit_every is not None and self._n_acked >= self._commit_every:
                self._n_acked = 0
                await self.commit()
            await self._deliver(tp, message, callback)
            self._read_offset[tp] = offset

    async def _drain_batch(self, records: Any, active: Any, epochs: dict[TP, int],
                           generation: int) -> None:
        callback = self.callback
        for n, (tp, record) in enumerate(self.scheduler.iterate(records)):
            if n % 100 == 99:
                await asyncio.sleep(0)
            flowing = self._flowing(tp, active, generation)
            tp = ensure_TP(tp)
            if not self.is_guarded(tp):
                if flowing:  # (Faust drops the rest of the batch otherwise)
                    await self._drain_unguarded(tp, self._to_message(tp, record), callback)
            elif self._deliverable(tp, record.offset, epochs.get(tp), flowing) \
                    and not await self._deliver(tp, self._to_message(tp, record), callback):
                self.ledger(tp).undelivered(record.offset)  # abandoned: flow stopped

    async def _drain_messages(self, fetcher: Any) -> None:
        """Replaces Faust's drain loop (``Consumer._drain_messages``): the same delivery for
        other topics, the guarded one for ours."""
        try:
            while not (self._stopped.is_set() or fetcher._stopped.is_set()):
                await self._reseek()
                await self.sleep(0)
                fetched = await self._fetch(timeout=1.0)
                if fetched is not None and not self.should_stop:
                    await self._drain_batch(*fetched)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise


class GuardedTransport(AIOKafkaTransport):
    """Faust's aiokafka transport with the guarded consumer."""

    Consumer = GuardedConsumer


class WorkerApp(faust.App):
    """A Faust app whose consumer guards the offsets of the topics given to ``guard``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.guarded_topics: set[str] = set()
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return GuardedTransport(self.conf.broker_consumer, self)

    def guard(self, topic: str) -> None:
        """Commit ``topic``'s offsets only as far as ``processed`` was told."""
        self.guarded_topics.add(topic)

    def processed(self, events: Sequence[faust.EventT]) -> None:
        """An agent is done with ``events``: outputs acknowledged, or dead-lettered."""
        consumer = self.consumer
        if isinstance(consumer, GuardedConsumer):
            consumer.processed(events)
