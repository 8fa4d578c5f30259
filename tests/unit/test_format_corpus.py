"""Every line of the format corpus (``tests/format_corpus.py``, written from the formats'
specifications) through the default pipeline, as ``logriver parse --pipeline kubernetes``
structures it: each expected ECS field present with its value."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from format_corpus import CASES, get_path

from streams.pipeline import load_pipeline
from streams.replay.runner import structure_lines


@pytest.fixture(scope="module")
def pipeline():
    return load_pipeline("kubernetes")


@pytest.mark.parametrize(("fmt", "line", "expect"), CASES,
                         ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)])
def test_corpus_line(pipeline, fmt: str, line: str, expect: dict[str, Any]) -> None:
    [event] = structure_lines(pipeline, [line.encode()])
    got = {path: get_path(event, path) for path in expect}
    assert got == expect, f"{fmt}: {line}"
