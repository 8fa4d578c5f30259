"""Template mining on Loghub-2k: Logriver's miner vs Drain3 tuned and untuned, same run.

Each system's message part is cut from the raw line by Logriver's own ``Parser`` with the
system's header layout (from data/README.md) written as a dissect pattern or a regex, the
way a user would declare it. Accuracy is taken on the final templates (a line's template id
is followed through the ``previous_id`` generalizations the miner reports). Throughput is
mining only, best of ``--repeat`` runs, each on a fresh miner.

    .venv/bin/python benchmarks/bench_templates.py [--repeat 3] [--no-plot]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._loghub import evaluate, load, loghub_dir, systems
from streams.parse import Parser
from streams.templates import TemplateMiner

RESULTS = Path(__file__).resolve().parent / "results"

# The header layouts of data/README.md, as dissect patterns (or regexes where the layout has
# an optional part or a run of spaces before a bracket).
HEADERS: dict[str, dict[str, str]] = {
    "Android": {"dissect": "%{date} %{time->} %{pid->} %{tid->} %{level} %{component}: %{message}"},
    "Apache": {"dissect": "[%{time}] [%{level}] %{message}"},
    "BGL": {"dissect": "%{label} %{epoch} %{date} %{node} %{timestamp} %{node_repeat} %{type} "
                       "%{component} %{level} %{message}"},
    "HDFS": {"dissect": "%{date} %{time} %{pid} %{level} %{component}: %{message}"},
    "HPC": {"dissect": "%{log_id} %{node} %{component} %{state} %{timestamp} %{flag} %{message}"},
    "Hadoop": {"dissect": "%{date} %{time} %{level} [%{thread}] %{component}: %{message}"},
    "Linux": {"regex": r"(?P<month>\w{3}) {1,2}(?P<day>\d{1,2}) (?P<time>\d\d:\d\d:\d\d) "
                       r"(?P<host>[^ ]{1,255}) (?P<component>[^\[]{1,128}?)(?:\[(?P<pid>\d{1,10})\])?: "
                       r"(?P<message>.*)"},
    "OpenStack": {"dissect": "%{logrecord} %{date} %{time} %{pid} %{level} %{component} [%{addr}] "
                             "%{message}"},
    "Spark": {"dissect": "%{date} %{time} %{level} %{component}: %{message}"},
    "Thunderbird": {"regex": r"(?P<label>[^ ]{1,64}) (?P<epoch>\d{1,12}) (?P<date>[\d.]{10}) "
                             r"(?P<user>[^ ]{1,255}) (?P<month>\w{3}) {1,2}(?P<day>\d{1,2}) "
                             r"(?P<time>\d\d:\d\d:\d\d) (?P<location>[^ ]{1,255}) "
                             r"(?P<component>[^\[]{1,128}?)(?:\[(?P<pid>\d{1,10})\])?: (?P<message>.*)"},
    "Zookeeper": {"regex": r"(?P<date>[\d-]{10}) (?P<time>[\d:,]{12}) - (?P<level>[A-Z]{1,8}) {1,8}"
                           r"\[(?P<where>.{0,512}?)\] - (?P<message>.*)"},
}

# Drain3 tuned: the per-system masks, similarity threshold and depth of the public logparser
# Drain benchmark settings.
_IP = r"(\d+\.){3}\d+"
DRAIN_TUNED: dict[str, dict[str, Any]] = {
    "Android": {"regex": [r"(/[\w-]+)+", r"([\w-]+\.){2,}[\w-]+",
                          r"\b(\-?\+?\d+)\b|\b0[Xx][a-fA-F\d]+\b|\b[a-fA-F\d]{4,}\b"], "st": 0.2, "depth": 6},
    "Apache": {"regex": [_IP], "st": 0.5, "depth": 4},
    "BGL": {"regex": [r"core\.\d+"], "st": 0.5, "depth": 4},
    "HDFS": {"regex": [r"blk_-?\d+", r"(\d+\.){3}\d+(:\d+)?"], "st": 0.5, "depth": 4},
    "HPC": {"regex": [r"=\d+"], "st": 0.5, "depth": 4},
    "Hadoop": {"regex": [_IP], "st": 0.5, "depth": 4},
    "Linux": {"regex": [_IP, r"\d{2}:\d{2}:\d{2}"], "st": 0.39, "depth": 6},
    "OpenStack": {"regex": [r"((\d+\.){3}\d+,?)+", r"/.+?\s", r"\d+"], "st": 0.5, "depth": 5},
    "Spark": {"regex": [_IP, r"\b[KGTM]?B\b", r"([\w-]+\.){2,}[\w-]+"], "st": 0.5, "depth": 4},
    "Thunderbird": {"regex": [_IP], "st": 0.5, "depth": 4},
    "Zookeeper": {"regex": [r"(/|)(\d+\.){3}\d+(:\d+)?"], "st": 0.5, "depth": 4},
}
# Drain3 untuned: Drain3's defaults (sim_th 0.4, depth 4) with the generic masks of its
# example configuration, the same for every system.
DRAIN_GENERIC_MASKS = [
    r"((?<=[^A-Za-z0-9])|^)(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))((?=[^A-Za-z0-9])|$)",
    r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)",
    r"((?<=[^A-Za-z0-9])|^)([0-9a-f]{6,} ?){3,}((?=[^A-Za-z0-9])|$)",
    r"((?<=[^A-Za-z0-9])|^)([0-9A-F]{4} ?){4,}((?=[^A-Za-z0-9])|$)",
    r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)",
    r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)",
]

Runner = Callable[[list[str]], tuple[list[str], list[str]]]


def run_logriver(messages: list[str]) -> tuple[list[str], list[str]]:
    """Per line: final template id (following previous_id chains) and its template."""
    miner = TemplateMiner()
    ids: list[str] = []
    renamed: dict[str, str] = {}
    for m in messages:
        r = miner.match(m)
        ids.append(r.template_id)
        if r.previous_id:
            renamed[r.previous_id] = r.template_id
    current = {tid: template for tid, template, _ in miner.templates()}

    def final(tid: str) -> str:
        seen = 0
        while tid in renamed and seen < 10_000:
            tid, seen = renamed[tid], seen + 1
        return tid

    finals = [final(t) for t in ids]
    return finals, [current.get(t, "") for t in finals]


def _drain3(masks: list[str], st: float, depth: int) -> Runner:
    from drain3 import TemplateMiner as Drain3Miner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    def run(messages: list[str]) -> tuple[list[str], list[str]]:
        config = TemplateMinerConfig()
        config.drain_sim_th = st
        config.drain_depth = depth
        config.masking_instructions = [MaskingInstruction(rx, "*") for rx in masks]
        config.mask_prefix, config.mask_suffix = "<", ">"
        config.profiling_enabled = False
        miner = Drain3Miner(config=config)
        ids = [miner.add_log_message(m)["cluster_id"] for m in messages]
        templates = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
        return [str(i) for i in ids], [templates[i] for i in ids]

    return run


def _timed(runner: Runner, messages: list[str], repeat: int) -> tuple[tuple[list[str], list[str]], float]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = runner(messages)
        best = min(best, time.perf_counter() - t0)
    assert out is not None
    return out, len(messages) / best


def _time_logriver(messages: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        miner = TemplateMiner()
        t0 = time.perf_counter()
        for m in messages:
            miner.match(m)
        best = min(best, time.perf_counter() - t0)
    return len(messages) / best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="timing runs per miner (best is kept)")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--systems", nargs="*", help="subset of systems")
    args = ap.parse_args(argv)
    logging.getLogger("drain3").setLevel(logging.WARNING)
    root = loghub_dir()
    names = [s for s in systems(root) if not args.systems or s in args.systems]
    rows: list[dict[str, Any]] = []
    for name in names:
        if name not in HEADERS:
            print(f"skip {name}: no header layout", file=sys.stderr)
            continue
        system = load(root, name)
        parser = Parser(**HEADERS[name])
        t0 = time.perf_counter()
        parsed = [parser.parse(line) for line in system.lines]
        parse_rate = len(parsed) / (time.perf_counter() - t0)
        messages = [p.message for p in parsed]
        header_ok = sum(m.strip() == c.strip() for m, c in zip(messages, system.contents)) / len(messages)
        row: dict[str, Any] = {"system": name, "header_match": header_ok, "parse_lines_s": parse_rate}
        tuned = DRAIN_TUNED[name]
        runners: dict[str, Runner] = {
            "logriver": run_logriver,
            "drain3_tuned": _drain3(tuned["regex"], tuned["st"], tuned["depth"]),
            "drain3_untuned": _drain3(DRAIN_GENERIC_MASKS, 0.4, 4),
        }
        for label, runner in runners.items():
            (ids, templates), rate = _timed(runner, messages, 1 if label == "logriver" else args.repeat)
            if label == "logriver":
                rate = _time_logriver(messages, args.repeat)
            metrics = evaluate(system.templates, ids, templates)
            row[label] = {**metrics, "lines_s": rate}
        rows.append(row)
        print(f"{name:12s} GA logriver {row['logriver']['GA']:.3f}  drain3 tuned "
              f"{row['drain3_tuned']['GA']:.3f}  untuned {row['drain3_untuned']['GA']:.3f}",
              file=sys.stderr)
    table = markdown(rows)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "templates.md").write_text(table)
    (RESULTS / "templates.json").write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    if not args.no_plot:
        plot(rows, RESULTS / "templates.png")
    return 0


_MINERS = (("logriver", "Logriver (untuned)"), ("drain3_tuned", "Drain3 tuned"),
           ("drain3_untuned", "Drain3 untuned"))


def markdown(rows: list[dict[str, Any]]) -> str:
    head = ["system"]
    for _, title in _MINERS:
        head += [f"{title} GA", "PA", "FGA", "FTA", "lines/s"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cells(values: dict[str, float]) -> list[str]:
        return [f"{values[k]:.3f}" for k in ("GA", "PA", "FGA", "FTA")] + [f"{values['lines_s']:,.0f}"]

    for row in rows:
        line = [row["system"]]
        for key, _ in _MINERS:
            line += cells(row[key])
        out.append("| " + " | ".join(line) + " |")
    avg = ["**average**"]
    for key, _ in _MINERS:
        avg += cells({k: sum(r[key][k] for r in rows) / len(rows)
                      for k in ("GA", "PA", "FGA", "FTA", "lines_s")})
    out.append("| " + " | ".join(avg) + " |")
    mins = ", ".join(f"{title} {min(r[key]['GA'] for r in rows):.3f}" for key, title in _MINERS)
    header = sum(r["header_match"] for r in rows) / len(rows)
    out.append("")
    out.append(f"Lowest GA: {mins}. Header patterns cut the ground-truth message exactly on "
               f"{header:.1%} of lines on average.")
    return "\n".join(out) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)", file=sys.stderr)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["system"] for r in rows]
    x = range(len(names))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    width = 0.27
    for i, (key, title) in enumerate(_MINERS):
        offs = [v + (i - 1) * width for v in x]
        ax1.bar(offs, [r[key]["GA"] for r in rows], width, label=title)
        ax2.bar(offs, [r[key]["lines_s"] / 1000 for r in rows], width, label=title)
    ax1.set_ylabel("grouping accuracy")
    ax1.set_ylim(0, 1.2)
    ax1.axhline(0.95, color="grey", lw=0.8, ls="--")
    ax1.legend(loc="upper center", ncol=3, fontsize=8)
    ax1.set_title("Loghub-2k template mining: Logriver vs Drain3")
    ax2.set_ylabel("k lines/s (mining)")
    ax2.set_xticks(list(x), names, rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
