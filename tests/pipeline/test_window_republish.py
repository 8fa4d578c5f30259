"""A line the node agent publishes twice counts once in its windows.

A collector SIGKILLed before its checkpoint was written reads its files again from the
checkpoint: the lines come back with their ids (file identity + offset) at new raw offsets.
Elasticsearch keeps one document per id, but the window agent skipped re-delivered rows by
raw position only, so (measured with ``benchmarks/bench_kills.py``):

- a republished line in a later buffer was counted twice (windows over-counted);
- a republished line in the same buffer as its first copy gave the first copy its raw position
  (positions were looked up by event id), so the rows of another file between the two copies
  came after a later position and were skipped as re-delivered: 74 events of a copytruncated
  container never counted (windows under-counted).

The raw messages here are what the node agent publishes (``FileTailer``), the buffers go
through the worker's own steps: ``StructureAgent.decode`` (raw positions), the pipeline,
``window_messages`` and ``WindowWorker._apply_rows``; the windows must equal a batch
recomputation over the distinct events.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import orjson

from streams.ops.stats import WorkerStats
from streams.pipeline import load_pipeline
from streams.sources.checkpoints import CheckpointStore
from streams.sources.files import FileTailer
from streams.transport.records import encode_batch
from streams.windows import batch_recompute
from streams.windows.agent import WindowWorker
from streams.windows.rows import decode_window_input, window_messages
from streams.windows.spec import row_fields
from streams.windows.stage import WindowStage, partition_fields
from streams.worker.structure import StructureAgent

PIPELINE = Path(__file__).resolve().parents[1] / "pipelines" / "windows_exact.py"
CID = "3" * 64
BATCH = 25


def _write(path: Path, first: int, n: int) -> None:
    with path.open("ab") as f:
        for i in range(first, first + n):
            f.write(orjson.dumps({"log": f"c seq {i:05d} status=ok\n", "stream": "stdout",
                                  "time": f"2026-03-01T00:{i // 60 % 60:02d}:{i % 60:02d}.0Z"})
                    + b"\n")


def _collect(files: list[Path], checkpoints: Path) -> list[list[dict]]:
    """Raw messages (record batches of ``BATCH``) a node agent publishes reading ``files``
    from its checkpoints in ``checkpoints``."""
    out: list[list[dict]] = []

    class Sink:
        async def publish(self, key: bytes, recs: list[dict]) -> None:
            out.extend(recs[i:i + BATCH] for i in range(0, len(recs), BATCH))

    tailer = FileTailer([str(f) for f in files], Sink(), CheckpointStore(checkpoints),
                        poll_interval=0.0, release_after=0.0)
    try:
        asyncio.run(tailer.drain())
    finally:
        tailer.close()
    return out


def _raw_messages(tmp_path: Path) -> list[list[dict]]:
    """One raw partition's messages: container a's first lines, container b's lines (same
    namespace), then container a's lines again from a lost checkpoint, with new ones."""
    logs = tmp_path / "containers"
    logs.mkdir()
    a = logs / f"app-3_ns3_a-{CID}.log"
    b = logs / f"app-3_ns3_b-{CID[:-1]}4.log"
    _write(a, 0, BATCH)
    first = _collect([a], tmp_path / "cp-a.json")  # its checkpoint is lost: the agent was killed
    _write(b, 1000, 3 * BATCH - 1)
    between = _collect([b], tmp_path / "cp-b.json")
    _write(a, BATCH, BATCH)
    again = _collect([a], tmp_path / "cp-a2.json")  # read from the start again, same ids
    ids = [r["id"] for m in first for r in m]
    assert [r["id"] for m in again for r in m][:len(ids)] == ids
    return first + between + again


def _fevent(partition: int, offset: int, records: list[dict]) -> SimpleNamespace:
    msg = SimpleNamespace(topic="raw", partition=partition, offset=offset, key=b"node-1/ns3",
                          tp=None)
    return SimpleNamespace(message=msg, value=encode_batch(records))


def _windows(buffers: list[list[SimpleNamespace]]) -> tuple[list[dict], list[dict]]:
    """The window documents of ``buffers`` of raw messages processed by the worker's steps,
    and the distinct events."""
    p = load_pipeline(str(PIPELINE))
    stats = WorkerStats(pipeline=p.name)
    structure = StructureAgent.__new__(StructureAgent)  # its steps, without a Faust app
    structure.app, structure.stats, structure.pipeline = SimpleNamespace(consumer=None), stats, p
    structure.windows = True
    windows = WindowWorker.__new__(WindowWorker)
    windows.stats = stats
    stage = WindowStage(p.name, p.windows)
    applied: dict[str, list[int]] = {}
    key_paths = [tuple(f.split(".")) for f in partition_fields(p.windows)]
    events: dict[str, dict] = {}
    for buffer in buffers:
        decoded = structure.decode(buffer)
        evs = [ev for recs in decoded.by_partition.values() for ev in p.structure(recs, None).events]
        events.update((ev["event"]["id"], ev) for ev in evs)
        items, letters = window_messages(evs, decoded.positions, key_paths, row_fields(p.windows),
                                         1 << 20, pipeline=p.name)
        assert not letters
        for key, value in items:
            assert windows._apply_rows(stage, applied, key.decode(), decode_window_input(value)) == []
    docs = stage.flush()[0]
    return docs, list(events.values())


def _counts(docs: list[dict]) -> dict[tuple, int]:
    return {(d["window"]["name"], d["window"]["start"], str(sorted(d["key"].items()))): d["count"]
            for d in docs}


def _expected(events: list[dict]) -> dict[tuple, int]:
    p = load_pipeline(str(PIPELINE))
    return _counts(batch_recompute(events, p.windows, pipeline=p.name))


def test_lines_published_twice_in_one_buffer_count_once(tmp_path):
    raw = [_fevent(3, 90 + i, recs) for i, recs in enumerate(_raw_messages(tmp_path))]
    docs, events = _windows([raw])
    assert len(events) == 5 * BATCH - 1  # (a's and b's last lines are held: no newline after)
    assert _counts(docs) == _expected(events)


def test_lines_published_twice_in_two_buffers_count_once(tmp_path):
    raw = [_fevent(3, 90 + i, recs) for i, recs in enumerate(_raw_messages(tmp_path))]
    docs, events = _windows([raw[:4], raw[4:]])
    assert _counts(docs) == _expected(events)


def test_buffers_delivered_again_after_a_worker_crash_count_once(tmp_path):
    raw = [_fevent(3, 90 + i, recs) for i, recs in enumerate(_raw_messages(tmp_path))]
    docs, events = _windows([raw[:3], raw[1:5], raw])
    assert _counts(docs) == _expected(events)


def test_file_streams_are_forgotten_once_their_windows_closed(tmp_path):
    """The window state remembers each file stream's last line until every window holding
    it closed, not forever (files rotate: new streams keep coming)."""
    from streams.windows.agent import _forget_closed_files

    p = load_pipeline(str(PIPELINE))
    stage = WindowStage(p.name, p.windows)
    agg = stage.aggregator
    t0 = 1_772_323_200 * 10**6
    applied = {"f7|ns3": [100, t0], "f8|ns3": [50, t0 + 3600 * 10**6], "3|ns3": [9, 0]}
    _forget_closed_files(applied, agg)  # nothing closed yet
    assert set(applied) == {"f7|ns3", "f8|ns3", "3|ns3"}
    agg.closed_upto = [t0 + 600 * 10**6 for _ in agg.specs]
    _forget_closed_files(applied, agg)
    assert set(applied) == {"f8|ns3", "3|ns3"}  # raw positions are kept (bounded by partitions)
