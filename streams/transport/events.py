"""Helpers on event documents as they travel between stages: dotted field paths and event
times as integer microseconds since the epoch (exact window boundaries, no float rounding)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

US = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def parse_time_us(value: Any) -> int | None:
    """RFC 3339 string (or epoch seconds as a number) to integer microseconds; None if invalid."""
    # Events' own form, ``YYYY-MM-DDTHH:MM:SS.mmmZ``, of a second already parsed: no datetime.
    if type(value) is str and len(value) == 24 and value[23] == "Z" and value[19] == ".":
        base = _SECOND_US.get(value[:19])
        ms = value[20:23]
        if ms.isdigit() and ms.isascii():
            if base is not None:
                return base + int(ms) * 1000
            us = _parse_time_us(value)
            if us is not None and _SECOND.fullmatch(value, 0, 19):
                if len(_SECOND_US) >= 4096:
                    _SECOND_US.clear()
                _SECOND_US[value[:19]] = us - int(ms) * 1000
            return us
    return _parse_time_us(value)


_SECOND = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")
_SECOND_US: dict[str, int] = {}  # ``YYYY-MM-DDTHH:MM:SS`` (UTC) -> its microseconds


def _parse_time_us(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return round(value * US)
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // _ONE_US


@lru_cache(maxsize=4096)
def format_time_us(us: int) -> str:
    """Integer microseconds to RFC 3339 UTC with milliseconds, e.g. ``2026-01-01T00:01:00.000Z``.
    Cached: window bounds repeat (every late event names the windows it missed)."""
    return (_EPOCH + timedelta(microseconds=us)).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def get_path(event: dict[str, Any], path: tuple[str, ...]) -> Any:
    """Value at a pre-split dotted path of a nested dict, or None."""
    cur: Any = event
    for part in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur
