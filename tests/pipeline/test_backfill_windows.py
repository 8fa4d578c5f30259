"""A node agent catching up on hours of logs reads each container's backlog at its own pace:
streams of one raw partition are far apart in event time. Windows track event-time progress
per stream, so every event still counts (the metrics equal a batch recomputation); with one
watermark for the whole input, most of the lagging streams' events were dead-lettered late."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from pathlib import Path

from streams.demo.loggen import generate
from streams.pipeline import load_pipeline
from streams.sources.checkpoints import CheckpointStore
from streams.sources.files import FileTailer
from streams.windows import batch_recompute
from streams.windows.stage import WindowStage

CHUNK = 200  # records per publish: how far apart streams drift between two reads


def _streams(tmp_path: Path) -> dict[bytes, list[dict]]:
    """Raw records per stream key, as the node agent publishes them."""
    generate(tmp_path / "log", 12_000, seed=5, start=datetime(2026, 3, 1, tzinfo=UTC))
    out: dict[bytes, list[dict]] = {}

    class Sink:
        async def publish(self, key: bytes, recs: list[dict]) -> None:
            out.setdefault(key, []).extend(recs)

    tailer = FileTailer([str(tmp_path / "log" / "containers" / "*.log")], Sink(),
                        CheckpointStore(tmp_path / "cp.json"), poll_interval=0.0, release_after=0.0)
    try:
        asyncio.run(tailer.drain())
    finally:
        tailer.close()
    return out


def _run(buffers: list[list[tuple[bytes, list[dict]]]], per_stream: bool):
    p = load_pipeline("kubernetes")
    miner = p.new_miner()
    stage = WindowStage(p.name, p.windows)  # no detectors: the counts are what is compared
    events, late, docs = [], [], []
    for buffer in buffers:  # closed after each buffer, as the worker does
        for key, recs in buffer:
            evs = p.structure(recs, miner).events
            events += evs
            late += stage.add(evs, source=key if per_stream else 0)
        docs += stage.close()[0]
    docs += stage.flush()[0]
    return events, late, docs


def _counts(docs: list[dict]) -> dict[tuple, int]:
    return {(d["window"]["name"], d["window"]["start"], str(sorted(d["key"].items()))): d["count"]
            for d in docs}


def test_streams_read_at_different_paces_count_every_event(tmp_path):
    streams = _streams(tmp_path)
    assert len(streams) >= 5
    # Each buffer holds one read of every stream still being read, as the worker's buffers
    # hold the node agent's concurrent reads of every file; the reads are of different
    # sizes, so the streams' event times drift apart by tens of minutes.
    sizes = [CHUNK // 4, CHUNK // 2, CHUNK, 2 * CHUNK, 4 * CHUNK, 8 * CHUNK]
    queues = {k: [v[i:i + n] for i in range(0, len(v), n)]
              for (k, v), n in zip(streams.items(), itertools.cycle(sizes))}
    buffers = [[(k, c) for k, c in zip(queues, rnd) if c]
               for rnd in itertools.zip_longest(*queues.values())]
    events, late, docs = _run(buffers, per_stream=True)
    assert late == []
    p = load_pipeline("kubernetes")
    assert _counts(docs) == _counts(batch_recompute(events, p.windows, pipeline=p.name))
    # the same buffers with one watermark for the whole input: the lagging streams' events
    # are dead-lettered as late
    _, late_one, _ = _run(buffers, per_stream=False)
    assert len(late_one) > len(events) // 10
