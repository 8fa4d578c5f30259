"""Log level normalization to one of trace, debug, info, warn, error, fatal."""

from __future__ import annotations

LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")

_ALIASES: dict[str, str] = {
    "t": "trace", "trc": "trace", "trace": "trace", "finest": "trace", "finer": "trace",
    "v": "trace", "verbose": "trace",
    "d": "debug", "dbg": "debug", "debug": "debug", "fine": "debug", "config": "debug",
    "i": "info", "inf": "info", "info": "info", "information": "info",
    "informational": "info", "notice": "info", "note": "info", "ok": "info",
    "w": "warn", "wrn": "warn", "warn": "warn", "warning": "warn",
    "e": "error", "err": "error", "eror": "error", "error": "error", "severe": "error",
    "f": "fatal", "ftl": "fatal", "fatal": "fatal", "crit": "fatal", "critical": "fatal",
    "alert": "fatal", "emerg": "fatal", "emergency": "fatal", "panic": "fatal",
    "dpanic": "fatal", "failure": "fatal",
}
# Syslog severities 0..7 (RFC 5424).
SYSLOG_SEVERITY = ("fatal", "fatal", "fatal", "error", "warn", "info", "info", "debug")
# Words accepted as a level when found in free text (single letters are too ambiguous there).
TEXT_LEVEL_WORDS = frozenset(k for k in _ALIASES if len(k) > 2 and k not in ("ok", "note", "config", "fine", "failure"))


def normalize_level(value: object) -> str | None:
    """Map a level name, letter or number to the normalized name; None when unknown."""
    if type(value) is str and len(value) <= 16:  # the usual case: a few names over and over
        hit = _SEEN.get(value, _MISSING)
        if hit is not _MISSING:
            return hit  # type: ignore[return-value]
        hit = _normalize(value)
        if len(_SEEN) >= _MAX_SEEN:
            _SEEN.clear()
        _SEEN[value] = hit
        return hit
    return _normalize(value)


def _normalize(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _numeric_level(int(value))
    if not isinstance(value, str) or not value or len(value) > 16:
        return None
    key = value.strip().strip("[]<>:").lower()
    hit = _ALIASES.get(key)
    if hit is None and key.isdigit():
        return _numeric_level(int(key))
    return hit


# Results for exact ``str`` values seen (``_normalize`` is pure); cleared when full.
_SEEN: dict[str, str | None] = {}
_MAX_SEEN = 4096
_MISSING = object()


def _numeric_level(n: int) -> str | None:
    """Numbers: syslog 0..7, Python logging 10..50, pino/bunyan 10..60."""
    if 0 <= n <= 7:
        return SYSLOG_SEVERITY[n]
    if n in (10, 20, 30, 40, 50, 60):
        # bunyan/pino: 10 trace..60 fatal; Python: 10 debug..50 critical. Python is more common.
        return {10: "debug", 20: "info", 30: "warn", 40: "error", 50: "fatal", 60: "fatal"}[n]
    return None
