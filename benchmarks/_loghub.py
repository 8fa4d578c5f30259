"""Loghub-2k loading and template-accuracy metrics, shared by the benchmarks.

Metrics (DESIGN.md; as in the logparser / Loghub-2.0 evaluations):

- GA (grouping accuracy): a line counts when the set of lines sharing its predicted template
  is exactly the set sharing its true template. True groups are keyed by the true template
  text (as in the Loghub-2.0 evaluation), not by EventId: the corrected ground truth gives a
  few identical templates several ids, a split no parser could reproduce.
- PA (parsing accuracy): a line counts when its predicted template text equals the true one
  (whitespace runs normalized).
- FGA: F1 of precision = correct groups / predicted groups and recall = correct groups /
  true groups, a group being correct when its line set equals a true group's.
- FTA: the same F1 where a predicted template also needs the exact true template text.
"""

from __future__ import annotations

import csv
import os
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path | None:
    """``$LOGRIVER_SHARED`` or ``<repo>/../shared``, when it holds ``data/loghub-2k``."""
    for base in (os.environ.get("LOGRIVER_SHARED"), REPO.parent / "shared"):
        if base and (Path(base) / "data" / "loghub-2k").is_dir():
            return Path(base)
    return None


def loghub_dir() -> Path:
    """The loghub-2k folder, or exit with a clear message."""
    shared = shared_dir()
    if shared is None:
        sys.exit("loghub-2k not found: set LOGRIVER_SHARED to the folder holding "
                 "data/loghub-2k (default <repo>/../shared)")
    return shared / "data" / "loghub-2k"


@dataclass(slots=True)
class System:
    name: str
    lines: list[str]        # raw log lines
    contents: list[str]     # ground-truth message part
    event_ids: list[str]    # ground-truth template ids
    templates: list[str]    # ground-truth template text per line


def systems(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()
                  if (p / f"{p.name}_2k.log_structured_corrected.csv").is_file())


def load(root: Path, name: str) -> System:
    folder = root / name
    with open(folder / f"{name}_2k.log", encoding="utf-8", errors="replace") as f:
        lines = [ln.rstrip("\r\n") for ln in f]
    contents, ids, templates = [], [], []
    with open(folder / f"{name}_2k.log_structured_corrected.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            contents.append(row["Content"])
            ids.append(row["EventId"])
            templates.append(row["EventTemplate"])
    if len(lines) != len(contents):
        raise ValueError(f"{name}: {len(lines)} lines but {len(contents)} structured rows")
    return System(name, lines, contents, ids, templates)


def _norm(template: str) -> str:
    return " ".join(template.split())


def _groups(labels: list[str]) -> dict[str, frozenset[int]]:
    out: dict[str, set[int]] = defaultdict(set)
    for i, label in enumerate(labels):
        out[label].add(i)
    return {k: frozenset(v) for k, v in out.items()}


def _f1(correct: int, predicted: int, truth: int) -> float:
    p = correct / predicted if predicted else 0.0
    r = correct / truth if truth else 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


def evaluate(truth_templates: list[str], pred_ids: list[str], pred_templates: list[str]) -> dict[str, float]:
    """GA, PA, FGA, FTA of per-line predicted groups and template texts against the truth."""
    n = len(truth_templates)
    true_groups = _groups([_norm(t) for t in truth_templates])
    true_sets = set(true_groups.values())
    pred_groups = _groups(pred_ids)
    grouped_lines = correct_groups = correct_templates = 0
    for members in pred_groups.values():
        if members in true_sets:
            correct_groups += 1
            grouped_lines += len(members)
            first = next(iter(members))
            if _norm(pred_templates[first]) == _norm(truth_templates[first]):
                correct_templates += 1
    pa = sum(_norm(p) == _norm(t) for p, t in zip(pred_templates, truth_templates)) / n
    return {
        "GA": grouped_lines / n,
        "PA": pa,
        "FGA": _f1(correct_groups, len(pred_groups), len(true_groups)),
        "FTA": _f1(correct_templates, len(pred_groups), len(true_groups)),
        "templates": len(pred_groups),
        "true_templates": len(true_groups),
    }
