"""Log levels: the original text stays in ``log.level``; beside it a normalized severity
(one of trace, debug, info, warn, error, fatal) and its syslog severity code (RFC 5424:
0 emerg .. 7 debug), which dashboards, windows and detectors use.
"""

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
    "a": "fatal",  # Android logcat: assert
    "alert": "fatal", "emerg": "fatal", "emergency": "fatal", "panic": "fatal",
    "dpanic": "fatal", "failure": "fatal",
}
# Apache's trace1..trace8.
_ALIASES.update({f"trace{i}": "trace" for i in range(1, 9)})

# Syslog (RFC 5424) severity and facility keywords, by code.
SYSLOG_SEVERITY_NAMES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
SYSLOG_FACILITY_NAMES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
    "authpriv", "ftp", "ntp", "audit", "alert", "clockd",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)
# Syslog severities 0..7 normalized.
SYSLOG_SEVERITY = ("fatal", "fatal", "fatal", "error", "warn", "info", "info", "debug")
# Normalized severity -> syslog code; original words more precise than their normalized name.
_CODE = {"trace": 7, "debug": 7, "info": 6, "warn": 4, "error": 3, "fatal": 2}
_WORD_CODE = {"notice": 5, "note": 5, "alert": 1, "a": 1, "emerg": 0, "emergency": 0,
              "panic": 0, "crit": 2, "critical": 2}
# Words accepted as a level when found in free text (single letters are too ambiguous there).
TEXT_LEVEL_WORDS = frozenset(k for k in _ALIASES if len(k) > 2 and k not in (
    "ok", "note", "config", "fine", "failure") and not k.startswith("trace") or k == "trace")


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


def level_info(value: object) -> tuple[str | None, int | None]:
    """(normalized severity, syslog severity code) of an original level; cached per text."""
    if type(value) is str and len(value) <= 16:
        hit = _INFO.get(value)
        if hit is None:
            hit = _info(value)
            if len(_INFO) >= _MAX_SEEN:
                _INFO.clear()
            _INFO[value] = hit
        return hit
    return _info(value)


def severity_code(normalized: str) -> int | None:
    """The syslog severity code of a normalized severity."""
    return _CODE.get(normalized)


def _info(value: object) -> tuple[str | None, int | None]:
    norm = normalize_level(value)
    if norm is None:
        return None, None
    if isinstance(value, str):
        code = _WORD_CODE.get(value.strip().strip("[]<>:").lower())
        if code is not None:
            return norm, code
    elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 7:
        return norm, value
    return norm, _CODE[norm]


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
_INFO: dict[str, tuple[str | None, int | None]] = {}
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
