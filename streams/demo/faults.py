"""Fault runs of the whole chain: container logs written and rotated the way kubelet, dockerd
and logrotate do, a collector and workers as processes SIGKILLed at random points, and the
accounting of every line written against what Elasticsearch holds.

Used by ``tests/integration/test_worker_kills.py``, ``tests/integration/test_rotation_kills.py``
and ``benchmarks/bench_kills.py``.

Layouts (``root`` stands for ``/var/log``, ``docker_root`` for ``/var/lib/docker``):

- ``kubelet`` (containerd, CRI-O): the file is ``root/pods/<ns>_<pod>_<uid>/<container>/0.log``,
  ``root/containers/<pod>_<ns>_<container>-<id>.log`` a symlink to it. Rename rotation is
  kubelet's: ``0.log`` becomes ``0.log.<YYYYMMDD-HHMMSS>`` and the runtime reopens ``0.log``.
- ``dockerd`` (dockershim, cri-dockerd): the file is ``docker_root/containers/<id>/<id>-json.log``,
  ``root/pods/.../0.log`` a symlink to it and ``root/containers/...log`` a symlink to that one.
  Rename rotation is dockerd's json-file driver: ``.1`` becomes ``.2`` and so on, the file becomes
  ``<id>-json.log.1``, and a new file is opened.
- copytruncate (logrotate), in either layout: the file is copied to its next rotated name, then
  truncated in place while the writer keeps its descriptor.
Both runtime formats can be written in both layouts (``docker`` json-file, ``cri``); every
``SPLIT_EVERY``-th line is split in runtime chunks (docker pieces, CRI ``P``...``F``).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import random
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import orjson

from streams.demo.chain import ChildProcess
from streams.ops import config

SPLIT_EVERY = 41
_SEQ = re.compile(r"\bw(\d+) seq (\d+)\b")


@dataclass(frozen=True)
class Container:
    """One writer: a container's log in a layout and format, rotated one way."""

    index: int
    layout: str = "kubelet"  # or "dockerd"
    fmt: str = "docker"  # or "cri"
    rotation: str | None = "rename"  # or "copytruncate", or None

    @property
    def cid(self) -> str:
        return f"{self.index:x}{'c' * 63}"[:64]

    @property
    def names(self) -> tuple[str, str, str, str]:
        """namespace, pod, pod uid, container name"""
        w = self.index
        return f"ns{w}", f"app-{w}", f"0000000{w % 10}-aaaa-bbbb-cccc-dddddddddd{w:02d}", f"c{w}"

    def paths(self, root: Path, docker_root: Path) -> tuple[Path, Path, Path | None]:
        """(the file written, the containers/ symlink, the pods/ symlink or None)."""
        ns, pod, uid, name = self.names
        pod_dir = root / "pods" / f"{ns}_{pod}_{uid}" / name
        link = root / "containers" / f"{pod}_{ns}_{name}-{self.cid}.log"
        if self.layout == "kubelet":
            return pod_dir / "0.log", link, None
        return docker_root / "containers" / self.cid / f"{self.cid}-json.log", link, pod_dir / "0.log"


def line_text(w: int, i: int) -> str:
    return f"w{w} seq {i:06d} order={i * 7 % 1000} status=ok"


def _frame(fmt: str, text: str, ts: str) -> bytes:
    if fmt == "docker":
        return orjson.dumps({"log": text, "stream": "stdout", "time": ts}) + b"\n"
    tag = "F" if text.endswith("\n") else "P"
    return f"{ts} stdout {tag} {text.rstrip(chr(10))}\n".encode()


def encode_line(fmt: str, text: str, split: bool, age: float = 0.0) -> bytes:
    """``text`` as the runtime writes it, stamped ``age`` seconds before now."""
    ns = time.time_ns() - int(age * 1e9)
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"
    if not split:
        return _frame(fmt, text + "\n", ts)
    a, b = len(text) // 3, 2 * len(text) // 3
    return b"".join(_frame(fmt, piece, ts) for piece in (text[:a], text[a:b], text[b:] + "\n"))


