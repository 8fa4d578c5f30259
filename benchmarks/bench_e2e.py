"""End to end: node log files -> collector -> Kafka -> Faust worker -> Elasticsearch, measured
against the limits of this machine, all figures from one run.

    .venv/bin/python benchmarks/bench_e2e.py [--quick] [--soak] [--lines N]

Workload: ``streams.demo.loggen`` (JSON app logs, nginx access logs, Java stack traces, klog,
Python text, plus a long tail of ``--tail-templates`` rare templates; fixed seed), written as
docker json-file node logs that the real collector reads.

Phases (each with its own topic prefix and index prefix ``lrbe2e-<run>-<phase>``):

1. **Throughput** (``e2e`` runs): workers are started and warmed up with a small batch (which
   also waits out Faust's start); then ``logriver collect --once`` (a subprocess, under
   ``/usr/bin/time -v``) reads ``--lines`` lines and the clock stops when Elasticsearch counts
   every event (``count == generated events``: zero loss, no duplicate). Lines/s = lines /
   (collector start -> last event searchable). CPU of each process is read from
   ``/proc`` (psutil) before and after; a run is finished for CPU purposes when the consumer
   group has no lag left on the raw and the window topics. Runs: 1 worker / 4 partitions
   (the reference), the same pipeline without windows (CPU split), 2 workers / 4 partitions,
   1 and 2 workers / 8 partitions.
2. **Latency** at 50% and 80% of the reference run's lines/s: a paced writer appends lines to
   the node files (ticks of 50 ms) while the collector follows them (subprocess, follow mode)
   and one worker runs. Ten times a second it also writes a *probe*, a JSON line whose text
   holds a sequence number and whose ``ts`` is its write time; a poller searches
   Elasticsearch every 100 ms for probes (``match_phrase`` on ``message``) and records when
   each first became searchable. Latency = first seen - written (upper bound: includes up to
   one poll interval). Probes of the first ``warmup`` seconds are not counted.
3. **Ceilings**: Kafka alone (the reference run's raw-topic messages, the same bytes and keys,
   produced with aiokafka as the collector does -- acks=all, idempotent, zstd -- then consumed
   from the start), Elasticsearch alone (``bench_es_sink``'s raw ceiling: pre-built ``_bulk``
   bodies of realistic events).
4. **In-process**: the reference run's raw records (read back from Kafka, sorted by time)
   through ``LocalRun`` without and with windows, Logriver's template miner alone and Drain3
   alone on the same messages; the structuring path before this change (``git archive``
   of ``--baseline-ref``) side by side with the working tree, in subprocesses, alternating;
   a pyinstrument profile of the structuring and window paths (top self-time costs).
   Then a density sweep: the same kind of workload generated at several event-time rates,
   structured and windowed in-process (per-window costs fall per line as windows fill).
5. ``--soak``: the reference run and one 10-minute run at 50% load sampling the RSS of the
   worker and collector; written to ``e2e_soak.md``/``.json``/``_*.png`` beside the others.

The process tunes its garbage collector as every ``logriver`` command does
(``streams.ops.process.tune_gc``), so in-process figures match the worker's configuration.

Writes ``benchmarks/results/e2e.md``, ``e2e.json``, ``e2e_*.png``. Needs Kafka and
Elasticsearch (``LOGRIVER_KAFKA``, ``LOGRIVER_ES_URL``); deletes its own indices, templates
and topics at the end. New dependencies (benchmark only): psutil, pyinstrument, drain3.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import json
import math
import os
import pickle
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.chdir(ROOT)  # worker subprocesses load benchmark pipelines by path and `pipelines` by name

from _flame import flame_svg, read_collapsed

from streams.demo.chain import WorkerProcess, count_events, remove_run, wait_until_consumed
from streams.demo.loggen import DEFAULT_CONTAINERS, Container, _frame, entry_for, generate
from streams.ops import config
from streams.ops.process import tune_gc
from streams.transport.kafka import ensure_topics

RESULTS = ROOT / "benchmarks" / "results"
PIPELINES = {
    "full": "kubernetes",
    "p8": "benchmarks/e2e_pipelines/k8s_p8.py",
    "nowindows": "benchmarks/e2e_pipelines/k8s_nowindows.py",
}
PROBE = Container("bench", "latency-probe-0", "probe", "json")
TICK = 0.05
PROBE_HZ = 10
POLL = 0.1


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


# -- processes ------------------------------------------------------------------------------
def cpu_s(pid: int) -> float:
    try:
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    except psutil.Error:
        return float("nan")


def vm_kib(pid: int, field: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def service_pids() -> dict[str, int]:
    """The Elasticsearch and Kafka server processes this run talks to (by listening port; read
    only: their CPU per million lines). Other copies of the services may run on other ports."""
    from urllib.parse import urlparse
    s = config.Settings()
    ports = {"elasticsearch": urlparse(s.es_url).port or 9200,
             "kafka": int(s.kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])}
    out: dict[str, int] = {}
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return out
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.pid:
            for name, port in ports.items():
                if c.laddr.port == port:
                    out.setdefault(name, c.pid)
    return out


def parse_time_v(path: Path) -> dict[str, float]:
    text = path.read_text(errors="replace")

    def num(rx: str) -> float:
        m = re.search(rx, text)
        return float(m.group(1)) if m else float("nan")
    return {"cpu_s": num(r"User time \(seconds\): ([\d.]+)") + num(r"System time \(seconds\): ([\d.]+)"),
            "peak_rss_mib": num(r"Maximum resident set size \(kbytes\): (\d+)") / 1024}


# -- helpers over the services --------------------------------------------------------------
def settings_for(run_id: str, phase: str, state: Path) -> config.Settings:
    return config.Settings(topic_prefix=f"lrbe2e-{run_id}-{phase}-",
                           index_prefix=f"lrbe2e-{run_id}-{phase}", state_dir=state)


async def create_topics(s: config.Settings, partitions: int) -> None:
    names = [s.topic(t) for t in (*config.ALL_TOPICS, "logs.windows.kubernetes")]
    await ensure_topics(s.kafka_bootstrap, names, partitions=partitions)


async def cleanup(s: config.Settings) -> None:
    """Delete everything under the run's prefixes (topics, indices, templates)."""
    for problem in await remove_run(s):
        log(f"cleanup: {problem}")


def collector_cmd(s: config.Settings, root: Path, cp: Path, once: bool) -> list[str]:
    return [sys.executable, "-m", "streams", "collect", "--root", str(root),
            "--checkpoint-dir", str(cp), "--kafka", s.kafka_bootstrap,
            "--topic-prefix", s.topic_prefix, "--host", "bench", *(["--once"] if once else [])]


async def run_collector_once(s: config.Settings, root: Path, work: Path, tag: str,
                             tree: Path = ROOT, profile: Path | None = None) -> dict[str, float]:
    """``logriver collect --once`` of the source tree ``tree`` under ``/usr/bin/time -v``;
    ``profile``: py-spy samples it into that file (collapsed stacks)."""
    out = work / f"{tag}.time"
    proc = await asyncio.create_subprocess_exec(
        "/usr/bin/time", "-v", "-o", str(out), *collector_cmd(s, root, work / f"{tag}-cp", True),
        stdout=subprocess.DEVNULL, stderr=open(work / f"{tag}.log", "wb"), cwd=tree)  # noqa: SIM115, ASYNC230
    spy = None
    if profile is not None:
        for _ in range(50):  # /usr/bin/time's child: the collector's Python
            kids = psutil.Process(proc.pid).children()
            if kids:
                spy = start_py_spy(kids[0].pid, profile, settle=0.0)
                break
            await asyncio.sleep(0.01)
    rc = await proc.wait()
    if spy is not None:
        spy.wait(60)
    if rc != 0:
        raise RuntimeError(f"collector exited {rc}; see {work / f'{tag}.log'}")
    return parse_time_v(out)


async def wait_count(s: config.Settings, expected: int, workers: list[WorkerProcess],
                     timeout: float) -> tuple[int, float]:
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        try:
            n = await count_events(s)
        except Exception as exc:  # a new index's shard not allocated yet (503)
            if "503" not in str(exc) and "search_phase_execution" not in str(exc):
                raise
            await asyncio.sleep(0.25)
            continue
        if n >= expected:
            return n, time.monotonic()
        for w in workers:
            if not w.alive():
                raise RuntimeError(f"worker exited with {w.proc.returncode}")
        await asyncio.sleep(0.25)
    return n, time.monotonic()


async def wait_group_stable(bootstrap: str, group: str, members: int, timeout: float = 90) -> float:
    """Wait until ``group`` is Stable with ``members`` members (no rebalance pending)."""
    from aiokafka.admin import AIOKafkaAdminClient
    t0 = time.monotonic()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        stable_since = None
        while time.monotonic() - t0 < timeout:
            resp = await admin.describe_consumer_groups([group])
            g = resp[0].groups[0]
            state, n = g[2], len(g[5])
            if state == "Stable" and n == members:
                stable_since = stable_since or time.monotonic()
                if time.monotonic() - stable_since >= 2.0:
                    break
            else:
                stable_since = None
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
    return time.monotonic() - t0


