"""The worker's commit guard (``streams/worker/offsets.py``, ``streams/worker/consumer.py``):
an offset is committed only when every offset since the last commit was processed by an
agent or proven absent from the log.

The last tests replay, on the worker app's real consumer object (no broker), the sequence that
lost raw messages after a SIGKILL (DESIGN.md, "Known trap"): Faust acks messages it skipped,
records a false gap after a seek, and then commits past messages that were cleared from an
agent's queue. Before the guard, the worker committed past them."""

from __future__ import annotations

import random

import pytest

from streams.worker.offsets import IntervalSet, PartitionLedger

# -- IntervalSet -------------------------------------------------------------------------------


def test_interval_set_merges_and_reports_the_first_uncovered_offset():
    s = IntervalSet()
    s.add(5, 6)
    s.add(7, 9)
    assert s.covered_from(5) == 6 and s.covered_from(7) == 9 and s.covered_from(3) == 3
    s.add(6, 7)  # fills the hole: one interval
    assert len(s) == 1 and s.covered_from(5) == 9
    s.add(2, 5)
    assert s.covered_from(2) == 9 and 8 in s and 9 not in s
    s.discard_below(4)
    assert 3 not in s and s.covered_from(4) == 9


def test_interval_set_against_a_plain_set():
    rng = random.Random(7)
    for _ in range(200):
        s, ref = IntervalSet(), set()
        for _ in range(rng.randint(1, 30)):
            a = rng.randint(0, 60)
            b = a + rng.randint(0, 6)
            s.add(a, b)
            ref.update(range(a, b))
            if rng.random() < 0.1:
                cut = rng.randint(0, 60)
                s.discard_below(cut)
                ref = {x for x in ref if x >= cut}
        for x in range(70):
            assert (x in s) == (x in ref)
            expect = x
            while expect in ref:
                expect += 1
            assert s.covered_from(x) == expect


# -- PartitionLedger ---------------------------------------------------------------------------


def test_nothing_committable_before_the_committed_offset_is_known():
    led = PartitionLedger()
    led.processed(0)
    assert led.committable() is None
    led.sync(0, base=0)
    led.processed(0)
    assert led.committable() == 1


def test_commit_stops_at_the_first_offset_not_processed():
    led = PartitionLedger()
    led.sync(100, base=100)
    for o in range(100, 106):
        led.fetched(o)
    for o in (100, 101, 102, 104, 105):  # 103 delivered, never processed
        led.processed(o)
    assert led.committable() == 103
    led.committed(103)
    assert led.committable() is None
    led.processed(103)
    assert led.committable() == 106


def test_holes_are_proven_only_by_the_fetch_chain():
    led = PartitionLedger()
    led.sync(10, base=10)
    for o in (12, 13, 17):  # the fetcher returned these after a seek to 10: 10, 11, 14-16 absent
        led.fetched(o)
    for o in (12, 13, 17):
        led.processed(o)
    assert led.committable() == 18


def test_a_record_not_delivered_breaks_the_chain_and_asks_to_fetch_again():
    led = PartitionLedger()
    led.sync(0, base=0)
    led.fetched(0)
    led.processed(0)
    led.undelivered(1)  # fetched, dropped (a rebalance started)
    assert led.reseek == 1 and not led.synced
    led.fetched(5)  # (no chain: nothing proven between 1 and 5)
    led.processed(5)
    assert led.committable() == 1
    led.sync(1)  # fetched again from 1
    assert led.reseek is None and led.synced
    for o in (1, 2, 3, 4):
        led.fetched(o)
        led.processed(o)
    assert led.committable() == 6


def test_a_seek_starts_a_new_epoch_and_keeps_what_was_processed():
    led = PartitionLedger()
    led.sync(50, base=50)
    e = led.epoch
    led.processed(50)
    led.processed(52)
    led.sync(50, base=50)
    assert led.epoch == e + 1
    assert led.committable() == 51
    led.processed(51)
    assert led.committable() == 53


def test_committed_moves_the_base_and_forgets_below():
    led = PartitionLedger()
    led.sync(0, base=0)
    for o in range(10):
        led.processed(o)
    led.committed(10)
    assert led.base == 10 and led.committable() is None and len(led.done) == 0
    led.committed(5)  # an older commit never moves it back
    assert led.base == 10


def test_a_gap_is_an_offset_left_behind_by_processing_not_a_hole_or_a_slow_buffer():
    led = PartitionLedger()
    led.sync(0, base=0)
    for o in (0, 1, 5):  # fetched: 2-4 absent from the log
        led.fetched(o)
    assert led.gap() is None  # holes ahead of a buffer still being processed: no gap
    led.processed(0)
    assert led.gap() is None
    led.processed(5)  # 1 was delivered before 5 and is not processed: left behind
    assert led.gap() == 1
    led.processed(1)
    assert led.gap() is None and led.committable() == 6


