"""The result of parsing one line, and helpers to build its nested ECS-style fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

FORMATS = (
    "json", "logfmt", "klog", "nginx_access", "apache_access", "apache_error", "nginx_error",
    "syslog", "python", "logback", "zap", "logrus", "dissect", "regex", "grok", "text",
)


@dataclass(slots=True)
class Parsed:
    """One parsed line. ``fields`` are nested ECS-style; ``attributes`` holds the rest, flat.

    ``level`` is the level as the line wrote it (``W``, ``notice``, ``WARNING``); ``severity``
    the normalized one when the format gives it without a level text (an access log's status)
    or more precisely than the text (a syslog priority); else the pipeline derives it."""

    format: str
    message: str
    timestamp: datetime | None = None
    level: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    severity: str | None = None


def put(fields: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set ``fields[path[0]][path[1]]... = value``, creating dicts; never overwrites a scalar."""
    node = fields
    for key in path[:-1]:
        nxt = node.get(key)
        if not isinstance(nxt, dict):
            if nxt is not None:
                return
            nxt = node[key] = {}
        node = nxt
    node[path[-1]] = value


def to_int(text: str | None) -> int | None:
    """``int(text)`` for a plain decimal of reasonable size, else None."""
    if text and len(text) <= 19 and text.isdigit():
        return int(text)
    return None