def prepare(containers: list[Container], root: Path, docker_root: Path) -> None:
    """Create the directories, the files and the symlinks kubelet (and dockerd) create."""
    (root / "containers").mkdir(parents=True, exist_ok=True)
    for c in containers:
        path, link, pod_link = c.paths(root, docker_root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        if pod_link is not None:
            pod_link.parent.mkdir(parents=True, exist_ok=True)
            pod_link.symlink_to(path)
            link.symlink_to(pod_link)
        else:
            link.symlink_to(path)


def _rotate_rename(c: Container, path: Path, n: int) -> None:
    if c.layout == "kubelet":
        os.rename(path, path.with_name(f"{path.name}.20261126-{n:06d}"))
        return
    k = n  # dockerd: shift .k-1 -> .k ... .1 -> .2, then the file -> .1
    while k > 1:
        older = path.with_name(f"{path.name}.{k - 1}")
        if older.exists():
            os.rename(older, path.with_name(f"{path.name}.{k}"))
        k -= 1
    os.rename(path, path.with_name(f"{path.name}.1"))


def _copy_name(c: Container, path: Path, n: int) -> Path:
    if c.layout == "kubelet":
        return path.with_name(f"{path.name}.{n}")
    for k in range(n, 1, -1):  # dockerd-style names: the newest copy is .1
        older = path.with_name(f"{path.name}.{k - 1}")
        if older.exists():
            os.rename(older, path.with_name(f"{path.name}.{k}"))
    return path.with_name(f"{path.name}.1")


def write_container(c: Container, root: str, docker_root: str, lines: int, rotate_every: int,
                    batch: int, pause: float, progress: Any, force: Any, age: float = 0.0) -> None:
    """Write ``lines`` lines of ``c`` (a process of its own), rotating every ``rotate_every``
    lines and whenever ``force[c.index]`` is set (then cleared)."""
    path, _, _ = c.paths(Path(root), Path(docker_root))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    rotations = since = 0
    for start in range(0, lines, batch):
        end = min(start + batch, lines)
        os.write(fd, b"".join(encode_line(c.fmt, line_text(c.index, i), i % SPLIT_EVERY == 5,
                                          age) for i in range(start, end)))
        progress[c.index] = end
        since += end - start
        if c.rotation and (since >= rotate_every or force[c.index]):
            force[c.index] = 0
            rotations += 1
            since = 0
            if c.rotation == "rename":
                _rotate_rename(c, path, rotations)
                os.close(fd)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            else:  # copytruncate: the writer pauses during copy + truncate, keeps its fd
                shutil.copyfile(path, _copy_name(c, path, rotations))
                os.ftruncate(fd, 0)
        time.sleep(pause)
    os.close(fd)


class Writers:
    """The containers' writers as processes, with their progress (lines written)."""

    def __init__(self, containers: list[Container], root: Path, docker_root: Path, *,
                 lines_each: int, rotate_every: int, batch: int = 100, pause: float = 0.05,
                 age: float = 0.0) -> None:
        ctx = mp.get_context("fork")
        self.containers = containers
        self.lines_each = lines_each
        self.progress = ctx.Array("i", max(c.index for c in containers) + 1)
        self.force = ctx.Array("i", max(c.index for c in containers) + 1)
        self.procs = [ctx.Process(target=write_container, args=(
            c, str(root), str(docker_root), lines_each, rotate_every, batch, pause, self.progress,
            self.force, age)) for c in containers]

    @property
    def total(self) -> int:
        return self.lines_each * len(self.containers)

    def fraction(self) -> float:
        return sum(self.progress) / self.total

    def start(self) -> Self:
        for p in self.procs:
            p.start()
        return self

    def rotate_now(self) -> None:
        """Every writer rotates its file after its next write."""
        for c in self.containers:
            self.force[c.index] = 1

    def done(self) -> bool:
        return all(p.exitcode is not None for p in self.procs)

    def join(self, timeout: float = 300) -> None:
        for p in self.procs:
            p.join(timeout)
            if p.exitcode != 0:
                raise RuntimeError(f"writer exited with {p.exitcode}")

    def kill(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.kill()

    def expected(self) -> set[str]:
        return {line_text(c.index, i) for c in self.containers for i in range(self.lines_each)}


class CollectorProcess(ChildProcess):
    """``logriver collect`` (the node agent) over ``root`` as a child process."""

    def __init__(self, settings: config.Settings, root: Path, docker_root: Path,
                 checkpoint_dir: Path, *, log_path: Path | None = None) -> None:
        super().__init__(log_path=log_path)
        self.settings = settings
        self.cmd = [sys.executable, "-m", "streams", "collect", "--root", str(root),
                    "--docker-root", str(docker_root), "--checkpoint-dir", str(checkpoint_dir),
                    "--host", "node-1", "--kafka", settings.kafka_bootstrap,
                    "--topic-prefix", settings.topic_prefix]

    def command(self) -> tuple[list[str], dict[str, str] | None]:
        return self.cmd, None


@dataclass
class ContentAudit:
    """Lines written vs documents in Elasticsearch, by their text (``w<n> seq <i>``)."""

    expected: int
    documents: int
    lost: list[str] = field(default_factory=list)
    duplicated: dict[str, int] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.expected} lines written, {self.documents} documents: lost "
                f"{len(self.lost)}, duplicated {len(self.duplicated)}, unexpected "
                f"{len(self.unexpected)}")


