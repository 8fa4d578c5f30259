"""Template accuracy floor on Loghub-2k, as indexed: each system's raw lines through the
kubernetes pipeline with the system's header regex, exactly as ``logriver parse --pipeline
kubernetes --regex HEADER`` runs them (in-process here; benchmarks/bench_templates.py runs the
command itself), grouped by the template id each event was emitted with.

Skips with a message when ../shared/data/loghub-2k is absent (set LOGRIVER_SHARED)."""

from __future__ import annotations

import dataclasses

import pytest


def _loghub():
    from benchmarks import _loghub

    shared = _loghub.shared_dir()
    if shared is None:
        pytest.skip("../shared/data/loghub-2k is absent (set LOGRIVER_SHARED): accuracy floor not checked")
    return _loghub, shared / "data" / "loghub-2k"


def _emitted(system) -> tuple[list[str], list[str]]:
    """What `logriver parse --pipeline kubernetes --regex HEADER` emits, per line."""
    from benchmarks.bench_templates import FORMATS, loghub_regex
    from streams.parse import Parser
    from streams.pipeline import load_pipeline
    from streams.replay.runner import LocalRun, stdin_record

    pipeline = dataclasses.replace(load_pipeline("kubernetes"),
                                   parser=Parser(regex=loghub_regex(FORMATS[system.name])))
    run = LocalRun(pipeline, windows=False)
    ids, texts = [], []
    for number, line in enumerate(system.lines):
        events, _ = run.process([stdin_record(line.encode(), number)])
        ids.append(events[0]["log"]["template_id"])
        texts.append(events[0]["log"]["template"])
    return ids, texts


def test_grouping_and_parsing_accuracy_of_the_ids_as_emitted():
    loghub, root = _loghub()
    from benchmarks.bench_templates import FORMATS

    scores = {}
    for name in loghub.systems(root):
        if name not in FORMATS:
            continue
        system = loghub.load(root, name)
        scores[name] = loghub.evaluate(system.templates, *_emitted(system))
    assert len(scores) >= 11
    ga = {s: m["GA"] for s, m in scores.items()}
    assert min(ga.values()) >= 0.85, ga
    assert sum(ga.values()) / len(ga) >= 0.95, ga
    assert sum(m["PA"] for m in scores.values()) / len(scores) >= 0.80, {s: m["PA"] for s, m in scores.items()}
