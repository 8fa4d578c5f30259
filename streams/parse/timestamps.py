"""Timestamp recognition: many layouts, converted to timezone-aware UTC.

A layout without a zone is taken as UTC; a layout without a year gets the year of the
reference time (the previous year when that would put it more than a day in the future).
Anything before 1990 or more than one day after the reference time is rejected with
``timestamp_out_of_range``. All patterns are anchored and use bounded quantifiers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from operator import itemgetter

OUT_OF_RANGE = "timestamp_out_of_range"
INVALID = "timestamp_invalid"

_MIN = datetime(1990, 1, 1, tzinfo=UTC)
_EPOCH0 = datetime(1970, 1, 1, tzinfo=UTC)
_FUTURE = timedelta(days=1)
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_MON = r"(?:[Jj]an|[Ff]eb|[Mm]ar|[Aa]pr|[Mm]ay|[Jj]un|[Jj]ul|[Aa]ug|[Ss]ep|[Oo]ct|[Nn]ov|[Dd]ec)"
_ZONE = r"(?P<z>\s?(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)(?![\w]))?"
_FRAC = r"(?:[.,](?P<f>\d{1,9}))?"

# ISO 8601 / RFC 3339 and its common relatives: 2026-11-25T10:00:00.123Z, 2026-11-25 10:00:00,123,
# 2026/11/25 10:00:00, 2005-06-03-15.42.50.675872.
_ISO = re.compile(
    r"(?P<Y>\d{4})(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})(?:[T ]{1,2}|-)"
    r"(?P<H>\d{1,2})[:.](?P<M>\d{2})[:.](?P<S>\d{2})" + _FRAC + _ZONE
)
# 17/06/09 20:10:40 (yy/mm/dd)
_SHORT = re.compile(r"(?P<y>\d{2})/(?P<m>\d{2})/(?P<d>\d{2}) (?P<H>\d{2}):(?P<M>\d{2}):(?P<S>\d{2})" + _FRAC)
# 03-17 16:13:38.811 (mm-dd, no year; Android logcat)
_MD = re.compile(r"(?P<m>\d{2})-(?P<d>\d{2}) (?P<H>\d{2}):(?P<M>\d{2}):(?P<S>\d{2})" + _FRAC)
# Nov 25 10:00:00, Wed Nov 25 10:00:00.123456 2026 (syslog, ctime)
_SYSLOG = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),? )?(?P<b>" + _MON + r") {1,2}(?P<d>\d{1,2}),? "
    r"(?P<H>\d{2}):(?P<M>\d{2}):(?P<S>\d{2})" + _FRAC + r"(?: (?P<Y>\d{4})(?!\d))?" + _ZONE
)
# Nov 25 2026 10:00:00.123 (Cisco and other network devices: the year before the time)
_SYSLOG_YEAR = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),? )?(?P<b>" + _MON + r") {1,2}(?P<d>\d{1,2}),? (?P<Y>\d{4}) "
    r"(?P<H>\d{2}):(?P<M>\d{2}):(?P<S>\d{2})" + _FRAC + _ZONE
)
# 25/Nov/2026:10:00:00 +0000 (Apache/nginx access logs)
_CLF = re.compile(
    r"(?P<d>\d{2})/(?P<b>" + _MON + r")/(?P<Y>\d{4}):(?P<H>\d{2}):(?P<M>\d{2}):(?P<S>\d{2})" + _FRAC + _ZONE
)
# 081109 203615 (yymmdd HHMMSS), only as a whole value: too ambiguous at the start of text.
_COMPACT = re.compile(r"(?P<y>\d{2})(?P<m>\d{2})(?P<d>\d{2}) (?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2})")
# 1125 10:00:00.123456 (klog: mmdd, no year)
KLOG = re.compile(r"(?P<m>\d{2})(?P<d>\d{2}) (?P<H>\d{2}):(?P<M>\d{2}):(?P<S>\d{2})" + _FRAC)

# The canonical shape of _ISO (2026-11-25T10:00:00.123Z, 2026-11-25 10:00:00,123456, ...):
# all fields two digits, milli- or microseconds, UTC or no zone. ``datetime.fromisoformat``
# (in C) reads it exactly as ``_build`` does, much faster.
_ISO_CANONICAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.,](?:[0-9]{3}|[0-9]{6}))?Z?")
_EPOCH = re.compile(r"(?P<i>\d{9,19})(?:\.(?P<f>\d{1,9}))?")


def check_range(dt: datetime, ref: datetime) -> tuple[datetime | None, str | None]:
    """Reject times before 1990 or more than a day after ``ref``."""
    if dt < _MIN or dt > ref + _FUTURE:
        return None, OUT_OF_RANGE
    return dt, None


def from_epoch(value: float, ref: datetime) -> tuple[datetime | None, str | None]:
    """Epoch seconds, milliseconds, microseconds or nanoseconds (chosen by magnitude)."""
    if isinstance(value, int):
        a = abs(value)
        div = 10**9 if a >= 10**17 else 10**6 if a >= 10**14 else 10**3 if a >= 10**11 else 1
        micros = value * 10**6 // div
    else:
        if not math.isfinite(value):
            return None, INVALID
        a = abs(value)
        div = 1e9 if a >= 1e17 else 1e6 if a >= 1e14 else 1e3 if a >= 1e11 else 1.0
        micros = round(value * 1e6 / div)
    try:
        dt = _EPOCH0 + timedelta(microseconds=micros)
    except OverflowError:
        return None, OUT_OF_RANGE
    return check_range(dt, ref)


def _parse_zone(z: str) -> timezone:
    z = z.strip()
    if z in ("Z", "UTC", "GMT"):
        return UTC
    sign = -1 if z[0] == "-" else 1
    digits = z[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(z)
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


# Zone texts seen so far (few in practice); bounded, invalid ones are never stored.
_ZONES: dict[str | None, timezone] = {None: UTC, "": UTC}
_MAX_ZONES = 512


def _zone(z: str | None) -> timezone:
    tz = _ZONES.get(z)
    if tz is None:
        tz = _parse_zone(z)  # type: ignore[arg-type]
        if len(_ZONES) < _MAX_ZONES:
            _ZONES[z] = tz
    return tz


_PARTS = ("Y", "y", "m", "b", "d", "H", "M", "S", "f", "z")
_Parts = tuple[str | None, ...]


def _layout(rx: re.Pattern[str]) -> tuple[re.Pattern[str], Callable[[_Parts], _Parts]]:
    """``rx`` and a function picking its ``_PARTS`` (None when absent) from
    ``m.groups() + (None,)``: cheaper than ``m.groupdict()``."""
    none = rx.groups  # index of the appended None
    return rx, itemgetter(*(rx.groupindex[p] - 1 if p in rx.groupindex else none for p in _PARTS))


def _build(parts: _Parts, ref: datetime) -> tuple[datetime | None, str | None]:
    """Build a datetime from the ``_PARTS`` of a match (Y or y, m or b, d, H, M, S, f, z)."""
    Y, y, mon, b, d, H, M, S, f, z = parts
    try:
        year_known = True
        if Y:
            year = int(Y)
        elif y:
            year = 2000 + int(y)
        else:
            year, year_known = ref.year, False
        month = int(mon) if mon else _MONTHS[(b or "").lower()]
        micro = int(f[:6].ljust(6, "0")) if f else 0
        second = int(S)  # type: ignore[arg-type]
        dt = datetime(year, month, int(d), int(H), int(M),  # type: ignore[arg-type]
                      second if second < 60 else 59, micro, tzinfo=_ZONES.get(z) or _zone(z))
        if not year_known and dt > ref + _FUTURE:
            dt = dt.replace(year=year - 1)
    except (ValueError, KeyError, OverflowError):
        return None, INVALID
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)  # (may raise OverflowError, to the caller)
    if dt < _MIN or dt > ref + _FUTURE:  # (check_range, inlined)
        return None, OUT_OF_RANGE
    return dt, None


_SLASHED = (_layout(_CLF), _layout(_SHORT))
_DASHED = (_layout(_MD),)
_ISO_ONLY = (_layout(_ISO),)
_SYSLOG_ONLY = (_layout(_SYSLOG), _layout(_SYSLOG_YEAR))
_MONTH_OR_DAY = frozenset(
    [m.capitalize() for m in _MONTHS] + list(_MONTHS) + ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
_COMPACT_PARTS = _layout(_COMPACT)[1]
_KLOG_PARTS = _layout(KLOG)[1]


def _iso_canonical(t: str) -> datetime | None:
    """``t`` (an _ISO match) as a UTC datetime when it has the canonical shape, else None
    (then ``_build`` decides). Hours past 23 and seconds past 59 are left to ``_build``, which
    rejects or clamps them."""
    if _ISO_CANONICAL.fullmatch(t) and t[11:13] < "24" and t[17:19] < "60":
        try:
            return datetime.fromisoformat(t if t[-1] == "Z" else t + "+00:00")
        except ValueError:  # an invalid date: _build gives the error
            return None
    return None


def leading_timestamp(text: str, ref: datetime) -> tuple[datetime | None, int, str | None]:
    """A timestamp at the start of ``text``: (time, end index, error). End is 0 when none."""
    if not text:
        return None, 0, None
    c = text[0]
    # Each layout is tried only when the characters it needs are where it needs them.
    if c.isdigit():
        c2 = text[2:3]
        if c2 == "/":
            candidates = _SLASHED
        elif c2 == "-":
            candidates = _DASHED
        elif text[4:5] in ("-", "/", "."):
            candidates = _ISO_ONLY
        else:
            return None, 0, None
    elif c.isalpha():
        if text[:3] not in _MONTH_OR_DAY:  # both syslog layouts start with a month or a day
            return None, 0, None
        candidates = _SYSLOG_ONLY
    else:
        return None, 0, None
    for rx, parts in candidates:
        m = rx.match(text)
        if m:
            end = m.end()
            if rx is _ISO:
                dt = _iso_canonical(text[:end])
                if dt is not None:
                    if dt < _MIN or dt > ref + _FUTURE:
                        return None, end, OUT_OF_RANGE
                    return dt, end, None
            dt, err = _build(parts(m.groups() + (None,)), ref)
            return dt, end, err
    return None, 0, None


def parse_timestamp(value: object, ref: datetime) -> tuple[datetime | None, str | None]:
    """A whole value as a timestamp: a string in any known layout, or an epoch number."""
    if not isinstance(value, str):
        if isinstance(value, bool):
            return None, INVALID
        if isinstance(value, (int, float)):
            return from_epoch(value, ref)
        return None, INVALID
    text = value.strip()
    if not text or len(text) > 64:
        return None, INVALID
    if text[0].isdigit():
        # Each whole-value layout is tried only when the characters it needs are there.
        if text[:9].isdigit():  # _EPOCH starts with 9+ digits
            m = _EPOCH.fullmatch(text)
            if m:
                return from_epoch(float(text) if m["f"] else int(m["i"]), ref)
        if text[4:5] == " ":  # KLOG (where _COMPACT has a digit)
            m = KLOG.fullmatch(text)
            if m:
                return _build(_KLOG_PARTS(m.groups() + (None,)), ref)
        elif len(text) == 13:  # _COMPACT
            m = _COMPACT.fullmatch(text)
            if m:
                return _build(_COMPACT_PARTS(m.groups() + (None,)), ref)
    dt, end, err = leading_timestamp(text, ref)
    if end and (end == len(text) or not text[end:].strip()):
        return dt, err
    return None, INVALID
