"""The kubernetes pipeline in-process: in-memory sources and sinks, no services."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streams.demo.loggen import generate
from streams.pipeline import Pipeline, PipelineNotFound, Step, load_pipeline
from streams.replay.runner import LocalRun, replay_file, stdin_record, structure_lines

REPO = Path(__file__).resolve().parents[2]
ISSUE_LINE = b'{"log":"ERROR payment failed\\n","stream":"stderr","time":"2026-11-25T10:00:00.1Z"}'


def test_load_by_name_path_and_attribute():
    by_name = load_pipeline("kubernetes")
    assert by_name.name == "kubernetes"
    assert load_pipeline(str(REPO / "pipelines" / "kubernetes.py")).name == "kubernetes"
    assert load_pipeline("pipelines.kubernetes:pipeline") is by_name
    with pytest.raises(PipelineNotFound, match="no pipeline named"):
        load_pipeline("does-not-exist")
    with pytest.raises(PipelineNotFound, match="no pipeline file"):
        load_pipeline("nowhere/p.py")


def test_the_issue_example_line():
    [event] = structure_lines(load_pipeline("kubernetes"), [ISSUE_LINE])
    assert "payment failed" in event["message"]
    assert (event["log"]["level"], event["log"]["severity"]) == ("ERROR", "error")
    assert event["event"]["severity"] == 3
    assert event["stream"] == "stderr"
    assert event["@timestamp"].startswith("2026-11-25T10:00:00.1")
    assert event["log"]["template_id"] and "payment failed" in event["log"]["template"]
    assert event["event"]["id"]


def test_parse_cli_without_services():
    lines = ISSUE_LINE + b"\n" + b'{"log":"GET /x 200\\n","stream":"stdout","time":"2026-11-25T10:00:01Z"}\n' + b"plain text line\n"
    out = subprocess.run([sys.executable, "-m", "streams", "parse", "--pipeline", "kubernetes"],
                         input=lines, capture_output=True, check=True, cwd=REPO, timeout=60)
    events = [orjson.loads(l) for l in out.stdout.splitlines()]
    assert len(events) == 3
    assert events[0]["log"]["severity"] == "error"
    assert events[2]["message"] == "plain text line"
    assert all(e["log"]["template_id"] and "template" in e["log"] for e in events)


def test_bad_input_is_flagged_never_raised():
    lines = [b'{"log":"not json at all', b"", b"bad \xff\xfe utf8", b"x" * (1024 * 1024), b"\x00\x01\x02"]
    events = structure_lines(load_pipeline("kubernetes"), lines)
    assert len(events) == len(lines)
    assert "runtime_parse_error" in events[0]["logriver"]["flags"]
    assert events[0]["event"]["original"] == '{"log":"not json at all'
    assert "invalid_utf8" in events[2]["logriver"]["flags"]
    assert events[3]["message"] == "x" * (1024 * 1024)  # kept whole; mining uses a bounded prefix
    assert all("@timestamp" in e for e in events)


def test_a_failing_step_flags_the_event_and_keeps_it():
    def boom(event):
        raise ValueError("lookup failed")

    base = load_pipeline("kubernetes")
    p = Pipeline(name="t", parser=base.parser, steps=[Step("enrich-owner", boom)])
    [event] = structure_lines(p, [b"hello"])
    assert "step_error" in event["logriver"]["flags"]
    assert event["logriver"]["errors"] == ["enrich-owner: ValueError: lookup failed"]


def test_replay_of_generated_node_logs(tmp_path):
    gen = generate(tmp_path, 3000, seed=5)
    pipeline = load_pipeline("kubernetes")
    total = 0
    per_ns: dict[str, int] = {}
    for f in gen.files:
        s = replay_file(f, pipeline, metadata=None)
        total += s.events
        for k, v in s.by_namespace.items():
            per_ns[k] = per_ns.get(k, 0) + v
        assert s.dead_letters == 0
    assert total == gen.events
    assert per_ns == dict(gen.by_namespace)


def test_same_input_same_ids_and_templates():
    p = load_pipeline("kubernetes")
    lines = [f"user {i} logged in from 10.0.0.{i}".encode() for i in range(20)]
    a = structure_lines(p, lines)
    b = structure_lines(p, lines)
    assert [e["event"]["id"] for e in a] == [e["event"]["id"] for e in b]
    assert [e["log"]["template_id"] for e in a] == [e["log"]["template_id"] for e in b]
    assert len({e["log"]["template_id"] for e in a[5:]}) == 1


def test_local_run_accepts_records_from_any_source():
    run = LocalRun(load_pipeline("kubernetes"))
    rec = stdin_record(b"level=warn msg=\"disk almost full\" pct=91", 0, "plain")
    rec["kubernetes"] = {"namespace": "ops", "pod": {"name": "p"}, "container": {"name": "c"}}
    [event], dls = run.process([rec])
    assert not dls and event["kubernetes"]["namespace"] == "ops" and event["log"]["level"] == "warn"