async def indexed_messages(settings: config.Settings, pipeline: str) -> Counter[str]:
    """Documents per message text over every events index of ``pipeline``."""
    from elasticsearch import AsyncElasticsearch
    from elasticsearch.helpers import async_scan

    index = f"{settings.index_prefix}-events-{pipeline}*"
    counts: Counter[str] = Counter()
    async with AsyncElasticsearch(settings.es_url, request_timeout=120) as es:
        await es.indices.refresh(index=index, allow_no_indices=True)
        async for hit in async_scan(es, index=index, query={"_source": ["message"]}, size=5000,
                                    allow_no_indices=True):
            counts[hit["_source"].get("message", "")] += 1
    return counts


def content_audit(settings: config.Settings, pipeline: str, expected: set[str]) -> ContentAudit:
    got = asyncio.run(indexed_messages(settings, pipeline))
    return ContentAudit(
        expected=len(expected), documents=sum(got.values()),
        lost=sorted(expected - set(got)),
        duplicated={m: n for m, n in got.items() if n > 1},
        unexpected=sorted(m for m in got if m not in expected))


@dataclass
class Timeline:
    t0: float = field(default_factory=time.monotonic)
    events: list[tuple[float, str]] = field(default_factory=list)

    def note(self, what: str) -> None:
        self.events.append((round(time.monotonic() - self.t0, 1), what))

    def count(self, prefix: str) -> int:
        return sum(1 for _, what in self.events if what.startswith(prefix))

    def __str__(self) -> str:
        return ", ".join(f"{what}@{t}s" for t, what in self.events)


def kill_points(rng: random.Random, n: int, lo: float = 0.1, hi: float = 0.9) -> list[float]:
    """``n`` random points (fractions of the writing), in order, spread over [lo, hi]."""
    width = (hi - lo) / max(n, 1)
    return [lo + width * (k + rng.random()) for k in range(n)]