# -- phase 1: throughput --------------------------------------------------------------------
async def e2e_run(name: str, pipeline: str, partitions: int, n_workers: int, run_id: str,
                  work: Path, warm_root: Path, warm_events: int, root: Path, lines: int,
                  events: int, timeout: float, profile: Path | None = None, tree: Path = ROOT,
                  collector_profile: Path | None = None) -> dict[str, Any]:
    """One throughput run; ``tree``: the source tree whose collector and worker run (the
    working tree, or a baseline's ``git archive``)."""
    d = work / name
    d.mkdir()
    s = settings_for(run_id, name, d / "state")
    await create_topics(s, partitions)
    workers = [WorkerProcess(pipeline, config.Settings(
        kafka_bootstrap=s.kafka_bootstrap, es_url=s.es_url, topic_prefix=s.topic_prefix,
        index_prefix=s.index_prefix, state_dir=d / f"state{i}"), log_path=d / f"worker{i}.log",
        cwd=tree) for i in range(n_workers)]
    services = service_pids()
    res: dict[str, Any] = {"run": name, "pipeline": pipeline, "partitions": partitions,
                           "workers": n_workers, "lines": lines, "events": events}
    try:
        for w in workers:
            w.start()
        t_start = time.monotonic()
        await run_collector_once(s, warm_root, d, "warm", tree)
        n, _ = await wait_count(s, warm_events, workers, timeout)
        assert n == warm_events, f"{name}: warm-up {n} != {warm_events}"
        await wait_group_stable(s.kafka_bootstrap, f"{s.topic_prefix}logriver-kubernetes", n_workers)
        log(f"{name}: {n_workers} worker(s) ready after {time.monotonic() - t_start:.1f} s "
            f"(load {load_average()})")
        await asyncio.sleep(1.0)
        gc.collect()
        cpu0 = {f"worker{i}": cpu_s(w.proc.pid) for i, w in enumerate(workers)}
        cpu0.update({k: cpu_s(pid) for k, pid in services.items()})
        load0 = load_average()
        spy = start_py_spy(workers[0].proc.pid, profile) if profile else None
        t0 = time.monotonic()
        collector_task = asyncio.create_task(run_collector_once(s, root, d, "main", tree,
                                                                collector_profile))
        n, t_done = await wait_count(s, warm_events + events, workers, timeout)
        coll = await collector_task
        seconds = t_done - t0
        ok = n == warm_events + events
        res.update(seconds=round(seconds, 2), searchable=n - warm_events, zero_loss=ok,
                   lines_per_s=round(lines / seconds), events_per_s=round(events / seconds),
                   collector_cpu_s=round(coll["cpu_s"], 2),
                   collector_peak_rss_mib=round(coll["peak_rss_mib"], 1), load_before=load0)
        # CPU accounting: until the group has consumed everything (windows agent included)
        raw_topic, win_topic = s.topic(config.RAW), s.topic("logs.windows.kubernetes")
        grp = f"{s.topic_prefix}logriver-kubernetes"
        lag = await wait_until_consumed(s, grp, raw_topic, timeout=120)
        if pipeline != PIPELINES["nowindows"]:
            lag += await wait_until_consumed(s, grp, win_topic, timeout=120)
        res["lag_after"] = lag
        res["drained_s"] = round(time.monotonic() - t0, 2)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        res["drained_lines_per_s"] = round(lines / res["drained_s"])
        cpu1 = {f"worker{i}": cpu_s(w.proc.pid) for i, w in enumerate(workers)}
        cpu1.update({k: cpu_s(pid) for k, pid in services.items()})
        res["worker_cpu_s"] = round(sum(cpu1[k] - cpu0[k] for k in cpu0 if k.startswith("worker")), 2)
        for k in services:
            res[f"{k}_cpu_s"] = round(cpu1[k] - cpu0[k], 2)
        res["worker_peak_rss_mib"] = [round((vm_kib(w.proc.pid, "VmHWM") or 0) / 1024, 1)
                                      for w in workers]
        log(f"{name}: {lines} lines in {seconds:.1f} s = {lines / seconds:,.0f} lines/s "
            f"({'zero loss' if ok else f'LOSS: {n - warm_events}/{events}'}); worker CPU "
            f"{res['worker_cpu_s']} s, collector CPU {res['collector_cpu_s']} s")
        res["_settings"] = s
    finally:
        for w in workers:
            w.stop()
    return res


