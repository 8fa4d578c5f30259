"""Timestamp layouts, range checks and level normalization."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.parse import normalize_level
from streams.parse.timestamps import leading_timestamp, parse_timestamp

REF = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-25T10:00:00Z", datetime(2026, 11, 25, 10, tzinfo=UTC)),
    ("2026-11-25T10:00:00.123456789+02:00", datetime(2026, 11, 25, 8, 0, 0, 123456, tzinfo=UTC)),
    ("2026-11-25 10:00:00,123", datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=UTC)),
    ("2026-11-25T10:00:00-0530", datetime(2026, 11, 25, 15, 30, tzinfo=UTC)),
    ("2026/11/25 10:00:00", datetime(2026, 11, 25, 10, tzinfo=UTC)),
    ("2005-06-03-15.42.50.675872", datetime(2005, 6, 3, 15, 42, 50, 675872, tzinfo=UTC)),
    ("25/Nov/2026:10:00:00 +0000", datetime(2026, 11, 25, 10, tzinfo=UTC)),
    ("25/Nov/2026:10:00:00 -0100", datetime(2026, 11, 25, 11, tzinfo=UTC)),
    ("Nov 25 10:00:00", datetime(2026, 11, 25, 10, tzinfo=UTC)),
    ("Nov  5 10:00:00", datetime(2026, 11, 5, 10, tzinfo=UTC)),
    ("Wed Nov 25 10:00:00.5 2026", datetime(2026, 11, 25, 10, 0, 0, 500000, tzinfo=UTC)),
    ("Sun Dec 04 04:47:44 2005", datetime(2005, 12, 4, 4, 47, 44, tzinfo=UTC)),
    ("17/06/09 20:10:40", datetime(2017, 6, 9, 20, 10, 40, tzinfo=UTC)),
    ("081109 203615", datetime(2008, 11, 9, 20, 36, 15, tzinfo=UTC)),
    ("1125 10:00:00.123456", datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)),
    ("03-17 16:13:38.811", datetime(2026, 3, 17, 16, 13, 38, 811000, tzinfo=UTC)),
    ("1117838570", datetime(2005, 6, 3, 22, 42, 50, tzinfo=UTC)),
    ("1764064800000", datetime(2025, 11, 25, 10, tzinfo=UTC)),
])
def test_layouts(text, expected):
    dt, err = parse_timestamp(text, REF)
    assert err is None
    assert dt == expected and dt.tzinfo is not None


def test_year_inferred_from_reference_time():
    # December seen in early January belongs to the previous year.
    dt, _ = parse_timestamp("Dec 31 23:00:00", datetime(2027, 1, 1, 1, tzinfo=UTC))
    assert dt == datetime(2026, 12, 31, 23, tzinfo=UTC)


@pytest.mark.parametrize("text", ["1970-01-01T00:00:00Z", "1989-12-31 23:59:59", "2026-11-27T00:00:00Z", 0, 99999999999999999999])
def test_out_of_range(text):
    dt, err = parse_timestamp(text, REF)
    assert dt is None and err == "timestamp_out_of_range"


@pytest.mark.parametrize("text", ["2026-13-45T10:00:00Z", "not a time", "", "2026-11-25T10:00:00Z trailing"])
def test_invalid(text):
    dt, err = parse_timestamp(text, REF)
    assert dt is None and err == "timestamp_invalid"


def test_leading_timestamp_end_index():
    dt, end, err = leading_timestamp("2026-11-25 10:00:00,123 INFO x", REF)
    assert dt == datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=UTC) and end == 23 and err is None
    assert leading_timestamp("hello", REF) == (None, 0, None)


@pytest.mark.parametrize(("raw", "level"), [
    ("W", "warn"), ("warn", "warn"), ("WARNING", "warn"), ("Warn", "warn"),
    ("E", "error"), ("ERR", "error"), ("error", "error"), ("SEVERE", "error"),
    ("CRIT", "fatal"), ("critical", "fatal"), ("alert", "fatal"), ("emerg", "fatal"),
    ("FATAL", "fatal"), ("panic", "fatal"), ("DPANIC", "fatal"),
    ("notice", "info"), ("informational", "info"), ("I", "info"), ("INFO", "info"),
    ("D", "debug"), ("debug", "debug"), ("trace", "trace"), ("V", "trace"), ("[ERROR]", "error"),
    (20, "info"), (40, "error"), (3, "error"), ("7", "debug"),
    ("chatty", None), ("", None), (None, None), (True, None),
])
def test_level_normalization(raw, level):
    assert normalize_level(raw) == level


@pytest.mark.parametrize(("text", "expected"), [
    # Canonical ISO shapes (read by datetime.fromisoformat) and near misses (read by _build):
    # both must give the same times.
    ("2026-11-25T10:00:00.123Z", datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=UTC)),
    ("2026-11-25T10:00:00.123456", datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)),
    ("2026-11-25 10:00:00,123456Z", datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)),
    ("2026-11-25T10:00:00.12Z", datetime(2026, 11, 25, 10, 0, 0, 120000, tzinfo=UTC)),
    ("2026-11-25T10:00:00.1234Z", datetime(2026, 11, 25, 10, 0, 0, 123400, tzinfo=UTC)),
    ("2026-11-25T10:00:00.123+01:00", datetime(2026, 11, 25, 9, 0, 0, 123000, tzinfo=UTC)),
    ("2026-11-25T10:00:00.123 UTC", datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=UTC)),
    ("2026-11-25T10:00:60Z", datetime(2026, 11, 25, 10, 0, 59, tzinfo=UTC)),  # leap second: 59
    ("2026-11-25T10:00:99.5", datetime(2026, 11, 25, 10, 0, 59, 500000, tzinfo=UTC)),
    ("2026-1-5T10:00:00Z", datetime(2026, 1, 5, 10, tzinfo=UTC)),
    ("2026-11-25T 10:00:00Z", datetime(2026, 11, 25, 10, tzinfo=UTC)),
    ("1125 10:00:59", datetime(2026, 11, 25, 10, 0, 59, tzinfo=UTC)),  # klog, 13 characters
    ("251125 100059", datetime(2025, 11, 25, 10, 0, 59, tzinfo=UTC)),  # compact, 13 too
])
def test_iso_fast_path_and_near_misses(text, expected):
    dt, err = parse_timestamp(text, REF)
    assert err is None
    assert dt == expected and dt.tzinfo is UTC


@pytest.mark.parametrize("text", ["2026-11-25T24:00:00Z", "2026-11-31T10:00:00Z",
                                  "2026-11-25T10:60:00.123", "0000-11-25T10:00:00Z"])
def test_iso_invalid_canonical_shapes(text):
    assert parse_timestamp(text, REF) == (None, "timestamp_invalid")


def test_iso_end_index_with_trailing_word_characters():
    # The zone needs a non-word character after it: "Zx" is not a zone.
    dt, end, err = leading_timestamp("2026-11-25T10:00:00.123Zx rest", REF)
    assert (dt, end, err) == (datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=UTC), 23, None)


def test_level_cache_keeps_results_by_type():
    assert normalize_level("1") == "fatal" and normalize_level(1) == "fatal"
    assert normalize_level(True) is None and normalize_level("True") is None
    assert normalize_level("WARNING") == normalize_level("WARNING") == "warn"