def wait_until(cond: Callable[[], bool], timeout: float, *, every: float = 0.5,
               alive: Callable[[], bool] = lambda: True, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if not alive():
            raise RuntimeError(f"a process died while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached in {timeout:.0f}s")
        time.sleep(every)


def seq_of(message: str) -> tuple[int, int] | None:
    m = _SEQ.search(message)
    return (int(m[1]), int(m[2])) if m else None


@dataclass
class KillPlan:
    """What a fault run does: how many of each kill, how many workers, how much writing."""

    worker_kills: int = 3
    collector_kills: int = 2
    workers: int = 1
    lines_each: int = 15000
    rotate_every: int = 3000
    batch: int = 50
    pause: float = 0.12  # seconds between writes of a writer
    collector_down: float = 1.5  # seconds (the writers rotate meanwhile)
    age: float = 0.0  # seconds the lines' timestamps lie in the past (event time)
    seed: int = 0
    settle_timeout: float = 300.0


@dataclass
class FaultRun:
    timeline: Timeline
    content: ContentAudit
    raw: Any  # streams.demo.audit.Audit
    window_lag: int
    elapsed: float
    checked: Any = None  # what ``check`` returned

    def summary(self) -> str:
        return (f"{self.content.summary()}; raw: {self.raw.summary()}; window lag "
                f"{self.window_lag}; {self.elapsed:.0f}s; {self.timeline}")

    @property
    def lost(self) -> int:
        return len(self.content.lost) + len(self.raw.lost)

    @property
    def duplicated(self) -> int:
        return len(self.content.duplicated) + len(self.raw.duplicated)


def _count(settings: config.Settings, pipeline: str) -> int:
    from streams.demo.chain import count_events

    return asyncio.run(count_events(settings, pipeline))


def _lag(settings: config.Settings, pipeline: str, topic: str) -> int:
    from streams.transport.kafka import group_lag

    return asyncio.run(group_lag(settings.kafka_bootstrap,
                                 f"{settings.topic_prefix}logriver-{pipeline}", [topic]))


class _Chain:
    """The processes of a fault run and the kills."""

    def __init__(self, settings: config.Settings, pipeline_ref: str, pipeline: str,
                 plan: KillPlan, workdir: Path, root: Path, docker_root: Path) -> None:
        from streams.demo.chain import WorkerProcess

        self.settings, self.pipeline, self.plan = settings, pipeline, plan
        self.rng = random.Random(plan.seed)
        self.timeline = Timeline()
        self.collector = CollectorProcess(settings, root, docker_root, workdir / "checkpoints",
                                          log_path=workdir / "collector.log")
        self.workers = [WorkerProcess(pipeline_ref, settings, log_path=workdir / f"worker{k}.log")
                        for k in range(plan.workers)]
        self.readies = [0] * plan.workers  # "Worker ready" lines logged before the last start

    def start(self) -> None:
        self.collector.start()
        for w in self.workers:
            w.start()

    def alive(self) -> bool:
        return self.collector.alive() and all(w.alive() for w in self.workers)

    def kill_collector(self, writers: Writers) -> None:
        time.sleep(self.rng.uniform(0, 0.3))
        self.collector.kill()
        self.timeline.note("collector killed")
        writers.rotate_now()  # files rotate while it is down
        time.sleep(self.plan.collector_down)
        self.collector.start()

    def _ready(self, k: int) -> int:
        """How often worker ``k`` logged that it got partitions and is consuming."""
        path = self.workers[k].log_path
        return path.read_text(errors="replace").count("Worker ready") if path else 0

    def kill_worker(self, total: int) -> None:
        """SIGKILL a worker at a random point once it is consuming again since it (re)started
        and the documents grew since (or everything is indexed), and start it again."""
        k = self.rng.randrange(len(self.workers))
        w = self.workers[k]
        wait_until(lambda: self._ready(k) > self.readies[k], 120, alive=self.alive,
                   what=f"worker {k} consuming")
        at_ready = _count(self.settings, self.pipeline)

        def progressed() -> bool:
            n = _count(self.settings, self.pipeline)
            return n > at_ready or n >= total

        wait_until(progressed, 120, alive=self.alive, what=f"progress of worker {k}")
        time.sleep(self.rng.uniform(0, 1.5))
        w.kill()
        self.timeline.note(f"worker{k} killed")
        w.stop()
        self.readies[k] = self._ready(k)
        w.start()

    def stop(self) -> None:
        self.collector.stop()
        for w in self.workers:
            w.stop()


def run_with_kills(settings: config.Settings, pipeline_ref: str, pipeline: str,
                   containers: list[Container], plan: KillPlan, workdir: Path, *,
                   check: Callable[[Any], Any] | None = None) -> FaultRun:
    """Write, collect and process ``containers``' logs while the collector and the workers are
    SIGKILLed at random points of the writing; wait until everything written is searchable and
    every raw and window offset committed; audit. ``pipeline_ref`` is what ``logriver run``
    takes, ``pipeline`` the pipeline's name; ``check(worker)`` runs at the end while the
    workers still run (e.g. waiting for the last windows)."""
    from streams.demo.audit import audit
    from streams.windows.rows import window_topic_name

    root, docker_root = workdir / "var" / "log", workdir / "var" / "lib" / "docker"
    prepare(containers, root, docker_root)
    writers = Writers(containers, root, docker_root, lines_each=plan.lines_each,
                      rotate_every=plan.rotate_every, batch=plan.batch, pause=plan.pause,
                      age=plan.age)
    chain = _Chain(settings, pipeline_ref, pipeline, plan, workdir, root, docker_root)
    rng = random.Random(plan.seed + 1)
    schedule = sorted([(p, "collector") for p in kill_points(rng, plan.collector_kills, 0.2, 0.8)]
                      + [(p, "worker") for p in kill_points(rng, plan.worker_kills, 0.1, 0.95)])
    t0 = time.monotonic()
    try:
        chain.start()
        writers.start()
        for point, target in schedule:
            wait_until(lambda p=point: writers.fraction() >= p or writers.done(), 600,
                       every=0.05, alive=chain.alive, what="the writing")
            if target == "collector":
                chain.kill_collector(writers)
            else:
                chain.kill_worker(writers.total)
        writers.join()
        chain.timeline.note("written")
        raw, windows = settings.topic(config.RAW), settings.topic(window_topic_name(pipeline))
        wait_until(lambda: _count(settings, pipeline) >= writers.total
                   and _lag(settings, pipeline, raw) == 0, plan.settle_timeout,
                   every=1.0, alive=chain.alive, what="everything searchable and committed")
        chain.timeline.note("searchable")
        try:
            wait_until(lambda: _lag(settings, pipeline, windows) == 0, 60, every=1.0,
                       alive=chain.alive, what="the window input committed")
        except TimeoutError:
            pass  # reported as window_lag
        window_lag = _lag(settings, pipeline, windows)
        checked = check(chain.workers[0]) if check is not None else None
    finally:
        writers.kill()
        chain.stop()
    elapsed = time.monotonic() - t0
    return FaultRun(chain.timeline, content_audit(settings, pipeline, writers.expected()),
                    asyncio.run(audit(settings, pipeline)), window_lag, elapsed, checked)