def start_py_spy(pid: int, out: Path, settle: float = 0.5) -> subprocess.Popen[bytes] | None:
    """py-spy sampling ``pid`` (100 Hz, without pausing it) into ``out`` (collapsed stacks),
    or None when py-spy cannot attach (not installed, no ptrace permission)."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        log("py-spy not found: no worker profile")
        return None
    proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", "100", "--nonblocking",
                             "--format", "raw", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=open(out.with_suffix(".log"), "wb"))  # noqa: SIM115
    time.sleep(settle)
    if settle and proc.poll() is not None:
        log(f"py-spy could not attach (see {out.with_suffix('.log')}): no worker profile")
        return None
    return proc


# Where the worker's CPU goes, by the frame of ours (or the library) a sample is under.
STAGES = (
    ("window agent: close, score, retrain models", ("WindowStage.close", "WindowStage._finish")),
    ("window agent: state snapshots to the changelog", ("WindowWorker._close",)),
    ("window agent: decode and aggregate", ("WindowWorker._process",)),
    ("structuring (parse, ECS, templates)", ("Pipeline.structure",)),
    ("window-topic messages (window input rows)", ("window_messages", "send_window_input")),
    ("Elasticsearch sink", ("ElasticsearchSink.",)),
    ("decoding raw batches", ("decode_batch",)),
    ("event JSON encoding", ("StructureAgent.process.<locals>.<listcomp>", "StructureAgent.process (streams/worker/structure.py")),
    ("Kafka producer (aiokafka)", ("aiokafka/producer",)),
    ("Kafka consumer thread (Faust, aiokafka)", ("WorkerThread.run", "aiokafka/consumer")),
    ("template store", ("TemplateStore.",)),
)


# Where the collector's CPU goes (same method).
COLLECTOR_STAGES = (
    ("runtime framing (docker/CRI decode, partials)", ("decode_docker", "decode_cri", "decode_line",
                                                       "PartialAssembler.")),
    ("multiline merging", ("MultilineMerger.",)),
    ("records (ids, metadata)", ("FileTailer._record", "event_id")),
    ("read and split lines", ("FileTailer._split", "FileTailer._emit", "FileTailer._pump")),
    ("batch encoding (orjson)", ("encode_batch", "split_batches")),
    ("Kafka producer (aiokafka, zstd)", ("aiokafka/",)),
    ("start-up (imports, CLI)", ("<module>", "_find_and_load")),
)


def profile_summary(raw: Path, stages_of: tuple = STAGES,
                    other: str = "other (event loop, Faust, idle callbacks)") -> dict[str, Any]:
    """Shares of the worker's samples by stage (first match from the leaf up), and the
    functions with the most self time."""
    total = 0
    stages: dict[str, int] = {}
    self_time: dict[str, int] = {}
    for frames, n in read_collapsed(raw):
        total += n
        self_time[frames[-1]] = self_time.get(frames[-1], 0) + n
        stage = other
        for frame in reversed(frames):
            hit = next((name for name, needles in stages_of if any(x in frame for x in needles)), None)
            if hit:
                stage = hit
                break
        stages[stage] = stages.get(stage, 0) + n
    top = sorted(self_time.items(), key=lambda kv: -kv[1])[:12]
    return {"samples": total,
            "stages": sorted(([k, round(v / total, 3)] for k, v in stages.items()), key=lambda kv: -kv[1]),
            "self": [[f, round(v / total, 3)] for f, v in top]} if total else {"samples": 0}


# -- phase 2: latency -----------------------------------------------------------------------
class PacedWriter:
    """Appends loggen entries to the node files at ``rate`` lines/s (50 ms ticks), plus
    ``PROBE_HZ`` probes per second to a probe container."""

    def __init__(self, root: Path, rate: float, seed: int, tail_templates: int) -> None:
        self.dir = root / "containers"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rate = rate
        self.rng = random.Random(seed)
        self.tail = tail_templates
        self.handles = {c: open(self.dir / c.file_name(), "ab")  # noqa: SIM115
                        for c in (*DEFAULT_CONTAINERS, PROBE)}
        self.lines = self.events = 0
        self.probes: dict[int, float] = {}  # seq -> write time (epoch s)
        self.i = 0

    def tick(self, n: int, probe: bool) -> None:
        t = datetime.now(UTC)
        for _ in range(n):
            c = DEFAULT_CONTAINERS[self.rng.randrange(len(DEFAULT_CONTAINERS))]
            entry, level = entry_for(c, self.rng, t, self.i, tail_templates=self.tail)
            stream = "stderr" if level in ("error", "warn") else "stdout"
            self.handles[c].write(b"".join(_frame(x.encode(), stream, t, "docker") for x in entry))
            self.lines += len(entry)
            self.events += 2 if len(entry) > 1 else 1
            self.i += 1
        for fh in self.handles.values():
            fh.flush()
        if probe:
            seq = len(self.probes)
            now = datetime.now(UTC)
            obj = {"ts": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                   "level": "info", "msg": f"latency probe seq {seq}", "logger": "bench.probe"}
            fh = self.handles[PROBE]
            fh.write(_frame(orjson.dumps(obj), "stdout", now, "docker"))
            fh.flush()
            self.probes[seq] = time.time()
            self.lines += 1
            self.events += 1

    def close(self) -> None:
        for fh in self.handles.values():
            fh.close()


async def probe_poller(s: config.Settings, writer: PacedWriter, seen: dict[int, float],
                       stop: asyncio.Event) -> None:
    from elasticsearch import AsyncElasticsearch
    async with AsyncElasticsearch(s.es_url, request_timeout=30) as es:
        while not stop.is_set():
            pending = [q for q in writer.probes if q not in seen]
            if pending:
                since = writer.probes[min(pending)] - 5
                try:
                    r = await es.search(
                        index=f"{s.index_prefix}-events-kubernetes*", size=2000,
                        source=["message"], allow_no_indices=True, ignore_unavailable=True,
                        query={"bool": {"filter": [
                            {"match_phrase": {"message": "latency probe seq"}},
                            {"range": {"@timestamp": {"gte": int(since * 1000),
                                                      "format": "epoch_millis"}}}]}})
                    now = time.time()
                    for h in r["hits"]["hits"]:
                        q = int(h["_source"]["message"].rsplit(" ", 1)[1])
                        seen.setdefault(q, now)
                except Exception as exc:  # noqa: BLE001 - index not there yet
                    if "index_not_found" not in str(exc) and "503" not in str(exc):
                        log(f"poller: {exc}")
            try:
                await asyncio.wait_for(stop.wait(), POLL)
            except TimeoutError:
                pass


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


async def latency_run(name: str, rate: float, seconds: float, warmup: float, run_id: str,
                      work: Path, tail: int, sample_rss: bool = False) -> dict[str, Any]:
    d = work / name
    d.mkdir()
    s = settings_for(run_id, name, d / "state")
    await create_topics(s, 4)
    root = d / "log"
    (root / "containers").mkdir(parents=True)
    worker = WorkerProcess(PIPELINES["full"], s, log_path=d / "worker.log")
    coll = None
    res: dict[str, Any] = {"run": name, "target_lines_per_s": round(rate), "seconds": seconds,
                           "warmup_s": warmup}
    writer = PacedWriter(root, rate, seed=zlib.crc32(name.encode()), tail_templates=tail)
    rss: list[tuple[float, float, float]] = []
    try:
        worker.start()
        coll = subprocess.Popen(collector_cmd(s, root, d / "cp", False),  # noqa: ASYNC220
                                stdout=subprocess.DEVNULL,
                                stderr=open(d / "collector.log", "wb"))  # noqa: SIM115, ASYNC230
        # wait for the worker: one probe must come through before pacing starts
        seen: dict[int, float] = {}
        stop = asyncio.Event()
        poller = asyncio.create_task(probe_poller(s, writer, seen, stop))
        t_ready = time.monotonic()
        writer.tick(0, probe=True)
        while 0 not in seen:
            if time.monotonic() - t_ready > 180 or not worker.alive():
                raise RuntimeError(f"{name}: worker not ready")
            await asyncio.sleep(0.2)
        log(f"{name}: ready after {time.monotonic() - t_ready:.1f} s; writing {rate:,.0f} "
            f"lines/s for {seconds:.0f} s (load {load_average()})")
        first_seq = len(writer.probes)
        c_cpu0, w_cpu0 = cpu_s(coll.pid), cpu_s(worker.proc.pid)
        t0 = time.monotonic()
        tick, owed, next_probe, next_rss = 0, 0.0, t0, t0
        while (now := time.monotonic()) - t0 < seconds:
            owed += rate * TICK
            n = int(owed)
            owed -= n
            probe = now >= next_probe
            if probe:
                next_probe += 1 / PROBE_HZ
            writer.tick(n, probe)
            if sample_rss and now >= next_rss:
                rss.append((round(now - t0, 1), (vm_kib(worker.proc.pid, "VmRSS") or 0) / 1024,
                            (vm_kib(coll.pid, "VmRSS") or 0) / 1024))
                next_rss += 5.0
            tick += 1
            await asyncio.sleep(max(0.0, t0 + tick * TICK - time.monotonic()))
        wall = time.monotonic() - t0
        written_lines = writer.lines
        deadline = time.monotonic() + 60
        while len(seen) < len(writer.probes) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        stop.set()
        await poller
        n, _ = await wait_count(s, writer.events, [worker], 120)
        res["cpu_collector_s"] = round(cpu_s(coll.pid) - c_cpu0, 2)
        res["cpu_worker_s"] = round(cpu_s(worker.proc.pid) - w_cpu0, 2)
        res["worker_peak_rss_mib"] = round((vm_kib(worker.proc.pid, "VmHWM") or 0) / 1024, 1)
        res["collector_peak_rss_mib"] = round((vm_kib(coll.pid, "VmHWM") or 0) / 1024, 1)
        counted = [q for q in writer.probes if q >= first_seq
                   and writer.probes[q] - writer.probes[first_seq] >= warmup]
        lat = [seen[q] - writer.probes[q] for q in counted if q in seen]
        res.update(
            achieved_lines_per_s=round(written_lines / wall), probes=len(counted),
            probes_lost=sum(1 for q in counted if q not in seen),
            p50_s=round(pct(lat, 50), 3), p95_s=round(pct(lat, 95), 3),
            p99_s=round(pct(lat, 99), 3), max_s=round(max(lat), 3) if lat else None,
            events_written=writer.events, events_searchable=n, zero_loss=n == writer.events,
            latencies=[round(x, 3) for x in lat],
            series=[(round(writer.probes[q] - writer.probes[first_seq], 2), round(seen[q] - writer.probes[q], 3))
                    for q in counted if q in seen])
        if sample_rss:
            res["rss_series"] = rss
        log(f"{name}: p50 {res['p50_s']} s, p95 {res['p95_s']} s, p99 {res['p99_s']} s over "
            f"{len(lat)} probes; {n}/{writer.events} events searchable")
    finally:
        writer.close()
        if coll is not None and coll.poll() is None:
            coll.terminate()
            try:
                coll.wait(30)
            except subprocess.TimeoutExpired:
                coll.kill()
        worker.stop()
    return res


# -- phase 3: ceilings ----------------------------------------------------------------------
async def read_topic(bootstrap: str, topic: str, expected_records: int | None = None,
                     ) -> tuple[list[tuple[bytes, bytes]], float]:
    from aiokafka import AIOKafkaConsumer
    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                         auto_offset_reset="earliest", fetch_max_bytes=64 * 1024 * 1024,
                         max_partition_fetch_bytes=16 * 1024 * 1024)
    await c.start()
    try:
        from streams.transport.kafka import topic_partitions
        ends = await c.end_offsets(await topic_partitions(c, topic))
        total = sum(ends.values())
        out: list[tuple[bytes, bytes]] = []
        t0 = time.perf_counter()
        while len(out) < total:
            got = await c.getmany(timeout_ms=1000, max_records=10_000)
            for batch in got.values():
                out.extend((m.key, m.value) for m in batch)
        return out, time.perf_counter() - t0
    finally:
        await c.stop()


async def kafka_ceiling(s: config.Settings, messages: list[tuple[bytes, bytes]],
                        records: int, topic: str) -> dict[str, Any]:
    from aiokafka import AIOKafkaProducer
    await ensure_topics(s.kafka_bootstrap, [topic], partitions=4)
    p = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all", enable_idempotence=True,
                         compression_type="zstd", linger_ms=20, max_batch_size=1024 * 1024,
                         max_request_size=16 * 1024 * 1024)
    await p.start()
    try:
        t0 = time.perf_counter()
        futs = [await p.send(topic, value=v, key=k) for k, v in messages]
        await asyncio.gather(*futs)
        produce = time.perf_counter() - t0
    finally:
        await p.stop()
    got, consume = await read_topic(s.kafka_bootstrap, topic)
    assert len(got) == len(messages)
    mb = sum(len(v) for _, v in messages) / 1e6
    return {"messages": len(messages), "records": records, "mb": round(mb, 1),
            "produce_s": round(produce, 3), "consume_s": round(consume, 3),
            "produce_lines_per_s": round(records / produce),
            "consume_lines_per_s": round(records / consume),
            "lines_per_s": round(records / max(produce, consume))}


async def es_ceiling(docs: int, run_id: str, rounds: int) -> dict[str, Any]:
    import bench_es_sink as bes
    from elasticsearch import AsyncElasticsearch

    from schemas import elasticsearch as es_schema
    from streams.sinks.elasticsearch import Action
    events = await asyncio.to_thread(bes.make_events, docs)
    prefix = f"lrbe2e-{run_id}-esceil"
    es_url = os.environ.get("LOGRIVER_ES_URL", "http://127.0.0.1:9200")
    async with AsyncElasticsearch(es_url, request_timeout=120, max_retries=0) as es:
        caps = await es_schema.install(es, prefix)
        actions = [Action(caps.index_for("events", "kubernetes", e["@timestamp"]), e["event"]["id"],
                          e, "create") for e in events]
        bodies = bes.raw_bodies(actions, 2000, 10_000)
        out = []
        try:
            await bes._fresh_index(es, prefix)
            await bes.run_raw(es, bes.raw_bodies(actions[:4000], 2000, 10_000), 2)  # warm-up
            for _ in range(rounds):
                await bes._fresh_index(es, prefix)
                gc.collect()
                secs = await bes.run_raw(es, bodies, 2)
                assert await bes._count(es, prefix) == len(actions)
                out.append(len(actions) / secs)
        finally:
            await bes._fresh_index(es, prefix)
            await es_schema.uninstall(es, prefix)
    payload = sum(len(b) for bs in bodies for b in bs)
    return {"docs": len(actions), "rounds": [round(x) for x in out],
            "docs_per_s": round(statistics.median(out)), "avg_doc_bytes": round(payload / len(actions))}


# -- phase 4: in-process --------------------------------------------------------------------
INPROC = r'''
import json, pickle, sys, time
sys.path.insert(0, sys.argv[1])
from streams.pipeline import load_pipeline
from streams.replay.runner import LocalRun
recs = pickle.load(open(sys.argv[2], "rb"))
p = load_pipeline("kubernetes")
import gc  # both sides with the garbage collector tuned as streams.ops.process.tune_gc does
gc.collect(); gc.freeze(); gc.set_threshold(50_000, 20, 100)
best = []
for _ in range(int(sys.argv[3])):
    run = LocalRun(p, windows=False)
    t0 = time.process_time()
    for i in range(0, len(recs), 500):
        run.process(recs[i:i + 500])
    best.append((time.process_time() - t0) / len(recs) * 1e6)
print(json.dumps({"us_per_line": min(best), "all": best}))
'''


def inproc_side(tree: Path, recs_path: Path, reps: int) -> float:
    out = subprocess.run([sys.executable, "-c", INPROC, str(tree), str(recs_path), str(reps)],
                         capture_output=True, text=True, cwd=tree, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["us_per_line"]


def top_costs(profiler: Any, n: int = 12) -> list[dict[str, Any]]:
    """Self time per function from a pyinstrument session."""
    agg: dict[tuple[str, str], float] = {}
    root = profiler.last_session.root_frame()
    total = root.time
    stack = [root]
    while stack:
        f = stack.pop()
        stack.extend(f.children)
        if f.is_synthetic and f.function in ("[self]", "[await]"):
            key = (f.parent.function if f.parent else "?",
                   (f.parent.file_path_short if f.parent else "") or "")
        else:
            key = (f.function or "?", f.file_path_short or "")
        own = f.total_self_time if not f.children else 0.0
        if own:
            agg[key] = agg.get(key, 0.0) + own
    rows = sorted(agg.items(), key=lambda kv: -kv[1])[:n]
    return [{"function": fn, "file": path, "self_s": round(t, 3), "share": round(t / total, 3)}
            for (fn, path), t in rows]


def inclusive_costs(profiler: Any, n: int = 14) -> list[dict[str, Any]]:
    """Inclusive time per function (each call path counted once) from a pyinstrument session."""
    agg: dict[tuple[str, str], float] = {}
    root = profiler.last_session.root_frame()
    total = root.time
    stack: list[tuple[Any, frozenset]] = [(root, frozenset())]
    while stack:
        f, above = stack.pop()
        key = (f.function or "?", f.file_path_short or "")
        if not f.is_synthetic and key not in above:
            agg[key] = agg.get(key, 0.0) + f.time
        stack.extend((c, above | {key}) for c in f.children)
    rows = [kv for kv in sorted(agg.items(), key=lambda kv: -kv[1])
            if kv[1] < 0.97 * total and "bench_e2e" not in kv[0][1]][:n]
    return [{"function": fn, "file": path, "incl_s": round(t, 3), "share": round(t / total, 3)}
            for (fn, path), t in rows]


def inprocess(records: list[dict[str, Any]], work: Path, baseline_ref: str, reps: int) -> dict[str, Any]:
    from drain3 import TemplateMiner as Drain3Miner
    from pyinstrument import Profiler

    from streams.pipeline import load_pipeline
    from streams.replay.runner import LocalRun
    p = load_pipeline("kubernetes")
    res: dict[str, Any] = {"records": len(records)}

    def timed(windows: bool) -> float:
        return time_local_run(p, records, windows)[0]

    res["structure_us"] = round(min(timed(False) for _ in range(reps)), 2)
    res["structure_windows_us"] = round(min(timed(True) for _ in range(max(1, reps - 1))), 2)
    parsed = [e["message"] for e in p.structure(records, None).events]
    for tag, msgs in (("raw", [r["message"] for r in records]), ("parsed", parsed)):
        gc.collect()
        t0 = time.process_time()
        miner = p.new_miner()
        for m in msgs:
            miner.match(m)
        res[f"logriver_miner_{tag}_us"] = round((time.process_time() - t0) / len(msgs) * 1e6, 2)
        res[f"logriver_templates_{tag}"] = len(miner._clusters)
        gc.collect()
        t0 = time.process_time()
        d3 = Drain3Miner()
        for m in msgs:
            d3.add_log_message(m)
        res[f"drain3_{tag}_us"] = round((time.process_time() - t0) / len(msgs) * 1e6, 2)
        res[f"drain3_templates_{tag}"] = len(d3.drain.clusters)
    log(f"in-process: structuring {res['structure_us']} us/line, +windows+scoring "
        f"{res['structure_windows_us']} us/line; miner on parsed messages "
        f"{res['logriver_miner_parsed_us']} us vs Drain3 {res['drain3_parsed_us']} us")
    # profiles
    for windows, key in ((False, "profile_structure"), (True, "profile_windows")):
        run = LocalRun(p, windows=windows)
        prof = Profiler(interval=0.0005)
        prof.start()
        for i in range(0, len(records), 500):
            run.process(records[i:i + 500])
        run.finish()
        prof.stop()
        res[key] = top_costs(prof)
        res[key + "_inclusive"] = inclusive_costs(prof)
        (RESULTS / f"e2e_{key}.txt").write_text(prof.output_text(unicode=False, color=False))
    # before/after: the working tree vs baseline_ref, in subprocesses, alternating
    base = work / "baseline"
    base.mkdir()
    try:
        arch = subprocess.run(["git", "archive", baseline_ref, "streams", "pipelines", "schemas"],
                              cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=arch, check=True)
        recs_path = work / "records.pickle"
        recs_path.write_bytes(pickle.dumps(records))
        after, before = [], []
        for r in range(2):
            for side in (("after", "before") if r % 2 == 0 else ("before", "after")):
                (after if side == "after" else before).append(
                    inproc_side(ROOT if side == "after" else base, recs_path, reps))
        changed = subprocess.run(["git", "diff", "--name-only", baseline_ref, "--", "streams/pipeline.py",
                                  "streams/parse", "streams/templates"], check=False, cwd=ROOT,
                                 capture_output=True, text=True).stdout.split()
        res["before_after"] = {"ref": baseline_ref, "changed_files": changed, "before_us": round(min(before), 2),
                               "after_us": round(min(after), 2),
                               "before_all": [round(x, 2) for x in before],
                               "after_all": [round(x, 2) for x in after]}
        log(f"structuring before ({baseline_ref}) {min(before):.2f} us/line, after {min(after):.2f}")
    except subprocess.CalledProcessError as exc:
        res["before_after"] = {"error": str(exc.stderr)[-500:]}
    return res


DENSITIES = (None, 50.0, 500.0, 5000.0)  # entries/s of event time; None: loggen's default (~5/s)


def loggen_records(lines: int, tail_templates: int, entries_per_second: float | None,
                   work: Path) -> list[dict[str, Any]]:
    """Raw records of a loggen workload, read by the production tailer in-process (no Kafka)."""
    from streams.sources.checkpoints import CheckpointStore
    from streams.sources.files import FileTailer

    class Collect:
        def __init__(self) -> None:
            self.records: list[dict[str, Any]] = []

        async def publish(self, key: bytes, recs: list[dict[str, Any]]) -> None:
            self.records.extend(recs)

    root = Path(tempfile.mkdtemp(dir=work))
    generate(root, lines, seed=11, start=datetime(2026, 1, 1, tzinfo=UTC),
             tail_templates=tail_templates, entries_per_second=entries_per_second)
    sink = Collect()
    tailer = FileTailer([str(root / "containers" / "*.log")], sink,
                        CheckpointStore(root / "checkpoints.json"), poll_interval=0.0,
                        release_after=0.0)

    try:
        asyncio.run(tailer.drain())
    finally:
        tailer.close()
    shutil.rmtree(root, ignore_errors=True)
    sink.records.sort(key=lambda r: r.get("time") or "")
    return sink.records


def time_local_run(p: Any, records: list[dict[str, Any]], windows: bool) -> tuple[float, Any]:
    """µs of CPU per record of one in-process run (batches of 500, as the worker buffers),
    and the run."""
    from streams.replay.runner import LocalRun

    run = LocalRun(p, windows=windows)
    gc.collect()
    t0 = time.process_time()
    for i in range(0, len(records), 500):
        run.process(records[i:i + 500])
    run.finish()
    return (time.process_time() - t0) / len(records) * 1e6, run


def density_sweep(lines: int, tail_templates: int, work: Path, reps: int) -> list[dict[str, Any]]:
    """CPU per line of structuring and of windows + scoring, in-process, for the same kind of
    workload at several event-time densities. Aggregation costs per event; closing a window,
    scoring it and retraining cost per (window, key), so the per-line figure of the second
    falls as windows hold more lines."""
    from streams.pipeline import load_pipeline

    p = load_pipeline("kubernetes")
    out = []
    for eps in DENSITIES:
        records = loggen_records(lines, tail_templates, eps, work)

        structure = min(time_local_run(p, records, False)[0] for _ in range(reps))
        both = [time_local_run(p, records, True) for _ in range(reps)]
        total, run = min(both, key=lambda x: x[0])
        times = [r["time"] for r in records if r.get("time")]
        span = (datetime.fromisoformat(times[-1]) - datetime.fromisoformat(times[0])).total_seconds()
        row = {"entries_per_second": eps, "records": len(records),
               "event_time_span_s": round(span, 1),
               "lines_per_s_event_time": round(len(records) / span, 1) if span else None,
               "structure_us": round(structure, 2), "total_us": round(total, 2),
               "windows_scoring_us": round(total - structure, 2),
               "windows_closed": run.summary.windows_closed, "anomalies": run.summary.anomalies,
               "events_per_window_doc": round(len(records) / max(run.summary.windows_closed, 1), 1)}
        out.append(row)
        log(f"density {eps or 'default'}: {row}")
    return out


def sort_records(messages: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    from streams.transport.records import decode_batch
    recs = [r for _, v in messages for r in decode_batch(v)]
    recs.sort(key=lambda r: r.get("time") or "")
    return recs


# -- main -----------------------------------------------------------------------------------
async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:6]
    work = Path(tempfile.mkdtemp(prefix="lrbe2e-"))
    res: dict[str, Any] = {
        "run": datetime.now(UTC).isoformat(timespec="seconds"), "run_id": run_id,
        "mode": "soak" if args.soak else "quick" if args.quick else "full",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "python": platform.python_version(), "load_at_start": load_average(),
        "lines": args.lines, "tail_templates": args.tail_templates,
    }
    start = timeline_start()
    rate = args.event_rate or None
    res["event_rate"] = rate
    # the warm-up is dense (a second of event time) whatever the workload: the same container
    # streams continue in the main workload a minute later, never behind it
    warm = generate(work / "warm", args.warm_lines, seed=101, start=start,
                    tail_templates=args.tail_templates, entries_per_second=2000)
    gen = generate(work / "main", args.lines, seed=11, start=start + timedelta(minutes=1),
                   tail_templates=args.tail_templates, entries_per_second=rate)
    # historical backfill: the same lines at the generator's default density (about 5 lines/s
    # of event time), where closing windows and retraining models cost the most per line
    sparse = generate(work / "sparse", args.lines, seed=11, start=start + timedelta(minutes=1),
                      tail_templates=args.tail_templates)
    res["events"] = gen.events
    log(f"workload: {gen.lines} lines ({gen.events} events) in {len(gen.files)} files; "
        f"warm-up {warm.lines} lines; load {load_average()}")
    runs: list[dict[str, Any]] = []
    try:
        plan = [("ref", PIPELINES["full"], 4, 1), ("nowin", PIPELINES["nowindows"], 4, 1),
                ("backfill", PIPELINES["full"], 4, 1),
                ("w2p4", PIPELINES["full"], 4, 2), ("w1p8", PIPELINES["p8"], 8, 1),
                ("w2p8", PIPELINES["p8"], 8, 2)]
        if args.soak:
            plan = plan[:1]
        for name, pipe, parts, nw in plan:
            src = sparse if name == "backfill" else gen
            prof = work / f"{name}.pyspy" if args.profile and name in ("ref", "backfill") else None
            r = await e2e_run(name, pipe, parts, nw, run_id, work, work / "warm", warm.events,
                              src.root, src.lines, src.events, args.timeout, profile=prof)
            if prof is not None and prof.exists():
                r["profile"] = profile_summary(prof)
            s = r.pop("_settings")
            runs.append(r)
            if name == "ref":  # Kafka ceiling and in-process records from the same raw topic
                messages, _ = await read_topic(s.kafka_bootstrap, s.topic(config.RAW))
                records = sort_records(messages)
                res["kafka_ceiling"] = await kafka_ceiling(
                    s, messages, len(records), s.topic("ceiling.raw"))
                log(f"Kafka alone: {res['kafka_ceiling']}")
        res["runs"] = runs
        ref = runs[0]
        if not args.soak:
            res["es_ceiling"] = await es_ceiling(args.es_docs, run_id, args.es_rounds)
            log(f"Elasticsearch alone: {res['es_ceiling']['docs_per_s']:,} docs/s")
        lat = []
        loads = [0.5] if args.soak else [0.5, 0.8]
        for frac in loads:
            secs = 600 if args.soak else args.latency_seconds
            r = await latency_run(f"lat{int(frac * 100)}", frac * ref["drained_lines_per_s"], secs,
                                  args.latency_warmup, run_id, work, args.tail_templates,
                                  sample_rss=True)
            r["load_fraction"] = frac
            lat.append(r)
        res["latency"] = lat
        if not args.soak:
            res["inprocess"] = inprocess(records, work, args.baseline_ref, args.reps)
    finally:
        # every phase's prefixes, also those of a phase that failed half-way
        for phase in ("ref", "nowin", "backfill", "w2p4", "w1p8", "w2p8", "lat50", "lat80"):
            await cleanup(settings_for(run_id, phase, work))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    res["load_at_end"] = load_average()
    return res


def timeline_start() -> datetime:
    """Event time of the workloads' first line: two hours ahead of the wall clock. A worker
    whose group has caught up closes its windows on the wall clock (``IDLE_CLOSE_SECONDS``
    after its last input): a workload behind the wall clock that arrived after such a pause
    (the warm-up, then the collector's start) was counted late, every event dead-lettered,
    by chance of timing; runs minutes apart must not depend on it either."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)


# -- CPU per line, before and after, in one run (--cpu) -------------------------------------
CPU_PLAN = (("ref", PIPELINES["full"]), ("nowin", PIPELINES["nowindows"]), ("backfill", PIPELINES["full"]))


def baseline_tree(work: Path, ref: str) -> Path:
    """``git archive`` of ``ref``'s engine, pipelines and benchmark pipelines: the "before"."""
    base = work / "baseline"
    base.mkdir()
    arch = subprocess.run(["git", "archive", ref, "streams", "pipelines", "schemas",
                           "benchmarks/e2e_pipelines"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(base)], input=arch, check=True)
    return base


async def cpu_compare(args: argparse.Namespace) -> dict[str, Any]:
    """The reference, no-windows and backfill runs with the collector and worker of
    ``--baseline-ref`` and of the working tree, alternating, ``--reps`` times each; py-spy
    profiles of the working tree's collector and worker in the first round."""
    run_id = uuid.uuid4().hex[:6]
    work = Path(tempfile.mkdtemp(prefix="lrbe2e-cpu-"))
    commit = subprocess.run(["git", "rev-parse", "--short", args.baseline_ref], cwd=ROOT,  # noqa: ASYNC221
                            capture_output=True, text=True, check=True).stdout.strip()
    res: dict[str, Any] = {
        "run": datetime.now(UTC).isoformat(timespec="seconds"), "run_id": run_id, "mode": "cpu",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "python": platform.python_version(), "load_at_start": load_average(),
        "lines": args.lines, "tail_templates": args.tail_templates, "event_rate": args.event_rate,
        "baseline_ref": args.baseline_ref,
        "baseline_commit": commit,
    }
    start = timeline_start()
    warm = generate(work / "warm", args.warm_lines, seed=101, start=start,
                    tail_templates=args.tail_templates, entries_per_second=2000)
    gen = generate(work / "main", args.lines, seed=11, start=start + timedelta(minutes=1),
                   tail_templates=args.tail_templates, entries_per_second=args.event_rate or None)
    sparse = generate(work / "sparse", args.lines, seed=11, start=start + timedelta(minutes=1),
                      tail_templates=args.tail_templates)
    trees = {"after": ROOT, "before": baseline_tree(work, args.baseline_ref)}
    runs: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    try:
        for rep in range(args.reps):
            for side in (("before", "after") if rep % 2 == 0 else ("after", "before")):
                for name, pipe in CPU_PLAN:
                    tag = f"{side}{rep}-{name}"
                    spy = args.profile and rep == 0 and side == "after"
                    prof = work / f"{tag}.pyspy" if spy and name in ("ref", "backfill") else None
                    cprof = work / f"{tag}.collector.pyspy" if spy and name == "ref" else None
                    src = sparse if name == "backfill" else gen
                    r = await e2e_run(tag, pipe, 4, 1, run_id, work, warm.root, warm.events, src.root,
                                      src.lines, src.events, args.timeout, profile=prof,
                                      tree=trees[side], collector_profile=cprof)
                    s = r.pop("_settings")
                    if not records and side == "after" and name == "ref":
                        messages, _ = await read_topic(s.kafka_bootstrap, s.topic(config.RAW))
                        records = sort_records(messages)
                    await cleanup(s)
                    for p, key, stages_of, other in (
                            (prof, "profile", STAGES, "other (event loop, Faust, idle callbacks)"),
                            (cprof, "collector_profile", COLLECTOR_STAGES, "other (event loop, files, checkpoints)")):
                        if p is not None and p.exists():
                            r[key] = profile_summary(p, stages_of, other)
                            stem = f"cpu_{'collector' if key == 'collector_profile' else 'worker_' + name}"
                            (RESULTS / f"{stem}.collapsed.txt.gz").write_bytes(gzip.compress(p.read_bytes()))
                            flame_svg(p, RESULTS / f"{stem}.svg", f"{stem} (py-spy, 100 Hz)")
                    r.update(side=side, rep=rep, kind=name)
                    runs.append(r)
        res["runs"] = runs
        res["inprocess"] = cpu_inprocess(records, work, trees["before"], args.reps)
    finally:
        for r in runs:
            await cleanup(settings_for(run_id, f"{r['side']}{r['rep']}-{r['kind']}", work))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    res["load_at_end"] = load_average()
    return res


def cpu_inprocess(records: list[dict[str, Any]], work: Path, base: Path, reps: int) -> dict[str, Any]:
    """Structuring before/after (subprocesses, alternating), the template miner and Drain3 on
    the same lines."""
    from drain3 import TemplateMiner as Drain3Miner

    from streams.pipeline import load_pipeline
    out: dict[str, Any] = {"records": len(records)}
    recs_path = work / "records.pickle"
    recs_path.write_bytes(pickle.dumps(records))
    sides: dict[str, list[float]] = {"before": [], "after": []}
    for r in range(2):
        for side in (("after", "before") if r % 2 == 0 else ("before", "after")):
            sides[side].append(inproc_side(ROOT if side == "after" else base, recs_path, reps))
    out["structure_before_us"], out["structure_after_us"] = min(sides["before"]), min(sides["after"])
    p = load_pipeline("kubernetes")
    parsed = [e["message"] for e in p.structure(records, None).events]
    for tag, msgs in (("raw", [r["message"] for r in records]), ("parsed", parsed)):
        for who in ("logriver", "drain3"):
            best = math.inf
            for _ in range(reps):
                gc.collect()
                t0 = time.process_time()
                if who == "logriver":
                    miner = p.new_miner()
                    for m in msgs:
                        miner.match(m)
                else:
                    d3 = Drain3Miner()
                    for m in msgs:
                        d3.add_log_message(m)
                best = min(best, time.process_time() - t0)
            out[f"{who}_miner_{tag}_us"] = round(best / len(msgs) * 1e6, 2)
    return out


def median_per_line(runs: list[dict[str, Any]], side: str, kind: str, what: str) -> float | None:
    xs = [r[what] / r["lines"] * 1e6 for r in runs if r["side"] == side and r["kind"] == kind]
    return round(statistics.median(xs), 1) if xs else None


def write_cpu_results(res: dict[str, Any], cmd: str) -> str:
    (RESULTS / "cpu.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    runs = res["runs"]
    fig: dict[str, dict[str, float | None]] = {}
    for side in ("before", "after"):
        f = fig[side] = {
            "collector": median_per_line(runs, side, "ref", "collector_cpu_s"),
            "worker": median_per_line(runs, side, "ref", "worker_cpu_s"),
            "worker_nowin": median_per_line(runs, side, "nowin", "worker_cpu_s"),
            "backfill": median_per_line(runs, side, "backfill", "worker_cpu_s"),
            "es": median_per_line(runs, side, "ref", "elasticsearch_cpu_s"),
            "kafka": median_per_line(runs, side, "ref", "kafka_cpu_s"),
        }
        f["windows"] = round(f["worker"] - f["worker_nowin"], 1)
        f["chain"] = round(f["collector"] + f["worker"], 1)
    res["figures"] = fig
    (RESULTS / "cpu.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    ip = res.get("inprocess", {})
    b, a = fig["before"], fig["after"]

    def row(label: str, key: str, how: str) -> str:
        ratio = f"{b[key] / a[key]:.2f}×" if a.get(key) and b.get(key) else "–"
        es = a.get("es")
        vs_es = f"{a[key] / es:.2f}" if es and a.get(key) is not None else "–"
        return f"| {label} | {fmt(b[key], 1)} | **{fmt(a[key], 1)}** | {ratio} | {vs_es} | {how} |"
    reps = max(r["rep"] for r in runs) + 1
    L = [
        "# CPU per line, before and after (one run)",
        "",
        (f"Run {res['run']} ({res['machine']}, Python {res['python']}; load average "
         f"{res['load_at_start']} at start, {res['load_at_end']} at end). Workload as in `e2e.md`: "
         f"{res['lines']:,} loggen lines (seed 11, {res['tail_templates']} tail templates), event time "
         f"at {fmt(res['event_rate'])} lines/s; the backfill run the same lines at about 5 lines/s of "
         f"event time. 1 worker, 4 partitions. *Before*: `{res['baseline_ref']}` "
         f"({res['baseline_commit']}), run from its `git archive`; *after*: the working tree. "
         f"{reps} rounds, sides alternating; each figure is the **median** over the rounds of the "
         "process's user+sys CPU (psutil) over the run divided by its lines. The machine is shared "
         "(2 cores, other jobs): CPU time moves much less than wall time, but it moves."),
        "",
        "| µs CPU per line | before | after | before/after | after ÷ Elasticsearch's | how |",
        "|---|---|---|---|---|---|",
        row("collector (files → Kafka)", "collector", "collector process, `collect --once`"),
        row("worker, reference run", "worker", "worker process until no lag on raw and window topics"),
        row("  of which windows + scoring", "windows", "worker − worker without windows"),
        row("worker without windows", "worker_nowin", "structuring + indexing + topics"),
        row("**collector + worker**", "chain", "goal ≤ 20"),
        row("worker, backfill (5 lines/s of event time)", "backfill", "goal ≤ 30"),
        row("Elasticsearch (server)", "es", "JVM process, reference run"),
        row("Kafka (server)", "kafka", "JVM process, reference run"),
        "",
        "In-process, on the reference run's raw records (1 core, best of runs):",
        "",
        "| µs CPU per line | before | after |",
        "|---|---|---|",
        (f"| structuring (parse, ECS, templates) | {fmt(ip.get('structure_before_us'), 2)} | "
        f"{fmt(ip.get('structure_after_us'), 2)} |"),
        "",
        "| template mining, µs per line | Logriver miner | Drain3 (default config) | miner ÷ Drain3 lines/s |",
        "|---|---|---|---|",
    ]
    for tag, label in (("parsed", "parsed messages (what the pipeline mines)"), ("raw", "raw lines")):
        lr, d3 = ip.get(f"logriver_miner_{tag}_us"), ip.get(f"drain3_miner_{tag}_us")
        L.append(f"| {label} | {fmt(lr, 2)} | {fmt(d3, 2)} | "
                 f"{f'{d3 / lr:.2f}' if lr and d3 else '–'} |")
    L += ["", "Every run:", "",
          "| side | round | run | lines/s to searchable | collector CPU s | worker CPU s | Elasticsearch CPU s | zero loss |",
          "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        L.append(f"| {r['side']} | {r['rep']} | {r['kind']} | {fmt(r['lines_per_s'])} | "
                 f"{r['collector_cpu_s']} | {r['worker_cpu_s']} | {r.get('elasticsearch_cpu_s', '–')} | "
                 f"{'yes' if r['zero_loss'] else 'NO'} |")
    for r in runs:
        for key, what in (("collector_profile", "collector"), ("profile", f"worker, {r['kind']}")):
            prof = r.get(key)
            if not prof or not prof.get("samples"):
                continue
            stem = f"cpu_{'collector' if key == 'collector_profile' else 'worker_' + r['kind']}"
            L += ["", (f"Where the {what} run's CPU goes (py-spy, 100 Hz, {prof['samples']} samples; "
                      f"flame graph `{stem}.svg`, stacks `{stem}.collapsed.txt.gz`):"), "",
                  "| stage | share |", "|---|---|"]
            L += [f"| {k} | {v:.0%} |" for k, v in prof["stages"]]
            L += ["", "Most self time: " + "; ".join(f"`{f}` {v:.0%}" for f, v in prof["self"][:8]) + "."]
    L += ["", f"Command: `{cmd}`."]
    text = "\n".join(L) + "\n"
    (RESULTS / "cpu.md").write_text(text)
    return text


# -- report ---------------------------------------------------------------------------------
def per_m(cpu: float, lines: int) -> float:
    return round(cpu / lines * 1e6, 1)


def derive(res: dict[str, Any]) -> dict[str, Any]:
    runs = {r["run"]: r for r in res["runs"]}
    ref = runs["ref"]
    d: dict[str, Any] = {}
    lines = ref["lines"]
    d["collector_cpu_per_m"] = per_m(ref["collector_cpu_s"], lines)
    d["worker_cpu_per_m"] = per_m(ref["worker_cpu_s"], lines)
    for k in ("elasticsearch", "kafka"):
        if f"{k}_cpu_s" in ref:
            d[f"{k}_cpu_per_m"] = per_m(ref[f"{k}_cpu_s"], lines)
    if "nowin" in runs:
        d["worker_nowindows_cpu_per_m"] = per_m(runs["nowin"]["worker_cpu_s"], lines)
        d["windows_scoring_cpu_per_m"] = round(d["worker_cpu_per_m"] - d["worker_nowindows_cpu_per_m"], 1)
        if "backfill" in runs:
            d["worker_backfill_cpu_per_m"] = per_m(runs["backfill"]["worker_cpu_s"], lines)
            d["windows_scoring_backfill_cpu_per_m"] = round(
                d["worker_backfill_cpu_per_m"] - d["worker_nowindows_cpu_per_m"], 1)
    ip = res.get("inprocess")
    if ip:
        d["structure_cpu_per_m"] = round(ip["structure_us"], 1)  # us/line == s per M lines
        d["windows_scoring_inproc_per_m"] = round(ip["structure_windows_us"] - ip["structure_us"], 1)
        if "worker_nowindows_cpu_per_m" in d:
            d["worker_io_cpu_per_m"] = round(d["worker_nowindows_cpu_per_m"] - d["structure_cpu_per_m"], 1)
    if "es_ceiling" in res and "kafka_ceiling" in res:
        ev_ratio = ref["events"] / ref["lines"]
        es_lines = res["es_ceiling"]["docs_per_s"] / ev_ratio  # docs are events
        d["es_ceiling_lines_per_s"] = round(es_lines)
        d["kafka_ceiling_lines_per_s"] = res["kafka_ceiling"]["lines_per_s"]
        binding = min(es_lines, d["kafka_ceiling_lines_per_s"])
        d["binding"] = "Elasticsearch" if es_lines <= d["kafka_ceiling_lines_per_s"] else "Kafka"
        d["ratio_es"] = round(ref["lines_per_s"] / es_lines, 3)
        d["ratio_binding"] = round(ref["lines_per_s"] / binding, 3)
        d["ratio_es_drained"] = round(ref["drained_lines_per_s"] / es_lines, 3)
    parts = [d.get(k) for k in ("collector_cpu_per_m", "worker_cpu_per_m",
                                "elasticsearch_cpu_per_m", "kafka_cpu_per_m")]
    if all(p is not None for p in parts):
        # every process of the chain shares these cores: at best they are all busy at once
        d["cpu_per_line_us"] = round(sum(parts), 1)
        d["cpu_budget_lines_per_s"] = round((os.cpu_count() or 1) * 1e6 / sum(parts))
        d["ratio_cpu_budget"] = round(ref["drained_lines_per_s"] / d["cpu_budget_lines_per_s"], 3)
    return d


def fmt(x: Any, nd: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:,.{nd}f}" if isinstance(x, (int, float)) else str(x)


def write_results(res: dict[str, Any], cmd: str) -> str:
    RESULTS.mkdir(parents=True, exist_ok=True)
    d = res["derived"] = derive(res)
    stem = "e2e_soak" if res.get("mode") == "soak" else "e2e"
    (RESULTS / f"{stem}.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    runs = {r["run"]: r for r in res["runs"]}
    ref = runs["ref"]
    L: list[str] = [
        "# End to end: files → collector → Kafka → worker → Elasticsearch",
        "",
        (f"Run {res['run']} ({res['mode']}; {res['machine']}, Python {res['python']}; load "
         f"average {res['load_at_start']} at start, {res['load_at_end']} at end). Kafka and "
         "Elasticsearch are single local nodes on the same 2 cores as the collector and workers."),
        "",
        (f"Workload: `streams.demo.loggen`, {ref['lines']:,} lines ({ref['events']:,} events once "
         f"stack traces are merged), seed 11, 6 containers (JSON, nginx, Java with stack traces, "
         f"Python, klog) plus a long tail of {res['tail_templates']} templates; docker json-file. "
         + (f"Event time advances at {fmt(res['event_rate'])} lines/s (`--event-rate`; a busy node: "
            "windows close about as often per line as they would live). The *backfill* run reads "
            "the same number of lines at the generator's default density (about 5 lines/s of event "
            "time, historical logs replayed): a window closes and models retrain every few dozen "
            "lines, the costly end for windows and scoring."
            if res.get("event_rate") else
            "Event time at the generator's default density (about 5 lines/s).")),
        "",
        "## Throughput (zero loss checked by counts)",
        "",
        ("*lines/s to searchable*: lines / (collector start → Elasticsearch counts every event), "
         "the worker(s) already running and warmed up, the whole backlog in the files at start. "
         "*incl. windows drained*: lines / (collector start → the consumer group has no lag left "
         "on the raw and the window topics), i.e. what the worker sustains with windows and "
         "scoring keeping up; the latency runs are paced at 50% and 80% of this figure for the "
         "reference run. Worker CPU is counted over the latter interval."),
        "",
        "| run | workers | partitions | lines/s to searchable | events/s | seconds | lines/s incl. windows drained | searchable = generated | worker CPU s | collector CPU s | worker peak RSS MiB | collector peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    label = {"ref": "kubernetes pipeline (reference)", "nowin": "same, without windows/scoring",
             "backfill": "same, historical backfill (5 lines/s of event time)",
             "w2p4": "kubernetes", "w1p8": "kubernetes, 8 partitions", "w2p8": "kubernetes, 8 partitions"}
    for r in res["runs"]:
        L.append(f"| {label.get(r['run'], r['run'])} | {r['workers']} | {r['partitions']} | "
                 f"**{fmt(r['lines_per_s'])}** | {fmt(r['events_per_s'])} | {r['seconds']} | {fmt(r['drained_lines_per_s'])} | "
                 f"{'yes' if r['zero_loss'] else 'NO: ' + str(r['searchable'])} | {r['worker_cpu_s']} | "
                 f"{r['collector_cpu_s']} | {' + '.join(str(x) for x in r['worker_peak_rss_mib'])} | "
                 f"{r['collector_peak_rss_mib']} |")
    if "es_ceiling" in res:
        kc, ec = res["kafka_ceiling"], res["es_ceiling"]
        L += ["", "## Ceilings (same run)", "",
              "| | lines/s | notes |", "|---|---|---|",
              f"| end to end, 1 worker | **{fmt(ref['lines_per_s'])}** | ratio to Elasticsearch ceiling **{d['ratio_es']:.2f}**, to the binding ceiling ({d['binding']}) {d['ratio_binding']:.2f} |",
              f"| Elasticsearch alone | {fmt(d['es_ceiling_lines_per_s'])} | {fmt(ec['docs_per_s'])} docs/s (median of {len(ec['rounds'])}: {ec['rounds']}), pre-built `_bulk` bodies of {ec['docs']:,} realistic events ({ec['avg_doc_bytes']} B/doc), 2000/bulk, 2 in flight; lines/s = docs/s × lines/events |",
              *([(f"| all processes on {os.cpu_count()} cores (CPU budget) | {fmt(d['cpu_budget_lines_per_s'])} | "
                 f"cores / CPU per line of the whole chain measured in the reference run ({d['cpu_per_line_us']} µs: collector + worker + "
                 f"Elasticsearch + Kafka): what this machine could do if every process were busy all the time; the reference run "
                 f"with windows drained reaches {d['ratio_cpu_budget']:.2f} of it. The Elasticsearch-alone ceiling uses both cores "
                 f"for Elasticsearch only, so no chain sharing those cores can reach 0.7 of it unless the other stages cost less "
                 f"than 0.43× what Elasticsearch does per line |")] if "cpu_budget_lines_per_s" in d else []),
              f"| Kafka alone | {fmt(kc['lines_per_s'])} | the reference run's {kc['messages']:,} raw-topic messages ({kc['mb']} MB, {kc['records']:,} lines): produce {fmt(kc['produce_lines_per_s'])} lines/s (acks=all, idempotent, zstd), consume {fmt(kc['consume_lines_per_s'])} lines/s; the slower of the two |"]
    L += ["", "## Latency from line written to searchable", "",
          "| load | target lines/s | achieved lines/s | probes | min s | p50 s | p95 s | p99 s | max s | lost probes | events searchable = written |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res.get("latency", []):
        L.append(f"| {int(r['load_fraction'] * 100)}% | {fmt(r['target_lines_per_s'])} | {fmt(r['achieved_lines_per_s'])} | "
                 f"{r['probes']} | {min(r['latencies']) if r['latencies'] else '–'} | {r['p50_s']} | {r['p95_s']} | **{r['p99_s']}** | {r['max_s']} | {r['probes_lost']} | "
                 f"{'yes' if r['zero_loss'] else 'NO'} ({r['events_searchable']:,}) |")
    L += ["", (f"Method: a paced writer appends loggen lines to the node files every 50 ms and "
               f"{PROBE_HZ} probes/s (JSON lines holding a sequence number, `ts` = write time); "
               "the collector follows the files (subprocess, default 0.25 s poll), one worker runs "
               f"the kubernetes pipeline; a poller searches Elasticsearch every {POLL * 1000:.0f} ms "
               "for probes and records when each first shows up (so each figure includes up to "
               f"{POLL * 1000:.0f} ms of polling). The first {res['latency'][0]['warmup_s'] if res.get('latency') else '-'} s are not counted. "
               "\"Searchable\" includes Elasticsearch's refresh: the Logriver index template sets "
               "`refresh_interval: 5s`, so a document waits 0–5 s (2.5 s on average) after it "
               "was indexed before any search sees it. The latency plot shows it: a 5 s sawtooth whose "
               "floor (the min column: collector poll, Kafka, the worker's 0.25 s buffer, the bulk "
               "request) is the pipeline's own latency; the rest is waiting for the next refresh.")]
    L += ["", "## CPU seconds per million lines, by stage (reference run)", "",
          "| stage | CPU s / M lines | how |", "|---|---|---|",
          f"| collector (files → Kafka) | {fmt(d['collector_cpu_per_m'], 1)} | collector process (`/usr/bin/time -v`) |"]
    if "structure_cpu_per_m" in d:
        L.append(f"| structuring (parse, ECS, templates) | {fmt(d['structure_cpu_per_m'], 1)} | in-process `LocalRun` on the run's raw records |")
    if "windows_scoring_cpu_per_m" in d:
        L.append(f"| windows + scoring | {fmt(d['windows_scoring_cpu_per_m'], 1)} | worker CPU with windows − without (in-process: {fmt(d.get('windows_scoring_inproc_per_m'), 1)}) |")
    if "windows_scoring_backfill_cpu_per_m" in d:
        L.append(f"| windows + scoring, backfill | {fmt(d['windows_scoring_backfill_cpu_per_m'], 1)} | backfill worker CPU − worker without windows |")
    if "worker_io_cpu_per_m" in d:
        L.append(f"| indexing + Kafka I/O + Faust (worker side) | {fmt(d['worker_io_cpu_per_m'], 1)} | worker CPU without windows − in-process structuring |")
    L.append(f"| worker total | {fmt(d['worker_cpu_per_m'], 1)} | worker process, until no lag on raw and window topics |")
    for k in ("elasticsearch", "kafka"):
        if f"{k}_cpu_per_m" in d:
            L.append(f"| {k} server | {fmt(d[f'{k}_cpu_per_m'], 1)} | the JVM process over the same interval |")
    profiled = [r for r in res["runs"] if (r.get("profile") or {}).get("samples")]
    if profiled:
        L += ["", "## Where the worker's CPU goes (py-spy, same runs)", "",
              ("py-spy sampled the worker at 100 Hz from the collector's start until no lag was "
               "left; each sample is charged to the innermost frame below that names a stage. "
               "Shares of samples, not of CPU seconds (idle time is not sampled)."), "",
              "| stage | " + " | ".join(label.get(r["run"], r["run"]) for r in profiled) + " |",
              "|---|" + "---|" * len(profiled)]
        names = list(dict.fromkeys(k for r in profiled for k, _ in r["profile"]["stages"]))
        for n in names:
            L.append(f"| {n} | " + " | ".join(
                f"{dict(map(tuple, r['profile']['stages'])).get(n, 0):.0%}" for r in profiled) + " |")
        L.append("| samples | " + " | ".join(str(r["profile"]["samples"]) for r in profiled) + " |")
        for r in profiled:
            L += ["", f"Most self time, {label.get(r['run'], r['run'])}: " + "; ".join(
                f"`{f}` {sh:.0%}" for f, sh in r["profile"]["self"][:8]) + "."]
    ip = res.get("inprocess")
    if ip:
        L += ["", "## Structuring vs Drain3, in-process, same lines", "",
              "| | µs CPU / line | lines/s (1 core) | templates |", "|---|---|---|---|",
              f"| Logriver structuring (parse + ECS + template) | {ip['structure_us']} | {fmt(1e6 / ip['structure_us'])} | – |",
              f"| Logriver structuring + windows + scoring | {ip['structure_windows_us']} | {fmt(1e6 / ip['structure_windows_us'])} | – |",
              *(f"| {who} alone, on {what} | {ip[f'{key}_{tag}_us']} | {fmt(1e6 / ip[f'{key}_{tag}_us'])} | {ip[tk + '_' + tag]} |"
                for tag, what in (("parsed", "parsed messages (what the pipeline mines)"), ("raw", "raw lines"))
                for who, key, tk in (("Logriver template miner", "logriver_miner", "logriver_templates"),
                                     ("Drain3 (default config)", "drain3", "drain3_templates"))),
              "", f"{ip['records']:,} raw records of the reference run (read back from its raw topic, sorted by time)."]
        ba = ip.get("before_after", {})
        if "before_us" in ba:
            L += ["", "## Hot path: before / after (same run)", "",
                  f"Structuring µs CPU per line (best of runs, subprocesses alternating): before (`{ba['ref']}`) "
                  f"**{ba['before_us']}** ({ba['before_all']}), after (working tree) **{ba['after_us']}** "
                  f"({ba['after_all']}): {100 * (1 - ba['after_us'] / ba['before_us']):+.1f}% CPU saved. "
                  + (f"Files changed on the structuring path: {', '.join(ba['changed_files'])}." if ba["changed_files"]
                     else "No file on the structuring path differs from the baseline: this pair is a null control (the difference is noise).")]
        for key, title in (("profile_structure", "structuring"), ("profile_windows", "structuring + windows + scoring")):
            L += ["", f"Top costs, {title} (pyinstrument, in-process over the same records; full tree in `benchmarks/results/e2e_{key}.txt`):", "",
                  "| inclusive: function | file | s | share |", "|---|---|---|---|"]
            L += [f"| `{c['function']}` | {c['file']} | {c['incl_s']} | {c['share']:.0%} |" for c in ip[key + "_inclusive"][:12]]
            L += ["", "| self time: function | file | s | share |", "|---|---|---|---|"]
            L += [f"| `{c['function']}` | {c['file']} | {c['self_s']} | {c['share']:.0%} |" for c in ip[key][:8]]
    if res.get("density"):
        L += ["", "## CPU per line against event-time density (in-process)", "",
              ("The same workload generated at several event-time rates (`loggen` "
               "`entries_per_second`), structured and windowed in-process like the worker does. "
               "Aggregating costs per event; closing a (window, key), scoring it and retraining the "
               "count models cost per window, so their share per line falls as windows fill. The "
               "reference throughput run uses `--event-rate`, the backfill run the default "
               "density (the first row)."), "",
              "| event time lines/s | lines | windows closed | lines per window doc | structuring µs/line | windows + scoring µs/line | total µs/line | anomalies |",
              "|---|---|---|---|---|---|---|---|"]
        for r in res["density"]:
            L.append(f"| {fmt(r['lines_per_s_event_time'], 1)} | {r['records']:,} | {r['windows_closed']:,} | "
                     f"{r['events_per_window_doc']} | {r['structure_us']} | {r['windows_scoring_us']} | "
                     f"**{r['total_us']}** | {r['anomalies']} |")
    L += ["", "## Goals", "", *goals(res, d), "", f"Command: `{cmd}`."]
    md = "\n".join(L) + "\n"
    (RESULTS / f"{stem}.md").write_text(md)
    plots(res, d, stem)
    return md


def goals(res: dict[str, Any], d: dict[str, Any]) -> list[str]:
    out = []
    if "ratio_es" in d:
        ok = d["ratio_es"] >= 0.7
        out.append(f"- End to end ≥ 0.7 of the Elasticsearch-alone ceiling: **{d['ratio_es']:.2f}** — "
                   + ("met." if ok else f"missed by {0.7 - d['ratio_es']:.2f} ({(0.7 / d['ratio_es'] - 1) * 100:.0f}% more throughput needed).")
                   + f" Counting until windows and scoring have caught up too: **{d['ratio_es_drained']:.3f}**.")
    if "structure_cpu_per_m" in d and "windows_scoring_cpu_per_m" in d:
        tot = d["structure_cpu_per_m"] + d["windows_scoring_cpu_per_m"]
        ip = res["inprocess"]
        out.append(f"- Structuring + windows + scoring ≤ 20 µs CPU/line: **{tot:.1f} µs** in the worker "
                   f"({d['structure_cpu_per_m']:.1f} structuring + {d['windows_scoring_cpu_per_m']:.1f} windows/scoring; "
                   f"in-process {ip['structure_windows_us']:.1f}) — " + ("met." if tot <= 20 else f"missed by {tot - 20:.1f} µs ({tot / 20:.1f}×)."))
        if "windows_scoring_backfill_cpu_per_m" in d:
            tb = d["structure_cpu_per_m"] + d["windows_scoring_backfill_cpu_per_m"]
            out.append(f"- The same on the backfill workload: **{tb:.1f} µs** — "
                       + ("met." if tb <= 20 else f"missed by {tb - 20:.1f} µs ({tb / 20:.1f}×)."))
    dens = [r for r in res.get("density", []) if r["entries_per_second"]]
    if dens:
        out.append("- The same, in-process, by event-time density: " + "; ".join(
            f"{fmt(r['lines_per_s_event_time'])} lines/s → **{r['total_us']} µs** "
            + ("(met)" if r["total_us"] <= 20 else f"({r['total_us'] / 20:.1f}×)") for r in dens) + ".")
    for r in res.get("latency", []):
        if r["load_fraction"] == 0.5:
            ok = r["p99_s"] <= 3
            out.append(f"- p99 ≤ 3 s at 50% load: **{r['p99_s']} s** — " + ("met." if ok else f"missed by {r['p99_s'] - 3:.2f} s."))
    soak = [r for r in res.get("latency", []) if r["seconds"] >= 600]
    if soak:
        s = soak[0]["rss_series"]
        warm = [x for x in s if x[0] >= 120]
        if warm:
            g = (warm[-1][1] - warm[0][1]) / warm[0][1]
            out.append(f"- Bounded memory (RSS growth < 10% after warm-up, 10 min): worker {warm[0][1]:.0f} → {warm[-1][1]:.0f} MiB "
                       f"(**{g * 100:+.1f}%**) — " + ("met." if g < 0.1 else "missed."))
    else:
        out.append("- Bounded memory over 10 minutes: not measured in this run (`--soak`).")
    return out


def plots(res: dict[str, Any], d: dict[str, Any], stem: str = "e2e") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = res["runs"]
    fig, ax = plt.subplots(figsize=(8, 4))
    names = [f"{r['run']}\n{r['workers']}w/{r['partitions']}p" for r in runs]
    vals = [r["lines_per_s"] for r in runs]
    colors = ["#1f77b4"] * len(runs)
    if "es_ceiling_lines_per_s" in d:
        names += ["ES alone", "Kafka alone"]
        vals += [d["es_ceiling_lines_per_s"], d["kafka_ceiling_lines_per_s"]]
        colors += ["#aaaaaa", "#cccccc"]
    ax.bar(names, vals, color=colors)
    for i, v in enumerate(vals):
        ax.text(i, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("lines / s")
    ax.set_yscale("log")
    ax.set_title("End-to-end throughput vs ceilings (same run)")
    fig.tight_layout()
    fig.savefig(RESULTS / f"{stem}_throughput.png", dpi=110)
    plt.close(fig)
    if res.get("latency"):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        for r in res["latency"]:
            xs = sorted(r["latencies"])
            if not xs:
                continue
            a1.plot(xs, [(i + 1) / len(xs) for i in range(len(xs))],
                    label=f"{int(r['load_fraction'] * 100)}% ({r['achieved_lines_per_s']:,} lines/s)")
            a2.plot([t for t, _ in r["series"]], [v for _, v in r["series"]], ".", ms=2,
                    label=f"{int(r['load_fraction'] * 100)}%")
        a1.axvline(3, color="red", ls="--", lw=0.8)
        a1.set_xlabel("written → searchable (s)")
        a1.set_ylabel("fraction of probes")
        a1.legend()
        a2.set_xlabel("time in run (s)")
        a2.set_ylabel("latency (s)")
        a2.legend()
        fig.suptitle("Latency, line written → searchable (includes 5 s refresh interval)")
        fig.tight_layout()
        fig.savefig(RESULTS / f"{stem}_latency.png", dpi=110)
        plt.close(fig)
    stages = [(k, d.get(v)) for k, v in (("collector", "collector_cpu_per_m"),
                                         ("structuring", "structure_cpu_per_m"),
                                         ("windows+scoring", "windows_scoring_cpu_per_m"),
                                         ("worker I/O\n(index, Kafka, Faust)", "worker_io_cpu_per_m"),
                                         ("Elasticsearch\nserver", "elasticsearch_cpu_per_m"),
                                         ("Kafka\nserver", "kafka_cpu_per_m")) if d.get(v) is not None]
    if stages:
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.bar([k for k, _ in stages], [v for _, v in stages], color="#2ca02c")
        for i, (_, v) in enumerate(stages):
            ax.text(i, v, f"{v:.0f}", ha="center", va="bottom", fontsize=8)
        ax.set_ylabel("CPU seconds per million lines")
        ax.set_title("CPU per stage (reference run)")
        fig.tight_layout()
        fig.savefig(RESULTS / f"{stem}_cpu.png", dpi=110)
        plt.close(fig)
    dens = res.get("density") or []
    if dens:
        fig, ax = plt.subplots(figsize=(8, 4))
        labels = [f"{r['lines_per_s_event_time']:,.0f}/s\n{r['events_per_window_doc']:,.0f} per window" for r in dens]
        st = [r["structure_us"] for r in dens]
        ws = [max(r["windows_scoring_us"], 0) for r in dens]
        ax.bar(labels, st, label="structuring", color="#1f77b4")
        ax.bar(labels, ws, bottom=st, label="windows + scoring", color="#ff7f0e")
        for i, r in enumerate(dens):
            ax.text(i, st[i] + ws[i], f"{r['total_us']:.1f}", ha="center", va="bottom", fontsize=8)
        ax.axhline(20, color="red", ls="--", lw=0.8, label="goal: 20 µs")
        ax.set_xlabel("event-time density (lines per second; lines per window document)")
        ax.set_ylabel("µs CPU per line")
        ax.set_title("CPU per line against event-time density (in-process)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(RESULTS / f"{stem}_density.png", dpi=110)
        plt.close(fig)
    soak = [r for r in res.get("latency", []) if r.get("rss_series")]
    if soak:
        fig, ax = plt.subplots(figsize=(8, 3.5))
        for r in soak:
            s = r["rss_series"]
            ax.plot([x[0] for x in s], [x[1] for x in s], label=f"worker ({r['run']})")
            ax.plot([x[0] for x in s], [x[2] for x in s], "--", label=f"collector ({r['run']})")
        ax.set_xlabel("s")
        ax.set_ylabel("RSS MiB")
        ax.legend(fontsize=8)
        ax.set_title("Resident memory during the latency runs")
        fig.tight_layout()
        fig.savefig(RESULTS / f"{stem}_memory.png", dpi=110)
        plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smaller run (a couple of minutes)")
    ap.add_argument("--soak", action="store_true",
                    help="reference run + a 10-minute run at 50%% load for memory growth")
    ap.add_argument("--lines", type=int)
    ap.add_argument("--warm-lines", type=int, default=2000)
    ap.add_argument("--tail-templates", type=int, default=500)
    ap.add_argument("--event-rate", type=float, default=2000,
                    help="lines per second of event time in the throughput workload (a busy "
                         "node: windows close as often as in real time); 0 = the generator's "
                         "default, about 5/s. The backfill run always uses the default")
    ap.add_argument("--no-profile", dest="profile", action="store_false",
                    help="do not sample the reference worker with py-spy")
    ap.add_argument("--latency-seconds", type=float)
    ap.add_argument("--latency-warmup", type=float, default=5.0)
    ap.add_argument("--es-docs", type=int)
    ap.add_argument("--es-rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--baseline-ref", default="HEAD",
                    help="git ref whose streams/ is the 'before' of the structuring hot path")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    ap.add_argument("--cpu", action="store_true",
                    help="only CPU per line: the reference, no-windows and backfill runs of "
                         "--baseline-ref and the working tree, alternating --reps times "
                         "(writes cpu.md/.json and py-spy flame graphs)")
    ap.add_argument("--from-json", metavar="E2E.json",
                    help="only render the table and plots again from a saved e2e.json")
    args = ap.parse_args()
    if args.from_json:
        res = json.loads(Path(args.from_json).read_text())
        print(write_results(res, res.get("command", "(re-rendered)")))
        return
    args.lines = args.lines or (30_000 if args.quick else 100_000)
    args.latency_seconds = args.latency_seconds or (20 if args.quick else 45)
    args.es_docs = args.es_docs or (15_000 if args.quick else 40_000)
    if args.quick:
        args.reps = min(args.reps, 2)
        args.es_rounds = min(args.es_rounds, 2)
    cmd = " ".join([".venv/bin/python benchmarks/bench_e2e.py", *sys.argv[1:]])
    tune_gc()
    if args.cpu:
        res = asyncio.run(cpu_compare(args))
        print(write_cpu_results(res, cmd))
        return
    res = asyncio.run(main_async(args))
    if not args.soak:  # in-process, outside the event loop (the tailer runs its own)
        with tempfile.TemporaryDirectory(prefix="lrbe2e-density-") as tmp:
            res["density"] = density_sweep(min(args.lines, 20_000), args.tail_templates,
                                           Path(tmp), args.reps)
    res["command"] = cmd
    print(write_results(res, cmd))


if __name__ == "__main__":
    main()
