"""Hostile input (issue 8): every regular expression the parsers, runtime decoders, multiline
rules, receivers and the template miner use survives inputs built to make it backtrack, and a
corpus of bad lines (binary, invalid UTF-8, NUL and control characters, 10 MiB lines, JSON
nested deep or with 100,000 keys, timestamps out of range, framing near misses) goes through
the tailer, every receiver's decoder and the kubernetes pipeline without a crash, within a
memory bound, with every rejection counted or flagged.

Time limits are pytest-timeout markers (generous), never timing assertions. The corpus and the
pattern inventory are built in ``tests/hostile.py``; ``pytest -s -k report`` prints how many
bad inputs were tried.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import tracemalloc
from datetime import datetime
from pathlib import Path
from typing import Any

import msgpack
import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile

from streams.framing import multiline
from streams.framing.runtime import FLAG_RUNTIME_TIME_INVALID, valid_time
from streams.pipeline import load_pipeline
from streams.replay.runner import structure_lines
from streams.sources.base import ListPublisher
from streams.sources.checkpoints import CheckpointStore
from streams.sources.files import FileTailer
from streams.sources.receivers.fluentd import FluentdReceiver, pack_event_time
from streams.sources.receivers.framing import Framer
from streams.sources.receivers.gelf import GelfReceiver
from streams.sources.receivers.journald import JournaldFollower
from streams.sources.receivers.syslog import SyslogReceiver
from streams.transport.records import FLAG_INVALID_UTF8, FLAG_TRUNCATED, encode_batch

MiB = 1024 * 1024
PATTERNS = hostile.patterns_with_uses()
MEMORY_BOUND = 768 * MiB  # generous: a 10 MiB line is held a few times over (bytes, str, JSON)


def _is_bad_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


# ------------------------------------------------------------------- regular expressions


def test_pattern_inventory_covers_every_layer() -> None:
    names = {name for name, _p, _m in PATTERNS}
    assert len(PATTERNS) >= 50
    for expected in (
        "streams.parse.layouts._ACCESS",
        "streams.parse.layouts._KLOG",
        "streams.parse.timestamps._ISO",
        "streams.parse.stacktrace._JAVA_EXC",
        "streams.parse.dissect._FIELD",
        "streams.framing.runtime._CRI_RE",
        "streams.sources.receivers.syslog._5424_RE",
        "streams.sources.receivers.framing._OCTET_RE",
        "streams.templates.masking._SPLIT",
        "streams.templates.masking._SIMPLE_VALUE",
        "streams.templates.masking._NUMBER_RUNS_RE",
        "multiline.node.head[0]",
        "multiline.go.frames[0]",
        "multiline.java.head[0]",
        "multiline.python.frames[1]",
        "multiline.ruby.head[0]",
    ):
        assert expected in names, expected
    # every re.compile in the modules that parse input is in the inventory (none missed)
    root = Path(__file__).resolve().parents[2] / "streams"
    for mod in hostile.PATTERN_MODULES:
        path = root.joinpath(*mod.split(".")[1:])
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        if not path.exists():
            continue
        for m in re.finditer(r"^(\w+)\s*=\s*re\.compile\(", path.read_text(), re.MULTILINE):
            assert f"{mod}.{m[1]}" in names or any(
                n.endswith(f".{m[1]}") for n in names
            ), f"{mod}.{m[1]} not checked"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name, pattern, methods", PATTERNS, ids=[p[0] for p in PATTERNS])
def test_pattern_finishes_on_adversarial_input(
    name: str, pattern: re.Pattern[Any], methods: tuple[str, ...]
) -> None:
    inputs = hostile.adversarial(pattern)
    assert inputs
    for text in inputs:
        assert len(text) <= hostile.ADVERSARIAL_BYTES + 4 * 1024
        for method in methods:
            getattr(pattern, method)(text)  # finishing in time is the assertion


@pytest.mark.timeout(60)
def test_multiline_frame_patterns_keep_their_meaning() -> None:
    node = multiline.NODE.states["head"][0][0]
    go = multiline.GO.states["frames"][0][0]
    for line in ("    at f (/app/x.js:1:2)", "    at x (native)", "    at /app/x.js:10:3",
                 "    at new Foo (<anonymous>)", "    at a (b (c.js:1:1)"):
        assert node.search(line), line
    for line in ("    at f(", "    at f (x.js:1)", "at f (x.js:1:2)"):
        assert not node.search(line), line
    for line in ("main.main()", "runtime.gopark(0x1, 0x2)", "\t/usr/lib/go/x.go:12 +0x1d",
                 "created by main.start", "a(b(c)"):
        assert go.search(line), line
    for line in ("(x)", "main.main(", "x"):
        assert not go.search(line), line
    # the inputs that made the previous forms quadratic
    node.search("  at " + "(" * 200_000 + ":1:1")
    go.search("a" + "(" * 200_000 + "x")


# ------------------------------------------------------------------------------ corpus


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, bytes]]:
    return hostile.corpus()


def _check_event(name: str, line: bytes, event: dict[str, Any]) -> list[str]:
    if "stage" in event and "reason" in event:  # a dead letter: counted, carries its reason
        assert event["reason"], name
        return [f"dead_letter:{event['reason']}"]
    assert isinstance(event["message"], str), name
    ts = event["@timestamp"]
    parsed = datetime.fromisoformat(ts)
    assert 1 <= parsed.year <= 9999, (name, ts)
    assert valid_time(ts) is not None or ts.endswith("Z"), (name, ts)
    orjson.dumps(event)  # what the worker publishes and indexes must serialize
    flags = event["logriver"].get("flags", [])
    if _is_bad_utf8(line):
        assert FLAG_INVALID_UTF8 in flags or "runtime_parse_error" in flags or (
            event["log"].get("format") == "json"
        ), (name, flags)
    assert "step_error" not in flags, name
    return list(flags)


@pytest.mark.timeout(300)
def test_corpus_through_the_pipeline(corpus: list[tuple[str, bytes]]) -> None:
    pipeline = load_pipeline("kubernetes")
    flagged: dict[str, int] = {}
    tracemalloc.start()
    try:
        for name, line in corpus:
            out = structure_lines(pipeline, [line])
            assert len(out) == 1, name  # one event or one dead letter per line: nothing lost
            for flag in _check_event(name, line, out[0]):
                flagged[flag] = flagged.get(flag, 0) + 1
            del out
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"peak {peak / MiB:.0f} MiB"
    assert flagged.get(FLAG_INVALID_UTF8, 0) >= 10
    assert flagged.get("parse_error", 0) >= 5
    assert not any(k.startswith("dead_letter:internal_error") for k in flagged)


def test_bad_runtime_timestamps_are_dropped_and_flagged() -> None:
    pipeline = load_pipeline("kubernetes")
    for ts in ("0000-01-01T00:00:00Z", "2026-13-45T25:61:61Z", "2026-11-25T10:00:00+99:99",
               "99999-01-01T00:00:00Z", "z", "2026-11-25T10:00:00.1234567890123Z"):
        (event,) = structure_lines(pipeline, [hostile.docker("boom\n", time=ts)])
        assert event["@timestamp"] != ts
        assert FLAG_RUNTIME_TIME_INVALID in event["logriver"]["flags"], ts
    (event,) = structure_lines(pipeline, [b"9999-99-99Tbad stdout F boom"], fmt="cri")
    assert FLAG_RUNTIME_TIME_INVALID in event["logriver"]["flags"]
    (event,) = structure_lines(pipeline, [hostile.docker("ok\n")])
    assert event["@timestamp"].startswith("2026-11-25T10:00:00")
    assert "flags" not in event["logriver"]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("framing", ["plain", "docker", "cri"])
def test_corpus_through_the_tailer(
    corpus: list[tuple[str, bytes]], framing: str, tmp_path: Path
) -> None:
    def frame(line: bytes) -> bytes:
        line = line.replace(b"\n", b" ")
        if framing == "docker":
            return hostile.raw_docker(line)
        if framing == "cri":
            return b"2026-11-25T10:00:00.000000001Z stderr F " + line
        return line

    path = tmp_path / "app.log"
    with open(path, "wb") as fh:
        fh.writelines(frame(line) + b"\n" for _name, line in corpus)
    pub = ListPublisher()
    max_line = MiB
    tailer = FileTailer([str(path)], pub, CheckpointStore(tmp_path / "cp.json"),
                        fmt=None, max_line_bytes=max_line)
    tracemalloc.start()
    try:
        asyncio.run(tailer.drain())
        asyncio.run(tailer.flush_pending())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        tailer.close()
    records = pub.records
    assert peak < MEMORY_BOUND, f"peak {peak / MiB:.0f} MiB"
    assert 0 < len(records) <= len(corpus)
    assert len({r["id"] for r in records}) == len(records)
    truncated = [r for r in records if FLAG_TRUNCATED in r.get("flags", [])]
    assert len(truncated) >= 3  # the 10 MiB lines
    assert tailer.truncated_lines == len(truncated)
    for r in records:
        assert isinstance(r["message"], str)
        assert len(r["message"].encode("utf-8", "surrogatepass")) <= 2 * max_line + 4096 + 64
    assert any(FLAG_INVALID_UTF8 in r.get("flags", []) for r in records)
    encode_batch(records)  # what goes to Kafka serializes


def _receiver_inputs(corpus: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    extra = [
        ("gelf_ts_huge", b'{"version":"1.1","host":"h","short_message":"m","timestamp":1e300}'),
        ("gelf_ts_nan", b'{"version":"1.1","host":"h","short_message":"m","timestamp":NaN}'),
        ("gelf_ts_str", b'{"version":"1.1","host":"h","short_message":"m","timestamp":"x"}'),
        ("gelf_short_not_str", b'{"version":"1.1","host":"h","short_message":{"a":1}}'),
        ("gelf_deep", b'{"version":"1.1","host":"h","short_message":"m","_x":'
         + hostile.deep_json(100_000) + b"}"),
        ("gelf_chunk_garbage", b"\x1e\x0f" + b"\xff" * 10 + b"\x00\x80" + b"x" * 100),
        ("gelf_gzip_garbage", b"\x1f\x8b" + b"\x00" * 100),
        ("gelf_zlib_garbage", b"\x78\x9c" + b"\xff" * 100),
        ("syslog_5424_bad_ts", b"<34>1 9999-99-99T99:99:99Z h a p m - x"),
        ("syslog_5424_year0", b"<34>1 0000-01-01T00:00:00Z h a p m - x"),
        ("syslog_bsd_feb31", b"<34>Feb 31 25:61:61 host app[1]: x"),
        ("syslog_pri_192", b"<192>x"),
        ("journald_weird", b'{"MESSAGE":[1,2,300],"__REALTIME_TIMESTAMP":"99999999999999999999"}'),
        ("journald_bytes_msg", b'{"MESSAGE":[255,254,0],"__REALTIME_TIMESTAMP":"-5"}'),
    ]
    return corpus + extra


@pytest.mark.timeout(300)
def test_corpus_through_every_receiver_decoder(corpus: list[tuple[str, bytes]]) -> None:
    pub = ListPublisher()
    syslog, gelf, fluentd = SyslogReceiver(pub), GelfReceiver(pub), FluentdReceiver(pub)
    journald = JournaldFollower(pub)
    inputs = _receiver_inputs(corpus)
    records: list[dict[str, Any]] = []
    tracemalloc.start()
    try:
        for _name, data in inputs:
            records.append(syslog.record(data, "10.0.0.1", "udp")[1])
            item = gelf.datagram(data, "10.0.0.1")
            if item is not None:
                records.append(item[1])
            records.append(gelf.record(data, "10.0.0.1", "tcp")[1])
            item = journald.entry(data)
            if item is not None:
                records.append(item[1])
            for frame in (
                [b"app", [[pack_event_time(1, 2), {b"log": data}], [data, data], data]],
                [b"app", data, {b"compressed": b"gzip"}],
                [b"app", data],
                [data, data, data],
            ):
                items, _chunk = fluentd.records(frame, "10.0.0.1")
                records.extend(r for _k, r in items)
            for delims, octets in ((b"\n\x00", True), (b"\n", False)):
                framer = Framer(delims, 64 * 1024, octet_counting=octets)
                frames = framer.feed(data) + framer.feed(b"\n") + framer.finish()
                assert all(len(f) <= 64 * 1024 for f, _cut in frames)
            del data
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"peak {peak / MiB:.0f} MiB"
    for rec in records:
        assert isinstance(rec["message"], str)
        assert rec["time"] is None or valid_time(rec["time"]) is not None, rec["time"]
        assert len(rec["message"].encode("utf-8", "surrogatepass")) <= 8 * MiB
    encode_batch(records)
    # every rejection is counted under a reason and flagged on its record
    for receiver, flag in ((syslog, "syslog_parse_error"), (gelf, "gelf_parse_error"),
                           (journald, "journald_parse_error")):
        flagged = sum(
            1 for r in records
            if r["source"]["type"] == receiver.source_type and flag in r.get("flags", [])
        )
        assert flagged and receiver.errors[flag] == flagged, (receiver.source_type, flag)
    invalid = [r for r in records if "fluentd_invalid" in r.get("flags", [])]
    assert invalid and sum(
        fluentd.errors[k] for k in ("entry_invalid", "frame_invalid")
    ) >= len(invalid)
    # packed garbage: one malformed stream, not one record per byte
    assert len(records) < 20 * len(inputs)


@pytest.mark.timeout(60)
def test_fluentd_junk_entries_are_bounded_but_counted() -> None:
    fl = FluentdReceiver(ListPublisher())
    out, _ = fl.records([b"tag", [1] * 10_000 + [[1, {b"log": b"ok"}]]], "s")
    assert len(out) == 100 + 1  # 99 alone, the rest in one record, and the valid entry
    assert fl.errors["entry_invalid"] == 10_000
    assert [r["message"] for _k, r in out].count("ok") == 1
    assert "fluentd_invalid" in out[-1][1]["flags"]  # the summary of the rest
    out, _ = fl.records([b"tag", bytes(range(1, 100)) * 10_000], "s")
    assert len(out) == 1 and fl.errors["packed_entries_malformed"] == 1
    packed = msgpack.packb([1, {"log": "a"}]) + msgpack.packb([2, {"log": "b"}])
    out, _ = fl.records([b"tag", packed], "s")
    assert [r["message"] for _k, r in out] == ["a", "b"]


def test_report_number_of_bad_inputs(corpus: list[tuple[str, bytes]]) -> None:
    adversarial = sum(len(hostile.adversarial(p)) for _n, p, _m in PATTERNS)
    receiver_inputs = len(_receiver_inputs(corpus))
    report = {
        "patterns": len(PATTERNS),
        "adversarial_regex_inputs": adversarial,
        "corpus_lines": len(corpus),
        "pipeline_inputs": len(corpus) + 7,
        "tailer_inputs": 3 * len(corpus),
        "receiver_inputs": receiver_inputs * 10,  # syslog, gelf x2, journald, fluentd x4, framer x2
    }
    report["total"] = sum(v for k, v in report.items() if k != "patterns")
    print("hostile inputs tried:", json.dumps(report))
    assert adversarial > 5000
