"""Detectors declared once in a pipeline module get their own state in every scope of every
window stage: one stage per partition in the worker, one per in-process run, one scorer per
namespace in each."""

from __future__ import annotations

import orjson

from streams.demo.loggen import generate
from streams.pipeline import load_pipeline
from streams.replay.runner import replay_file
from streams.windows.stage import WindowStage


def test_each_stage_and_scope_has_its_own_detectors() -> None:
    p = load_pipeline("kubernetes")
    a = WindowStage(p.name, p.windows, p.detectors)
    b = WindowStage(p.name, p.windows, p.detectors)
    sets = [a._scorer("shop").detectors.detectors, a._scorer("auth").detectors.detectors,
            b._scorer("shop").detectors.detectors]
    for found in zip(*sets, p.detectors, strict=True):
        *copies, declared = found
        assert len({id(d) for d in found}) == len(found)
        assert all(type(d) is type(declared) for d in copies)


def test_the_same_replay_twice_finds_the_same_anomalies(tmp_path) -> None:
    gen = generate(tmp_path / "logs", 6000, seed=5)
    p = load_pipeline("kubernetes")
    runs = []
    for _ in range(2):
        found: list[bytes] = []
        replay_file(gen.files[0], p, on_windows=lambda m, a, found=found: found.extend(
            orjson.dumps(x, option=orjson.OPT_SORT_KEYS) for x in a + m))
        runs.append(found)
    assert runs[0] and runs[0] == runs[1]
