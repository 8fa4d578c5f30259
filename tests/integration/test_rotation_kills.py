"""The goal of issue 17: 0 lost / 0 duplicated in Elasticsearch with the worker SIGKILLed three
times and the collector twice during 30,000 lines while files rotate both ways (rename and
copytruncate), in kubelet's and dockerd's layouts, in both runtime formats.

Two containers per case, one rotated by renaming (kubelet's ``0.log.<timestamp>``, or dockerd's
``<id>-json.log.1``, ``.2``...), one by copytruncate; every ``SPLIT_EVERY``-th line written in
runtime chunks; the writers rotate again while the collector is down. Every line written is
checked by its text against the documents (``streams.demo.faults.content_audit``) and every raw
message against Elasticsearch and the committed offsets (``streams.demo.audit``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.demo.faults import Container, KillPlan, run_with_kills


@pytest.mark.parametrize("fmt", ["docker", "cri"])
@pytest.mark.parametrize("layout", ["kubelet", "dockerd"])
def test_30k_lines_rotating_worker_killed_3x_collector_2x(settings, tmp_path: Path, layout, fmt):
    containers = [Container(0, layout, fmt, "rename"), Container(1, layout, fmt, "copytruncate")]
    seed = 2 * ("kubelet", "dockerd").index(layout) + ("docker", "cri").index(fmt)
    plan = KillPlan(worker_kills=3, collector_kills=2, lines_each=15000, rotate_every=2500,
                    batch=50, pause=0.1, seed=seed)
    run = run_with_kills(settings, "kubernetes", "kubernetes", containers, plan, tmp_path)
    assert run.timeline.count("worker") == 3 and run.timeline.count("collector") == 2
    assert not run.content.lost, f"{len(run.content.lost)} lost, e.g. {run.content.lost[:5]}; " \
                                 f"{run.summary()}"
    assert not run.content.duplicated, run.summary()
    assert not run.content.unexpected, run.summary()
    assert not run.raw.lost and not run.raw.duplicated, run.summary()
    assert run.raw.committed == {p: o for p, o in run.raw.end_offsets.items() if o}, run.summary()
    print(f"\n{layout}/{fmt}: {run.summary()}")
