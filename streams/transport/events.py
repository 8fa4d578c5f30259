"""Helpers on event documents as they travel between stages: dotted field paths and event
times as integer microseconds since the epoch (exact window boundaries, no float rounding)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

US = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def parse_time_us(value: Any) -> int | None:
    """RFC 3339 string (or epoch seconds as a number) to integer microseconds; None if invalid."""
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


def format_time_us(us: int) -> str:
    """Integer microseconds to RFC 3339 UTC with milliseconds, e.g. ``2026-01-01T00:01:00.000Z``."""
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
