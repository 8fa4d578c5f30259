"""Property and adversarial tests: any input yields a Parsed, never an exception, in linear time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.parse import FORMATS, Parsed, Parser, parse_message
from streams.parse.layouts import (
    parse_access,
    parse_apache_error,
    parse_klog,
    parse_python_basic,
    parse_syslog,
    parse_text,
)
from streams.parse.structured import parse_json, parse_logfmt, scan_logfmt
from streams.parse.timestamps import leading_timestamp, parse_timestamp

REF = datetime(2026, 11, 25, 12, tzinfo=UTC)
LEVELS = {None, "trace", "debug", "info", "warn", "error", "fatal"}

# Prefixes that steer input into each format's parser.
PREFIXES = ["", "{", '{"msg":', "<13>", "<165>1 ", "[", "[Wed Nov 25 10:00:00 2026] [error] ",
            "I1125 10:00:00.123456 1 a.go:1] ", "level=info msg=", "time=\"", "1.2.3.4 - - [",
            "2026-11-25 10:00:00,123 - ", "2026-11-25T10:00:00Z\tINFO\t", "ERROR:root:",
            "Nov 25 10:00:00 host tag[1]: ", "2026/11/25 10:00:00 [error] 1#1: ",
            "2026-11-25 10:00:00.123 [main] INFO ", "2026-11-25 10:00:00,1 INFO [t] c: "]

texts = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", "replace")),
    st.builds(lambda p, t: p + t, st.sampled_from(PREFIXES), st.text(max_size=200)),
    st.text(alphabet='{}[]":,=\\ <>0123456789-TZ.\t\n\x00aIE', max_size=300),
)


def _check(p: Parsed) -> None:
    assert isinstance(p, Parsed)
    assert p.format in FORMATS
    assert isinstance(p.message, str)
    assert p.level is None or isinstance(p.level, str)
    assert p.severity in LEVELS
    assert p.timestamp is None or (p.timestamp.tzinfo is not None and p.timestamp.utcoffset().total_seconds() == 0)
    assert isinstance(p.fields, dict) and all(isinstance(e, str) for e in p.errors)
    assert "parse_exception" not in p.errors  # the safety net in Parser.parse was not needed


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_any_text_parses(line):
    _check(parse_message(line, reference_time=REF))


@settings(max_examples=200)
@given(st.binary(max_size=400))
def test_any_bytes_parse(data):
    _check(Parser().parse(data, reference_time=REF))  # type: ignore[arg-type]


@settings(max_examples=200)
@given(texts)
def test_each_format_parser_never_raises(line):
    for result in (parse_json(line, REF, 8, 128), parse_logfmt(line, REF, 128), parse_klog(line, REF),
                   parse_access(line, REF), parse_apache_error(line, REF), parse_syslog(line, REF),
                   parse_python_basic(line), parse_text(line, REF)):
        if result is not None:
            _check(result)
    scan_logfmt(line)
    leading_timestamp(line, REF)
    parse_timestamp(line, REF)


@settings(max_examples=200)
@given(texts)
def test_header_patterns_never_raise(line):
    _check(Parser(dissect="%{a} [%{level}] %{message}").parse(line, reference_time=REF))
    _check(Parser(regex=r"(?P<time>\S{1,40}) (?P<message>.*)").parse(line, reference_time=REF))


@settings(max_examples=100)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=30))
def test_any_json_value(value):
    import orjson

    try:
        line = orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        return
    _check(parse_message(line, reference_time=REF))


def test_json_nested_1000_deep():
    line = '{"msg":"deep","a":' + '{"a":' * 1000 + "1" + "}" * 1000 + "}"
    p = parse_message(line, reference_time=REF)
    assert p.format == "json" and p.message == "deep" and "json_depth_limit" in p.errors
    arr = "[" * 1000 + "]" * 1000
    _check(parse_message(arr, reference_time=REF))
    _check(parse_message("{" * 5000, reference_time=REF))


def test_one_mib_lines():
    for line in ("x" * (1 << 20), "a=1 " * (1 << 18), '{"msg":"' + "y" * (1 << 20) + '"}',
                 "2026-11-25 10:00:00 INFO " + "z " * (1 << 19), "\x00" * (1 << 20)):
        _check(parse_message(line, reference_time=REF))


def test_only_variables_and_empty():
    for line in ("", "1 2 3 4", "0x1f 10.0.0.1 42", "\n", "   "):
        _check(parse_message(line, reference_time=REF))


ADVERSARIAL = [
    # Long runs aimed at each regex: unterminated quotes, brackets, separators, digits.
    '1.2.3.4 - - [25/Nov/2026:10:00:00 +0000] "' + "GET \\" * 20000,
    '1.2.3.4 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "' + 'a"' * 20000,
    "[" + "]" * 50000,
    "[Wed Nov 25 10:00:00 2026] [error] [pid " + "1" * 50000,
    "I1125 10:00:00.123456" + " " * 50000 + "1",
    "I1125 10:00:00.123456 1 " + "a" * 50000 + ":1",
    "<13>" + "Nov 25 10:00:00 " + "h" * 50000,
    "<165>1 " + "- " * 50000,
    "2026-11-25 10:00:00,123 - " + "n" * 50000,
    "2026-11-25 10:00:00.123 [" + "t" * 50000,
    "2026-11-25T10:00:00.123Z  INFO 1 --- [" + " " * 50000,
    "2026-11-25T10:00:00Z\t" + "\t" * 50000,
    "2026/11/25 10:00:00 [error] " + "1" * 50000,
    "ERROR:" + "r" * 50000,
    "level=" + '"' * 50000,
    "a=" + '"\\' * 50000,
    "9" * 100000,
    "2026-11-25" + "-" * 50000,
    "Nov 25 " + "1" * 50000,
    "x\n\tat " * 20000,
    "Traceback (most recent call last):\n" + "a." * 50000,
    "a\n" + "java.lang." * 10000 + "\n\tat x",
    "goroutine 1 [running]:\n" * 10000,
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("line", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_inputs_complete(line):
    _check(parse_message(line, reference_time=REF))
    _check(Parser(dissect="%{a} %{b->} [%{c}] %{message}").parse(line, reference_time=REF))