def test_the_backstop_fetches_a_gap_again_after_a_while(monkeypatch, consumer):
    from faust.types import TP

    from streams.worker import consumer as guarded

    _, c, topic = consumer
    tp = TP(topic, 0)
    led = c.ledger(tp)
    led.sync(0, base=0)
    for o in range(4):
        led.fetched(o)
    led.processed(0)
    led.processed(3)  # 1 and 2 were discarded somewhere
    now = [1000.0]
    monkeypatch.setattr(guarded.time, "monotonic", lambda: now[0])
    c._stalled_gaps()
    assert led.reseek is None  # seen, not yet old
    now[0] += guarded.GAP_SECONDS
    c._stalled_gaps()
    assert led.reseek == 1 and c.gaps_refetched == 1  # the drain loop seeks back to 1


# -- the worker app's consumer, replaying the loss -------------------------------------------


class _Event:
    def __init__(self, message):
        self.message = message

    def ack(self):
        return self.message.ack(_Event.consumer)


@pytest.fixture
def consumer(tmp_path):
    from streams.ops.config import Settings
    from streams.pipeline import load_pipeline
    from streams.worker.app import build_app

    settings = Settings(kafka_bootstrap="127.0.0.1:1", es_url="http://127.0.0.1:1",
                        topic_prefix="unit.", state_dir=tmp_path)
    worker = build_app(load_pipeline("kubernetes"), settings)
    c = worker.app.consumer
    _Event.consumer = c
    topic = settings.topic("logs.raw")
    worker.app.topics._acking_topics.add(topic)  # as once the agents subscribed
    yield worker.app, c, topic


def _message(topic, offset, generation=1):
    from faust.types import TP
    from faust.types.tuples import ConsumerMessage

    return ConsumerMessage(topic, 0, offset, 0.0, 0, None, b"k", b"v", None, tp=TP(topic, 0),
                           generation_id=generation)


def _process(app, events):
    """What an agent does with a buffer: process it, then Faust acks it (take_events)."""
    processed = getattr(app, "processed", None)
    if processed is not None:
        processed(events)
    for ev in events:
        ev.message.incref()
        ev.ack()


def _skip(events):
    """What ``Stream.__aiter__`` does with a message of an old generation: ack, unprocessed."""
    for ev in events:
        ev.message.incref()
        ev.ack()


def _commit_rounds(c, tp) -> int | None:
    """Commit as the consumer's commit timer would, until nothing moves (what
    ``_commit_offsets`` records after the broker accepted it); the last offset committed."""
    last = None
    for _ in range(5000):
        offsets = c._filter_committable_offsets(list(c._filter_tps_with_pending_acks()))
        if tp not in offsets:
            return last
        last = offsets[tp]
        c._committed_offset[tp] = last
        if hasattr(c, "ledger"):
            c.ledger(tp).committed(last)
    return last


def test_the_worker_never_commits_past_messages_cleared_from_a_queue(consumer):
    from faust.types import TP

    app, c, topic = consumer
    tp = TP(topic, 0)
    app.consumer_generation_id = 1
    # Restarted with 100 committed: Faust's perform_seek, then the agent's first buffer.
    c._committed_offset[tp] = 100
    c._read_offset[tp] = 100
    if hasattr(c, "ledger"):
        c.ledger(tp).sync(100, base=100)
    _process(app, [_Event(_message(topic, o)) for o in range(100, 600)])
    # 600-849 were in the agent's channel queue when flow_control.resume() cleared it; the
    # drain loop, its read offset overwritten by the seek, records a "gap" up to the next
    # record it delivers, and the agent processes 850 onwards.
    import asyncio

    asyncio.run(c._add_gap(tp, 101, 849))
    _process(app, [_Event(_message(topic, o)) for o in range(850, 1000)])
    # A message of the previous generation skipped (and acked) by the stream.
    _skip([_Event(_message(topic, 1000, generation=0))])
    committed = _commit_rounds(c, tp)
    assert committed == 600, f"committed {committed}: 600-849 were never processed"


def test_the_worker_commits_what_was_processed_in_order(consumer):
    from faust.types import TP

    app, c, topic = consumer
    tp = TP(topic, 0)
    app.consumer_generation_id = 1
    c._committed_offset[tp] = 0
    c.ledger(tp).sync(0, base=0)
    for o in range(10):
        c.ledger(tp).fetched(o)
    _process(app, [_Event(_message(topic, o)) for o in range(10)])
    assert _commit_rounds(c, tp) == 10


def test_the_raw_and_the_window_topics_are_guarded(consumer):
    """Both agents' inputs: the window agent is protected like the structure agent."""
    from streams.worker.consumer import GuardedConsumer

    app, c, topic = consumer
    assert isinstance(c, GuardedConsumer)
    assert app.guarded_topics == {topic, "unit.logs.windows.kubernetes"}
