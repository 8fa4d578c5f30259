"""grok with Logstash's pattern library: the header pattern (``Parser(grok=...)``,
``logriver parse --grok``) and the extraction steps (grok, dissect, regex, key/value)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from streams.parse import Grok, Parser
from streams.parse.grok import PATTERN_SETS, field_name, library
from streams.pipeline import Pipeline
from streams.replay.runner import structure_lines
from streams.steps import extract

REPO = Path(__file__).resolve().parents[2]
REF = datetime(2026, 11, 25, 12, tzinfo=UTC)
COMBINED = ('198.51.100.4 - alice [12/Mar/2026:10:11:12 +0100] "GET /a?b=1 HTTP/1.1" 304 0 '
            '"https://ref.example/" "Mozilla/5.0 (X11; Linux x86_64)"')


@pytest.mark.parametrize("pattern_set", PATTERN_SETS)
def test_every_library_pattern_compiles(pattern_set: str) -> None:
    names = list(library(pattern_set))
    assert {"COMBINEDAPACHELOG", "HTTPD_ERRORLOG", "SYSLOGLINE", "IPORHOST", "LOGLEVEL"} <= set(names)
    for name in names:
        Grok(f"%{{{name}}}", pattern_set=pattern_set)


def test_combined_apache_log_to_ecs_fields_and_timestamp() -> None:
    p = Parser(grok="%{COMBINEDAPACHELOG}").parse(COMBINED, reference_time=REF)
    assert p.format == "grok" and p.errors == []
    assert p.timestamp == datetime(2026, 3, 12, 9, 11, 12, tzinfo=UTC)
    f = p.fields
    assert f["source"] == {"address": "198.51.100.4", "ip": "198.51.100.4"}
    assert f["user"] == {"name": "alice"} and f["url"] == {"original": "/a?b=1"}
    assert f["http"] == {"request": {"method": "GET", "referrer": "https://ref.example/"},
                         "version": "1.1", "response": {"status_code": 304, "body": {"bytes": 0}}}
    assert f["user_agent"] == {"original": "Mozilla/5.0 (X11; Linux x86_64)"}
    assert p.severity == "info"


def test_legacy_names_are_mapped_to_ecs() -> None:
    p = Parser(grok=Grok("%{COMBINEDAPACHELOG}", pattern_set="legacy")).parse(COMBINED, reference_time=REF)
    assert p.fields["source"]["ip"] == "198.51.100.4"
    assert p.fields["http"]["response"]["status_code"] == 304
    assert p.fields["user_agent"] == {"original": "Mozilla/5.0 (X11; Linux x86_64)"}  # quotes gone
    assert p.timestamp == datetime(2026, 3, 12, 9, 11, 12, tzinfo=UTC)


def test_user_patterns_types_onig_captures_and_posix_classes(tmp_path: Path) -> None:
    (tmp_path / "app").write_text("# my patterns\nREQID req-[[:alnum:]]{6}\nDUR %{NUMBER}ms\n")
    mine = (r"^%{REQID:trace.id} took %{NUMBER:[event][ms]:float}ms "
            r"(?<user_name>\w+) %{POSINT:count:int}$")
    g = Grok(["^nothing-%{WORD:x}$", mine], patterns_dir=tmp_path)
    assert g.match("req-a1B2c3 took 12.5ms bob 7") == {
        "trace.id": "req-a1B2c3", "event.ms": 12.5, "user_name": "bob", "count": 7}
    assert g.match("other") is None
    g2 = Grok("%{DUR:d} %{SHOUT:s}", patterns_dir=tmp_path, pattern_definitions={"SHOUT": "[A-Z]+"})
    assert g2.match("x 12ms HEY") == {"d": "12ms", "s": "HEY"}
    assert field_name("[a][b][c]") == "a.b.c"
    with pytest.raises(ValueError, match="unknown grok pattern"):
        Grok("%{NOPE}")
    with pytest.raises(ValueError, match="too deep"):
        Grok("%{A}", pattern_definitions={"A": "%{B}", "B": "%{A}"})


def test_no_match_falls_back_to_detection_with_a_flag() -> None:
    p = Parser(grok="%{HTTPD_ERRORLOG}").parse('{"msg":"json"}', reference_time=REF)
    assert p.format == "json" and "header_mismatch" in p.errors


def test_parse_cli_grok() -> None:
    lines = (COMBINED + "\nSep  9 10:00:00 web-1 nginx[42]: ready\n").encode()
    out = subprocess.run([sys.executable, "-m", "streams", "parse", "--grok", "%{COMBINEDAPACHELOG}",
                          "--grok", "%{SYSLOGLINE}"], input=lines, capture_output=True, check=True,
                         cwd=REPO, timeout=60)
    first, second = (orjson.loads(x) for x in out.stdout.splitlines())
    assert first["@timestamp"] == "2026-03-12T09:11:12.000Z"
    assert first["http"]["response"]["status_code"] == 304 and first["log"]["format"] == "grok"
    assert second["process"] == {"name": "nginx", "pid": 42} and second["message"] == "ready"
    assert second["host"]["hostname"] == "web-1"
    bad = subprocess.run([sys.executable, "-m", "streams", "parse", "--grok", "%{NOPE}"],
                         input=b"x\n", capture_output=True, cwd=REPO, timeout=60, check=False)
    assert bad.returncode != 0 and b"unknown grok pattern" in bad.stderr


def _run(steps: list, line: str) -> dict:
    [event] = structure_lines(Pipeline("t", steps=steps, mine_templates=False), [line.encode()])
    return event


def test_grok_step_sets_fields_level_and_timestamp() -> None:
    step = extract.grok("%{HTTPD_ERRORLOG}")
    ev = _run([step], "[Wed Jan 14 09:00:01.5 2026] [ssl:emerg] [pid 2002:tid 7] "
                      "[client 203.0.113.9:6001] AH02572: no certificate")
    assert ev["@timestamp"] == "2026-01-14T09:00:01.500Z"
    assert (ev["log"]["level"], ev["log"]["severity"], ev["event"]["severity"]) == ("emerg", "fatal", 0)
    assert ev["source"]["port"] == 6001 and ev["process"]["thread"]["id"] == 7
    miss = _run([step], "no match here")
    assert "grok_no_match" in miss["logriver"]["flags"] and miss["message"] == "no match here"


def test_dissect_and_regex_steps_set_timestamp_from_time_captures() -> None:
    line = "app|2026-02-03 04:05:06,789|WARN|disk low"
    ev = _run([extract.dissect("%{service}|%{timestamp}|%{level}|%{message}")], line)
    assert ev["@timestamp"] == "2026-02-03T04:05:06.789Z" and ev["message"] == "disk low"
    assert (ev["log"]["level"], ev["log"]["severity"]) == ("WARN", "warn")
    assert ev["service"]["name"] == "app"
    ev = _run([extract.regex(r"(?P<date>\d{4}-\d\d-\d\d) (?P<time>[\d:,]+)\|(?P<level>\w+)\|")],
              "x|" + line.split("|", 1)[1])
    assert ev["@timestamp"] == "2026-02-03T04:05:06.789Z" and ev["log"]["level"] == "WARN"


def test_key_value_step_with_custom_separators() -> None:
    step = extract.key_value(field_split=";", value_split=":")
    ev = _run([step], 'Order placed user:"bob smith";id:42;express')
    assert "attributes" not in ev or ev["attributes"] == {}  # nothing before the step
    ev = _run([extract.key_value(field_split=";", value_split=":", field="message")],
              'user:"bob smith";id:42;express')
    assert ev["attributes"] == {"user": "bob smith", "id": "42", "express": True}
    ev = _run([extract.key_value(field_split=",", value_split="=", prefix="")],
              "status=503,method=POST,flag")
    assert ev["http"]["response"]["status_code"] == 503 and ev["http"]["request"]["method"] == "POST"
