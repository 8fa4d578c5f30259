"""Formats: field recall per format on the format corpus, and parse throughput, this tree
side by side with another commit's in the same run.

Field recall: each line of ``tests/format_corpus.py`` (written from the formats' specs)
through the default pipeline, as ``logriver parse --pipeline kubernetes`` structures it; a
field counts when the event holds it with the expected value. Throughput, on a seeded mix of
Kubernetes container lines (JSON, logfmt, klog, nginx access, text, syslog, error logs):
``Parser.parse`` alone (the structuring hot path's parsing), ``Pipeline.structure`` (parse +
ECS event + template) and the ``logriver parse`` command end to end (a subprocess, start-up
included). Rates are per CPU second of the measuring process. Each tree runs in its own subprocess (its tree first on ``PYTHONPATH``), rounds
alternate between the trees; the best sample (the least disturbed by the other processes on
the shared cores) and the median are reported, every sample below the table.

    .venv/bin/python benchmarks/bench_formats.py --baseline-ref HEAD~5 [--lines 20000] [--rounds 5]

``--baseline-ref`` checks the commit out with ``git worktree add`` into a temporary folder
(removed afterwards); its recall is measured on the same corpus and expectations.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "tests"))

from format_corpus import CASES, get_path


def workload(n: int, seed: int = 7) -> list[str]:
    """A seeded mix of container log lines, by the shares seen in Kubernetes clusters."""
    rng = random.Random(seed)
    paths = ["/api/v1/items", "/healthz", "/cart/checkout", "/static/app.js", "/login"]
    words = ["order", "payment", "user", "cache", "db", "queue", "request", "session"]
    out = []
    for i in range(n):
        r = rng.random()
        t = f"2026-11-25T10:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z"
        w = rng.choice(words)
        if r < 0.35:
            lvl = rng.choice(["info", "info", "info", "debug", "warn", "error"])
            out.append(f'{{"ts":"{t}","level":"{lvl}","msg":"{w} processed","{w}_id":{i},'
                       f'"duration_ms":{rng.randint(1, 900)},"caller":"svc/{w}.go:{rng.randint(1, 400)}"}}')
        elif r < 0.50:
            out.append(f'time="{t}" level={rng.choice(["info", "warning", "error"])} msg="{w} done" '
                       f"id={i} took={rng.random():.3f}s")
        elif r < 0.65:
            out.append(f'10.0.{i % 250}.{rng.randint(1, 250)} - - [25/Nov/2026:10:00:{i % 60:02d} +0000] '
                       f'"GET {rng.choice(paths)}?page={i % 7} HTTP/1.1" {rng.choice([200, 200, 304, 404, 500])} '
                       f'{rng.randint(0, 9999)} "-" "Mozilla/5.0 (X11; Linux x86_64)" {rng.randint(100, 900)} '
                       f"0.{rng.randint(1, 999):03d} [shop-api-80] [] 10.244.1.{i % 200}:8080 "
                       f"{rng.randint(0, 9999)} 0.{rng.randint(1, 999):03d} 200 {i:032x}")
        elif r < 0.75:
            out.append(f"{rng.choice('IIIWE')}1125 10:00:{i % 60:02d}.{i % 999999:06d}       1 "
                       f'{w}.go:{rng.randint(1, 500)}] "{w} synced" pod="ns/{w}-{i % 17}"')
        elif r < 0.85:
            out.append(f"{t} {rng.choice(['INFO', 'WARN', 'ERROR'])} [{w}-worker-{i % 4}] "
                       f"c.e.{w.title()}Service - {w} batch {i} done in {rng.randint(1, 99)} ms")
        elif r < 0.92:
            out.append(f"{w} {i} finished with status {rng.choice(['ok', 'failed', 'retry'])}")
        elif r < 0.96:
            out.append(f"<{rng.choice([13, 30, 86, 134])}>Nov 25 10:00:{i % 60:02d} node-{i % 5} "
                       f"{w}d[{1000 + i % 50}]: {w} event {i}")
        else:
            out.append(f"2026/11/25 10:00:{i % 60:02d} [error] 7#7: *{i} connect() failed (111: "
                       f"Connection refused) while connecting to upstream, client: 10.0.0.{i % 250}, "
                       f'server: shop, request: "GET /cart HTTP/1.1", upstream: "http://10.244.0.9:8080/cart", '
                       f'host: "shop"')
    return out


# -- the child: runs inside one tree ------------------------------------------------------------
def child(args: argparse.Namespace) -> None:
    from streams.parse import Parser
    from streams.pipeline import load_pipeline
    from streams.replay.runner import stdin_record, structure_lines

    if args.child == "corpus":
        pipe = load_pipeline("kubernetes")
        events = [structure_lines(pipe, [line.encode()])[0] for _f, line, _e in CASES]
        sys.stdout.write(json.dumps(events))
        return
    lines = Path(args.input).read_text().splitlines()
    raw = [line.encode() for line in lines]
    parser = Parser()
    pipe = load_pipeline("kubernetes")
    records = [stdin_record(b, i) for i, b in enumerate(raw)]
    rates: dict[str, list[float]] = {"parse": [], "structure": []}
    for _ in range(3):  # short repeats: more samples, each less likely to share a busy spell
        t0 = time.process_time()  # CPU time of this process: others' load on the cores aside
        for line in lines:
            parser.parse(line)
        rates["parse"].append(len(lines) / (time.process_time() - t0))
        miner = pipe.new_miner()
        t0 = time.process_time()
        for i in range(0, len(records), 500):
            pipe.structure(records[i:i + 500], miner)
        rates["structure"].append(len(lines) / (time.process_time() - t0))
    sys.stdout.write(json.dumps(rates))


# -- the parent ---------------------------------------------------------------------------------
def run_child(tree: Path, mode: str, input_path: Path | None = None) -> Any:
    env = {**os.environ, "PYTHONPATH": str(tree), "LOGRIVER_GC": os.environ.get("LOGRIVER_GC", "")}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode]
    if input_path is not None:
        cmd += ["--input", str(input_path)]
    out = subprocess.run(cmd, env=env, capture_output=True, check=True, cwd=tree, timeout=1800)
    return json.loads(out.stdout)


def cli_cpu(tree: Path, input_path: Path) -> float:
    """CPU seconds (user + system) of one ``logriver parse`` process over ``input_path``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    before = os.times()
    with open(input_path, "rb") as fh:
        subprocess.run([sys.executable, "-m", "streams", "parse", "--pipeline", "kubernetes"],
                       stdin=fh, stdout=subprocess.DEVNULL, env=env, check=True, cwd=tree, timeout=1800)
    after = os.times()
    return (after.children_user - before.children_user) + (after.children_system - before.children_system)




