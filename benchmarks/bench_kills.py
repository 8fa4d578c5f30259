"""Kill soak: workers and the collector SIGKILLed again and again while container logs rotate,
and every line accounted for in Elasticsearch.

    .venv/bin/python benchmarks/bench_kills.py [--runs 3] [--worker-kills 8] [--collector-kills 2]
                                               [--workers 2] [--lines-each 6000]

Each run writes four containers' logs, one per combination that matters (kubelet's layout with
docker json-file lines rotated by rename, kubelet/CRI by copytruncate, dockerd's layout with
docker lines rotated by dockerd's rename, dockerd/CRI by copytruncate; every 41st line in
runtime chunks), collected live by ``logriver collect`` and processed by ``--workers`` workers of
the test pipeline ``tests/pipelines/windows_exact.py`` (windows with exact counts). During the
writing one of the workers, at random, is SIGKILLed ``--worker-kills`` times at random points
(after it made progress since its restart) and restarted at once; the collector is SIGKILLed
``--collector-kills`` times (the files rotate while it is down). Then, once everything written
is searchable and every raw offset committed (``streams.demo.faults.run_with_kills``):

- lost / duplicated: every line written looked up by its text among the documents (missing;
  more than one document), and every raw message's records by event id (``streams.demo.audit``);
- published again: raw records whose id an earlier record had (the collector, killed before
  its checkpoint was written, read them again): one document each, counted once in windows;
- committed: the group's committed offsets against the end of every raw partition;
- windows: every window document against a batch recomputation over the indexed events
  (``streams.demo.audit.window_audit``): over-counted = an event counted twice.

Prints a table per run and the totals; writes ``benchmarks/results/kills.{md,json}``.
Needs Kafka and Elasticsearch (``logriver services up``); uses its own topics and indices.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.demo.audit import WindowAudit, window_audit
from streams.demo.chain import remove_run
from streams.demo.faults import Container, KillPlan, run_with_kills
from streams.ops.config import Settings
from streams.pipeline import load_pipeline

RESULTS = ROOT / "benchmarks" / "results"
PIPELINE = ROOT / "tests" / "pipelines" / "windows_exact.py"
CONTAINERS = [Container(0, "kubelet", "docker", "rename"),
              Container(1, "kubelet", "cri", "copytruncate"),
              Container(2, "dockerd", "docker", "rename"),
              Container(3, "dockerd", "cri", "copytruncate")]


def _windows_settled(settings: Settings, timeout: float = 180.0) -> WindowAudit:
    """Wait for the last windows to close (idle input, no lag), then audit them."""
    pipeline = load_pipeline(str(PIPELINE))
    deadline = time.monotonic() + timeout
    audit = asyncio.run(window_audit(settings, pipeline))
    while not audit.exact and time.monotonic() < deadline:
        time.sleep(3)
        audit = asyncio.run(window_audit(settings, pipeline))
    time.sleep(2)  # nothing more arrives (no window emitted twice)
    return asyncio.run(window_audit(settings, pipeline))


def one_run(k: int, args: argparse.Namespace, base: Path) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    settings = Settings(topic_prefix=f"lrkill{run}.", index_prefix=f"lrkill-{run}",
                        state_dir=base / f"state{k}")
    pipeline = load_pipeline(str(PIPELINE))
    plan = KillPlan(worker_kills=args.worker_kills, collector_kills=args.collector_kills,
                    workers=args.workers, lines_each=args.lines_each,
                    rotate_every=args.rotate_every, batch=25, pause=args.pause, seed=args.seed + k,
                    age=3 * 3600)  # event time 3 h back: windows (lateness 1 h) close when idle
    workdir = base / f"run{k}"
    workdir.mkdir()
    result = run_with_kills(settings, str(PIPELINE), pipeline.name, CONTAINERS, plan, workdir,
                            check=lambda worker: _windows_settled(settings))
    windows: WindowAudit = result.checked
    row = {
        "run": k + 1, "seed": plan.seed, "lines": result.content.expected,
        "worker_kills": result.timeline.count("worker"),
        "collector_kills": result.timeline.count("collector"),
        "lost": len(result.content.lost), "duplicated": len(result.content.duplicated),
        "unexpected": len(result.content.unexpected),
        "raw_messages": result.raw.raw_messages, "raw_lost": len(result.raw.lost),
        "republished": result.raw.republished,
        "raw_duplicated": len(result.raw.duplicated),
        "committed_to_end": result.raw.committed == {p: o for p, o in
                                                     result.raw.end_offsets.items() if o},
        "windows": windows.documents, "windows_expected": windows.expected,
        "windows_over": windows.over, "windows_under": windows.under,
        "windows_missing": windows.missing, "windows_extra": windows.extra,
        "elapsed_s": round(result.elapsed, 1), "timeline": str(result.timeline),
    }
    if not args.keep:
        problems = asyncio.run(remove_run(settings))
        if problems:
            print("cleanup:", problems, file=sys.stderr)
    return row


def table(rows: list[dict[str, Any]]) -> list[str]:
    out = [("| run | lines | worker kills | collector kills | published again | lost | duplicated "
            "| raw messages (lost/dup) | committed to end | windows exact "
            "(over/under/missing/extra) | time |"),
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(
            f"| {r['run']} | {r['lines']:,} | {r['worker_kills']} | {r['collector_kills']} | "
            f"{r.get('republished', 0)} | {r['lost']} | {r['duplicated']} | {r['raw_messages']:,} "
            f"({r['raw_lost']}/{r['raw_duplicated']}) | {'yes' if r['committed_to_end'] else 'NO'}"
            f" | {r['windows']}/{r['windows_expected']} ({r['windows_over']}/{r['windows_under']}"
            f"/{r['windows_missing']}/{r['windows_extra']}) | {r['elapsed_s']:.0f} s |")
    tot = {k: sum(r.get(k, 0) for r in rows) for k in ("lines", "worker_kills", "collector_kills",
                                                 "republished",
                                                 "lost", "duplicated", "raw_messages",
                                                 "raw_lost", "raw_duplicated", "windows",
                                                 "windows_expected", "windows_over",
                                                 "windows_under", "windows_missing",
                                                 "windows_extra")}
    out.append(
        f"| **all** | {tot['lines']:,} | **{tot['worker_kills']}** | {tot['collector_kills']} | "
        f"{tot['republished']} | "
        f"**{tot['lost']}** | **{tot['duplicated']}** | {tot['raw_messages']:,} "
        f"({tot['raw_lost']}/{tot['raw_duplicated']}) | "
        f"{'yes' if all(r['committed_to_end'] for r in rows) else 'NO'} | "
        f"{tot['windows']}/{tot['windows_expected']} ({tot['windows_over']}/"
        f"{tot['windows_under']}/{tot['windows_missing']}/{tot['windows_extra']}) | "
        f"{sum(r['elapsed_s'] for r in rows):.0f} s |")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--worker-kills", type=int, default=8, help="per run")
    ap.add_argument("--collector-kills", type=int, default=2, help="per run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--lines-each", type=int, default=6000, help="lines per container per run")
    ap.add_argument("--rotate-every", type=int, default=1500)
    ap.add_argument("--pause", type=float, default=0.6,
                    help="seconds between writes of 25 lines (per container)")
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--keep", action="store_true", help="keep topics and indices")
    ap.add_argument("--no-write", action="store_true", help="do not write benchmarks/results")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="lrkills-"))
    started = datetime.now(UTC)
    rows = []
    try:
        for k in range(args.runs):
            row = one_run(k, args, base)
            rows.append(row)
            print("\n".join(table([row])[2:]), flush=True)
    except BaseException:
        print(f"bench_kills: a run failed; the processes' logs are kept in {base}", file=sys.stderr)
        raise
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    lines = table(rows)
    print("\n" + "\n".join(lines))
    if args.no_write:
        return 0
    cmd = "python benchmarks/bench_kills.py " + " ".join(sys.argv[1:])
    md = [
        "# Kill soak: workers and collector SIGKILLed while logs rotate",
        "",
        (f"`{cmd.strip()}` on {started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores shared "
         f"with Kafka and Elasticsearch (Python {platform.python_version()})."),
        "",
        (f"Per run: {len(CONTAINERS)} containers × {args.lines_each:,} lines (kubelet/docker "
         "rename, kubelet/CRI copytruncate, dockerd/docker dockerd-rename, dockerd/CRI "
         f"copytruncate; rotation every {args.rotate_every:,} lines and whenever the collector "
         f"is down), {args.workers} workers of `tests/pipelines/windows_exact.py`, the worker "
         "kills land on one of them at random. Published again = raw records whose id an "
         "earlier record had (the collector read them again from its checkpoint after a kill); "
         "lost = a line written with no document; "
         "duplicated = a line with more than one document; raw = every raw message's records "
         "by event id; windows = every window against a batch recomputation over the indexed "
         "events (over = an event counted twice)."),
        "",
        *lines,
        "",
        "Timelines (seconds from the start of each run):",
        "",
        *[f"- run {r['run']}: {r['timeline']}" for r in rows],
        "",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "kills.md").write_text("\n".join(md))
    (RESULTS / "kills.json").write_text(json.dumps({"started": started.isoformat(),
                                                    "args": vars(args), "runs": rows}, indent=2))
    failed = any(r["lost"] or r["duplicated"] or r["raw_lost"] or not r["committed_to_end"]
                 or r["windows_over"] or r["windows_under"] or r["windows_missing"]
                 for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
