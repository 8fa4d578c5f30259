"""Instructions per line of the hot paths, a baseline ref vs the working tree: a figure the
shared machine's load does not move (CPU seconds do, by 2x on a busy day).

    .venv/bin/python benchmarks/bench_instructions.py --baseline-ref REF [--lines 20000]

Each path runs in-process under ``valgrind --tool=cachegrind --cache-sim=no`` (needs Debian's
valgrind), once with the work and once with only its imports and set-up; the difference over
the lines is the figure. Paths, on ``streams.demo.loggen`` lines (seed 11, 500 tail
templates):

- ``collector``: the node agent's read -> frame -> records -> batch encoding (the production
  tailer over docker json-file logs, each batch encoded as the publisher of that tree does),
- ``structure + windows``: ``LocalRun`` with windows and detectors, event time at 2,000
  lines/s,
- ``backfill``: the same at the generator's default density (about 5 lines/s of event time:
  windows close and the count models retrain every few dozen lines).

Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COLLECTOR = r'''
import asyncio, sys, tempfile
from pathlib import Path
from streams.sources.checkpoints import CheckpointStore
from streams.sources.files import FileTailer
from streams.transport import kafka, records as R
limit = min(getattr(kafka, "DEFAULT_TOPIC_LIMIT", 1048588), 16 * 1024 * 1024) - 512
def encode(recs):
    if hasattr(R, "encode_batches"):
        return R.encode_batches(recs, min(kafka.MAX_MESSAGE_BYTES, limit), limit - R.BATCH_OVERHEAD)
    if hasattr(R, "encode_records"):
        enc, rej = R.encode_records(recs, limit - R.BATCH_OVERHEAD)
        return R.pack_batches([b for _, b in enc], limit), rej
    return kafka.split_batches(recs)
class P:
    n = 0
    async def publish(self, key, recs):
        encode(recs); self.n += len(recs)
if sys.argv[2] == "run":
    p = P()
    t = FileTailer([sys.argv[1] + "/containers/*.log"], p,
                   CheckpointStore(Path(tempfile.mkdtemp()) / "c.json"), host="bench",
                   poll_interval=0.0, release_after=0.0)
    asyncio.run(t.drain())
    print(p.n)
else:
    print(0)
'''

LOCALRUN = r'''
import pickle, sys
from streams.pipeline import load_pipeline
from streams.replay.runner import LocalRun
recs = pickle.loads(open(sys.argv[1], "rb").read())
p = load_pipeline("kubernetes")
if sys.argv[2] == "run":
    run = LocalRun(p, windows=True)
    for i in range(0, len(recs), 500):
        run.process(recs[i:i + 500])
    run.finish()
print(len(recs))
'''


def instructions(tree: Path, code: str, data: Path, mode: str) -> tuple[int, int]:
    with tempfile.NamedTemporaryFile(suffix=".cg") as out:
        res = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no",
                              f"--cachegrind-out-file={out.name}", sys.executable, "-c", code,
                              str(data), mode], cwd=tree, capture_output=True, text=True,
                             check=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)})
        summary = next(x for x in Path(out.name).read_text().splitlines() if x.startswith("summary:"))
    return int(summary.split()[1]), int(res.stdout.strip().splitlines()[-1] or 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline-ref", required=True)
    ap.add_argument("--lines", type=int, default=20_000)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import pickle

    from bench_e2e import loggen_records

    from streams.demo.loggen import generate
    with tempfile.TemporaryDirectory(prefix="bench-instr-") as tmp:
        work = Path(tmp)
        base = work / "baseline"
        base.mkdir()
        arch = subprocess.run(["git", "archive", args.baseline_ref, "streams", "pipelines", "schemas"],
                              cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=arch, check=True)
        files = work / "files"
        generate(files, args.lines, seed=11, start=datetime(2026, 1, 1, tzinfo=UTC),
                 tail_templates=500, entries_per_second=2000)
        data = {}
        for name, rate in (("live", 2000.0), ("backfill", None)):
            data[name] = work / f"{name}.pickle"
            data[name].write_bytes(pickle.dumps(loggen_records(args.lines, 500, rate, work)))
        paths = [("collector (read, frame, records, batch encoding)", COLLECTOR, files),
                 ("structure + windows + scoring, in-process", LOCALRUN, data["live"]),
                 ("same, backfill density", LOCALRUN, data["backfill"])]
        print(f"Instructions per line (valgrind cachegrind), {args.baseline_ref} vs the working "
              f"tree, {args.lines:,} loggen lines\n")
        print("| path | before | after | after / before |\n|---|---|---|---|")
        for label, code, d in paths:
            per = []
            for tree in (base, ROOT):
                run, n = instructions(tree, code, d, "run")
                setup, _ = instructions(tree, code, d, "setup")
                per.append((run - setup) / max(n, 1))
            print(f"| {label} | {per[0] / 1e3:,.1f} k | {per[1] / 1e3:,.1f} k | {per[1] / per[0]:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
