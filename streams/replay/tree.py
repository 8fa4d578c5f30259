"""Replay what a node holds: a log folder in the node agent's layouts, files or globs.

``logriver replay /var/log`` reads the tree as the node agent does (``FileTailer`` over
``default_node_globs``: kubelet's ``containers/`` symlinks and ``pods/`` files and their
rotated copies, docker json-file or CRI detected per file, partial lines reassembled, stack
traces merged by the same multiline rules, the same Kubernetes metadata from the paths),
then runs the pipeline on the events of every file merged in event time, with the same
windows, detectors and alerts as the worker.

Two passes, bounded memory. First the tailer reads every file as the node agent does, a
chunk of each file in turn, and each chunk is structured as the worker structures what the
agent published: templates mined per raw partition (``LocalRun.miner_for``), in the same
order, so they get the same names; the events are spooled to disk, one spool per file.
Then the spools are merged on the events' time (``heapq.merge``) and counted in the windows
in that order, as one stream.

Layouts a folder is read in: a node's log root (it holds ``containers/`` or ``pods/``),
kubelet's ``pods/`` or ``containers/`` folder itself, docker's ``containers/<id>/<id>-json.log``
folder; any other folder: every ``*.log`` file below it.
"""

from __future__ import annotations

import asyncio
import glob as globmod
import heapq
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from streams.pipeline import Event, Pipeline
from streams.replay.runner import LocalRun, Summary
from streams.sources.checkpoints import CheckpointStore
from streams.sources.files import FileTailer, default_node_globs
from streams.transport.deadletter import DeadLetter
from streams.transport.events import parse_time_us
from streams.transport.records import Record

BATCH = 2000  # merged events counted at a time
ALIASES = "\x00aliases"  # a spooled entry that says templates were merged, not an event


def replay_globs(path: str) -> list[str]:
    """The globs that read ``path``: a folder in one of the agent's layouts, a file, a glob."""
    p = Path(path)
    if not p.is_dir():
        return [path]
    if (p / "containers").is_dir() or (p / "pods").is_dir():
        return default_node_globs(path)
    if p.name == "pods":
        return [str(p / "*" / "*" / "*.log"), str(p / "*" / "*" / "*.log.*")]
    if globmod.glob(str(p / "*" / "*-json.log")):  # docker's own folder
        return [str(p / "*" / "*-json.log"), str(p / "*" / "*-json.log.*")]
    if p.name == "containers" or globmod.glob(str(p / "*.log")):
        return [str(p / "*.log")]
    return sorted(str(Path(d) / f) for d, _, files in os.walk(p) for f in files
                  if f.endswith(".log"))


class _Spool:
    """The tailer's publisher: structures each chunk it is handed (as the worker would),
    and appends the events to the spool of the file they come from."""

    def __init__(self, folder: Path, run: LocalRun) -> None:
        self.folder = folder
        self.run = run
        self.files: dict[str, tuple[Path, BinaryIO]] = {}
        self.events = 0

    async def publish(self, key: bytes, records: list[Record]) -> None:
        await asyncio.sleep(0)  # let the other files' reads go first, as a broker's ack does
        self.write(key, records)

    def write(self, key: bytes, records: list[Record]) -> None:
        events, _ = self.run.structure(records, key)
        aliases, self.run.aliases = self.run.aliases, {}
        if aliases and events:  # the worker tells the windows before this chunk's rows
            marker = {"@timestamp": events[0]["@timestamp"], ALIASES: aliases,
                      "log": events[0].get("log")}
            events = [marker, *events]
        for ev in events:
            src = ((ev.get("log") or {}).get("file") or {}).get("path") or ""
            entry = self.files.get(src)
            if entry is None:
                spool = self.folder / f"{len(self.files):06d}.jsonl"
                entry = self.files[src] = (spool, open(spool, "ab"))  # noqa: SIM115
            entry[1].write(orjson.dumps(ev, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS))
        self.events += sum(1 for ev in events if ALIASES not in ev)

    def close(self) -> list[Path]:
        for _, fh in self.files.values():
            fh.close()
        return [spool for spool, _ in self.files.values()]


def _read(spool: Path, index: int) -> Iterator[tuple[int, int, int, Event]]:
    with spool.open("rb") as fh:
        for n, line in enumerate(fh):
            ev = orjson.loads(line)
            ts = parse_time_us(ev.get("@timestamp"))
            yield (-1 if ts is None else ts), index, n, ev


async def _tail_all(tailer: FileTailer) -> None:
    """Read every file to its end (what the tailer holds in assembly included)."""
    while True:
        n = await tailer.poll_once()
        done = all(tf.offset >= os.fstat(tf.fh.fileno()).st_size for tf in tailer.files.values())
        if n == 0 and done:
            break
    await tailer.flush_pending()


def replay_tree(
    paths: list[str],
    pipeline: Pipeline,
    *,
    fmt: str | None = None,
    progress: Callable[[str, int], None] | None = None,
    on_events: Callable[[list[Event], list[DeadLetter]], None] | None = None,
    on_windows: Callable[[list[Event], list[Event]], None] | None = None,
    metadata: dict[str, Any] | None = None,
    spool_dir: str | None = None,
) -> Summary:
    """Replay the files of ``paths`` (folders, files, globs) merged in event time.
    ``progress(phase, count)``: ``("read", events structured)`` then ``("replay", events
    counted)``."""
    run = LocalRun(pipeline)
    if on_events:
        run.on_events.append(on_events)
    if on_windows:
        run.on_windows.append(on_windows)
    globs = [g for p in paths for g in replay_globs(p)]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=spool_dir) as tmp:
        spool = _Spool(Path(tmp), run)
        tailer = FileTailer(globs, spool, CheckpointStore(Path(tmp) / "checkpoints.json"),
                            fmt=fmt, extra_metadata=metadata, poll_interval=0.0,
                            release_after=0.0)
        try:
            asyncio.run(_tail_all(tailer))
        finally:
            tailer.close()
            spools = spool.close()
        if progress:
            progress("read", spool.events)
        merged = heapq.merge(*(_read(s, i) for i, s in enumerate(spools)))
        batch: list[Event] = []
        done = 0
        for *_, ev in merged:
            if ALIASES in ev:
                run.count(batch)
                done += len(batch)
                batch = []
                run.aliases.update(ev[ALIASES])
                continue
            batch.append(ev)
            if len(batch) >= BATCH:
                run.count(batch)
                done += len(batch)
                batch = []
                if progress:
                    progress("replay", done)
        if batch:
            run.count(batch)
            if progress:
                progress("replay", done + len(batch))
    run.finish()
    run.summary.seconds = time.perf_counter() - started
    return run.summary
