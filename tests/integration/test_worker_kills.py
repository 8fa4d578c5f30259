"""The worker SIGKILLed and restarted, checked raw offset by raw offset (issue 17, item 2).

Each test audits every message of the raw topic (``streams.demo.audit``): each of its records
is an event document in Elasticsearch or a dead letter, no event id has two documents, and the
group's committed offsets reach the end of every partition (nothing left uncommitted, nothing
committed that was not processed). The window counts equal a batch recomputation over the
indexed events (``tests/pipelines/windows_exact.py``).

- a restart with a backlog of more than 500 raw messages per partition waiting and the tables'
  changelogs holding state: the case where faust-streaming dropped the messages queued while it
  recovered and committed past them (DESIGN.md, "Known trap");
- five SIGKILLs at random points of one run while container logs are written and a
  collector publishes them (``streams.demo.faults``).
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path

from test_faults import START, _assert_exact
from test_windows_worker import PIPELINE

from streams.demo.audit import Audit, audit, committed_offsets, end_offsets
from streams.demo.chain import WorkerProcess, wait_until_consumed
from streams.demo.loggen import generate
from streams.ops.config import Settings
from streams.sources.checkpoints import CheckpointStore
from streams.sources.files import FileTailer, default_node_globs
from streams.transport.kafka import KafkaPublisher, ensure_topics

NAME = "winexact"


def _tail(path: Path, n: int = 4000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"


async def _publish_small(settings: Settings, root: Path, checkpoints: Path,
                         read_size: int = 1500) -> tuple[int, int]:
    """Collect ``root`` in small raw messages (about ``read_size`` bytes of lines each), so
    the worker has many messages waiting. Returns (records, messages)."""
    topic = settings.topic("logs.raw")
    await ensure_topics(settings.kafka_bootstrap, [topic], partitions=4)
    async with KafkaPublisher(settings.kafka_bootstrap, topic) as publisher:
        tailer = FileTailer(default_node_globs(str(root)), publisher,
                            CheckpointStore(checkpoints), read_size=read_size)
        try:
            return await tailer.drain(), publisher.messages
        finally:
            tailer.close()


def _group(settings: Settings) -> str:
    return f"{settings.topic_prefix}logriver-{NAME}"


def _changelog_messages(settings: Settings) -> int:
    topic = f"{_group(settings)}-windows-{NAME}-changelog"
    return sum(asyncio.run(end_offsets(settings, topic)).values())


def _wait_consumed(settings: Settings, worker: WorkerProcess, log_path: Path,
                   timeout: float = 120) -> int:
    """The group's lag on the raw topic once it reached 0, or after ``timeout``."""
    lag = asyncio.run(wait_until_consumed(settings, _group(settings), settings.topic("logs.raw"),
                                          timeout=timeout))
    assert worker.alive(), _tail(log_path)
    return lag


def _assert_audit(settings: Settings, expected_records: int, lag: int) -> Audit:
    """Every raw record indexed or dead-lettered, once; and every offset committed."""
    a = asyncio.run(audit(settings, NAME))
    assert not a.lost, f"lost: {a.lost[:5]}; {a.summary()}"
    assert a.raw_records == expected_records, a.summary()
    assert not a.duplicated, f"duplicated: {list(a.duplicated.items())[:5]}"
    assert lag == 0 and a.committed == {p: o for p, o in a.end_offsets.items() if o}, \
        f"offsets not committed (the commit stalls): lag {lag}; {a.summary()}"
    return a


FAULTS = Path(__file__).resolve().parent / "faultinject"  # its sitecustomize.py


def test_restart_with_a_backlog_and_changelogs_loses_nothing(settings, tmp_path: Path,
                                                               monkeypatch):
    """The restarted worker's seek to the committed offsets is slowed down by 2 s (as on a
    loaded machine): Faust delivers the waiting records meanwhile, then clears the queues."""
    first = generate(tmp_path / "log1", 3000, seed=21, start=START, entries_per_second=20)
    _, m1 = asyncio.run(_publish_small(settings, first.root, tmp_path / "cp1.json"))
    log1 = tmp_path / "w1.log"
    with WorkerProcess(PIPELINE, settings, log_path=log1) as worker:
        assert _wait_consumed(settings, worker, log1) == 0, _tail(log1)
        deadline = time.monotonic() + 60
        while _changelog_messages(settings) == 0:  # window state written
            assert time.monotonic() < deadline, "no window state in the changelog"
            time.sleep(1)
        worker.kill()
    # While it is down, a backlog: > 500 raw messages per partition (the first buffer).
    second = generate(tmp_path / "log2", 12000, seed=22, start=START + timedelta(minutes=5),
                      entries_per_second=20)
    _, m2 = asyncio.run(_publish_small(settings, second.root, tmp_path / "cp2.json"))
    ends = asyncio.run(end_offsets(settings, settings.topic("logs.raw")))
    before = asyncio.run(committed_offsets(settings, _group(settings), settings.topic("logs.raw")))
    assert max(ends[p] - before.get(p, 0) for p in ends) > 500, (ends, before)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(FAULTS), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setenv("LOGRIVER_TEST_SLOW_SEEK", "2")
    log2 = tmp_path / "w2.log"
    with WorkerProcess(PIPELINE, settings, log_path=log2) as worker:
        lag = _wait_consumed(settings, worker, log2)
        a = _assert_audit(settings, first.events + second.events, lag)
        windows = _assert_exact(settings, first.events + second.events, worker)
    print(f"\nrestart with a backlog: {m1}+{m2} raw messages, {a.summary()}, {windows} windows exact")


def test_five_kills_at_random_points_lose_nothing(settings, tmp_path: Path):
    """20,400 lines written by twelve containers over about 40 s, collected live (many small
    raw messages: several hundred wait while the worker is down); the worker SIGKILLed five
    times, each at a random point after it made progress, and restarted."""
    from streams.demo.faults import Container, KillPlan, run_with_kills

    containers = [Container(w, rotation="rename" if w % 2 else None) for w in range(12)]
    # Event time 3 h back: the windows (lateness 1 h) close once the input is idle.
    plan = KillPlan(worker_kills=5, collector_kills=0, lines_each=1700, rotate_every=600,
                    batch=20, pause=0.45, seed=5, age=3 * 3600)
    run = run_with_kills(settings, PIPELINE, NAME, containers, plan, tmp_path,
                         check=lambda worker: _assert_exact(settings, 20400, worker))
    assert run.timeline.count("worker") == 5, run.summary()
    assert not run.content.lost and not run.content.duplicated, run.summary()
    assert not run.content.unexpected, run.summary()
    assert not run.raw.lost and not run.raw.duplicated, run.summary()
    assert run.raw.committed == {p: o for p, o in run.raw.end_offsets.items() if o}, run.summary()
    assert run.window_lag == 0, run.summary()
    print(f"\nfive kills: {run.summary()}; {run.checked} windows exact")