def recall(events: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (fmt, _line, expect), ev in zip(CASES, events, strict=True):
        for path, value in expect.items():
            per[fmt][1] += 1
            per[fmt][0] += get_path(ev, path) == value
    return {k: (v[0], v[1]) for k, v in per.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline-ref", help="a git commit to compare with (checked out in a temporary worktree)")
    ap.add_argument("--lines", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cli-lines", type=int, default=100_000,
                    help="lines through the logriver parse process (enough that start-up is small)")
    ap.add_argument("--child", choices=["corpus", "speed"], help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    ap.add_argument("--no-save", action="store_true", help="print only, do not write results/")
    args = ap.parse_args()
    if args.child:
        child(args)
        return 0
    trees: dict[str, Path] = {"this tree": ROOT}
    tmp = Path(tempfile.mkdtemp(prefix="bench-formats-"))
    base_sha = None
    try:
        if args.baseline_ref:
            base_sha = subprocess.run(["git", "rev-parse", "--short", args.baseline_ref], cwd=ROOT,
                                      capture_output=True, text=True, check=True).stdout.strip()
            subprocess.run(["git", "worktree", "add", "--detach", str(tmp / "base"), base_sha],
                           cwd=ROOT, capture_output=True, check=True)
            trees[f"baseline {base_sha}"] = tmp / "base"
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        data = tmp / "lines.txt"
        data.write_text("\n".join(workload(args.lines)) + "\n")
        one = tmp / "one.txt"
        one.write_text(workload(1)[0] + "\n")
        many = tmp / "cli.txt"
        many.write_text("\n".join(workload(args.cli_lines, seed=11)) + "\n")
        recalls = {name: recall(run_child(tree, "corpus")) for name, tree in trees.items()}
        speed: dict[str, dict[str, list[float]]] = {n: defaultdict(list) for n in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                got = run_child(tree, "speed", data)
                speed[name]["parse"] += got["parse"]
                speed[name]["structure"] += got["structure"]
                start = cli_cpu(tree, one)  # start-up: imports, pipeline load
                speed[name]["startup"].append(start)
                speed[name]["cli"].append(args.cli_lines / max(cli_cpu(tree, many) - start, 1e-3))
        report = render(recalls, speed, head, base_sha, args)
    finally:
        if base_sha:
            subprocess.run(["git", "worktree", "remove", "--force", str(tmp / "base")], cwd=ROOT,
                           capture_output=True, check=False)
        for p in sorted(tmp.glob("**/*"), reverse=True):
            if p.is_file():
                p.unlink()
    print(report)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "formats.md").write_text(report + "\n")
    return 0


def render(recalls: dict[str, dict[str, tuple[int, int]]], speed: dict[str, dict[str, list[float]]],
           head: str, base: str | None, args: argparse.Namespace) -> str:
    names = list(recalls)
    fmts = sorted({f for r in recalls.values() for f in r}, key=lambda f: [c[0] for c in CASES].index(f))
    out = [f"# Formats: field recall and parse throughput ({time.strftime('%Y-%m-%d')}, HEAD {head})", "",
           (f"Command: `.venv/bin/python benchmarks/bench_formats.py"
           f"{' --baseline-ref ' + base if base else ''} --lines {args.lines} --rounds {args.rounds} "
            f"--cli-lines {args.cli_lines}`"), "",
           (f"Field recall on the format corpus ({len(CASES)} lines, "
           f"{sum(len(c[2]) for c in CASES)} expected fields, `tests/format_corpus.py`):"), "",
           "| format | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for f in fmts:
        cells = []
        for n in names:
            ok, total = recalls[n].get(f, (0, 0))
            cells.append(f"{ok / total:.3f} ({ok}/{total})" if total else "-")
        out.append(f"| {f} | " + " | ".join(cells) + " |")
    cells = []
    for n in names:
        ok = sum(v[0] for v in recalls[n].values())
        total = sum(v[1] for v in recalls[n].values())
        cells.append(f"**{ok / total:.3f}** ({ok}/{total})")
    out.append("| **all** | " + " | ".join(cells) + " |")
    out += ["", (f"Throughput, lines per CPU second (best and median of {args.rounds} alternating rounds, "
             "three samples per round for the in-process rates, "
            f"{args.lines:,} mixed container lines, one process per tree; CPU time, so the load "
            "others put on the shared cores counts less):"), "",
            "| | " + " | ".join(names) + (" | ratio |" if len(names) == 2 else " |"),
            "|---|" + "---|" * (len(names) + (1 if len(names) == 2 else 0))]
    labels = {"parse": "`Parser.parse` (format detection + fields)",
              "structure": "`Pipeline.structure` (+ ECS event, template)",
              "cli": f"`logriver parse --pipeline kubernetes` ({args.cli_lines:,} lines through one "
                     "process, its start-up CPU subtracted)"}
    for key, label in labels.items():
        for stat, fn in (("best", max), ("median", statistics.median)):
            vals = [fn(speed[n][key]) for n in names]
            row = f"| {label}, {stat} | " + " | ".join(f"{m:,.0f}" for m in vals)
            if len(vals) == 2:
                row += f" | {vals[0] / vals[1]:.2f}"
            out.append(row + " |")
    starts = [min(speed[n]["startup"]) for n in names]
    out.append("| `logriver parse` start-up, CPU seconds (lower is better) | "
               + " | ".join(f"{s:.2f}" for s in starts) + (" | |" if len(names) == 2 else " |"))
    out += ["", "Rounds (lines per CPU second, each round in order): " + "; ".join(
        f"{n} {k}: " + ", ".join(f"{v:,.0f}" for v in speed[n][k])
        for n in names for k in ("parse", "structure", "cli"))]
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
