"""Extraction steps: grok, dissect, regex and key/value over a field of the event (the message
by default), for lines the automatic detection does not know, or for a second pass over what it
left in ``message``.

    from streams.steps.extract import grok, key_value
    Pipeline(..., steps=[grok(["%{HTTPD_ERRORLOG}", "%{SYSLOGLINE}"]),
                         key_value(field_split=",", value_split=":")])

A match merges its fields into the event the way a header pattern does
(``streams.parse.captures``): dotted and grok ``[a][b]`` names become nested ECS fields,
``message`` replaces the message, ``level``/``log.level`` set ``log.level`` (as written) with
``log.severity`` and ``event.severity`` beside it, and a named time capture (``timestamp``,
``@timestamp``, ``date`` + ``time``...) sets ``@timestamp``. No match leaves the event as it is
and flags it ``<step id>_no_match`` (Logstash's ``_grokparsefailure``). Patterns are compiled
once, when the pipeline module is loaded. Templates are mined before the steps run, on the
message the detection gave.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.parse import Grok, from_captures
from streams.parse.dissect import Dissect
from streams.parse.levels import level_info, severity_code
from streams.parse.structured import scan_kv
from streams.pipeline import Event, Step, format_time, merge_fields

Matcher = Callable[[str], "dict[str, Any] | None"]


def grok(patterns: str | Iterable[str], *, field: str = "message", id: str = "grok",
         pattern_set: str = "ecs-v1", patterns_dir: str | Path | None = None,
         pattern_definitions: Mapping[str, str] | None = None) -> Step:
    """Grok over ``field`` with Logstash's pattern library (``ecs-v1`` or ``legacy``)."""
    g = Grok(patterns, pattern_set=pattern_set, patterns_dir=patterns_dir,
             pattern_definitions=pattern_definitions)
    return extraction_step(id, field, g.match, "grok")


def dissect(pattern: str, *, field: str = "message", id: str = "dissect") -> Step:
    """A dissect pattern (``%{a} %{b->} [%{level}] %{message}``) over ``field``."""
    return extraction_step(id, field, Dissect(pattern).match, "dissect")


def regex(pattern: str, *, field: str = "message", id: str = "regex") -> Step:
    """A regular expression with named groups, searched in ``field``."""
    rx = re.compile(pattern, re.DOTALL)
    if not rx.groupindex:
        raise ValueError("the regex needs named groups, e.g. (?P<user>\\w+)")

    def match(text: str) -> dict[str, Any] | None:
        m = rx.search(text)
        return None if m is None else {k: v for k, v in m.groupdict().items() if v is not None}

    return extraction_step(id, field, match, "regex")


def key_value(*, field: str = "message", field_split: str = " ", value_split: str = "=",
              standalone: bool = True, prefix: str = "attributes.", id: str = "kv") -> Step:
    """``key<value_split>value`` pairs separated by ``field_split`` (quoted keys and values,
    ``\\"`` escapes; a bare key is ``True`` when ``standalone``), stored under ``prefix``
    (``attributes.`` by default; ``""`` maps known names the way a header pattern does)."""

    def match(text: str) -> dict[str, Any] | None:
        got = scan_kv(text, value_split, field_split, standalone=standalone)
        if got is None or not got[1]:
            return None
        return {f"{prefix}{k}": v for k, v in got[0].items()}

    return extraction_step(id, field, match, "kv")


def extraction_step(id: str, field: str, match: Matcher, fmt: str) -> Step:
    """A step applying ``match`` to ``field`` (a dotted path) and merging what it captured."""
    path = tuple(field.split("."))

    def apply(event: Event) -> Event:
        text = _get(event, path)
        if not isinstance(text, str):
            return event
        kv = match(text)
        if kv is None:
            event["logriver"].setdefault("flags", []).append(f"{id}_no_match")
            return event
        explicit_message = "message" in kv
        parsed = from_captures(kv, fmt, text, _reference(event))
        merge_fields(event, parsed.fields)
        if explicit_message:
            event["message"] = parsed.message
        if parsed.timestamp is not None:
            event["@timestamp"] = format_time(parsed.timestamp)
        if parsed.level is not None or parsed.severity is not None:
            _set_level(event, parsed.level, parsed.severity)
        if parsed.errors:
            event["logriver"].setdefault("errors", []).extend(f"{id}: {e}" for e in parsed.errors)
        return event

    return Step(id, apply)


def _get(event: Event, path: tuple[str, ...]) -> Any:
    node: Any = event
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _reference(event: Event) -> datetime:
    created = (event.get("event") or {}).get("created")
    if isinstance(created, str):
        try:
            return datetime.fromisoformat(created.replace("Z", "+00:00"))  # noqa: FURB162
        except ValueError:
            pass
    return datetime.now(UTC)


def _set_level(event: Event, level: str | None, severity: str | None) -> None:
    log = event.setdefault("log", {})
    code = None
    if level is not None:
        log["level"] = level
        normalized, code = level_info(level)
        severity = severity or normalized
    if severity:
        log["severity"] = severity
        event.setdefault("event", {})["severity"] = severity_code(severity) if code is None else code
