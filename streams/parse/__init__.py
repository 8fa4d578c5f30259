"""Format detection and normalization of one log line into a :class:`Parsed`.

Without a header pattern, each line is classified by cheap prefix checks before any regex,
in order of likelihood: JSON, logfmt/logrus, klog, access logs, error logs, syslog, the
default layouts of Python logging, logback/log4j/Spring Boot and zap, else plain text.
With a header pattern (dissect, regex with named groups, or grok), its ``message`` capture is
the message and the other captures become fields (``captures.py``); a line the pattern does not match is
auto-detected and flagged ``header_mismatch``.

Owns line formats -> fields; pure functions, imports nothing from the other stages.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from .captures import from_captures
from .dissect import Dissect
from .grok import Grok
from .layouts import (
    parse_access,
    parse_apache_error,
    parse_klog,
    parse_python_basic,
    parse_syslog,
    parse_text,
)
from .levels import normalize_level
from .model import FORMATS, Parsed
from .structured import parse_colon_kv, parse_json, parse_logfmt

__all__ = ["FORMATS", "Grok", "Parsed", "Parser", "from_captures", "normalize_level", "parse_message"]


class Parser:
    """Parses lines; one instance per pipeline (holds the compiled header pattern)."""

    __slots__ = ("_dissect", "_grok", "_regex", "max_attributes", "max_json_depth")

    def __init__(self, *, dissect: str | None = None, regex: str | None = None,
                 grok: str | list[str] | Grok | None = None,
                 max_json_depth: int = 8, max_attributes: int = 128) -> None:
        if sum(p is not None and p != "" for p in (dissect, regex, grok)) > 1:
            raise ValueError("give one header pattern: dissect, regex or grok")
        self._dissect = Dissect(dissect) if dissect else None
        self._regex = re.compile(regex, re.DOTALL) if regex else None
        if self._regex is not None and not self._regex.groupindex:
            raise ValueError("the header regex needs named groups, e.g. (?P<message>.*)")
        self._grok = grok if isinstance(grok, Grok) or not grok else Grok(grok)
        self.max_json_depth = max_json_depth
        self.max_attributes = max_attributes

    def parse(self, message: str, *, reference_time: datetime | None = None) -> Parsed:
        """Parse one line (never raises). ``reference_time`` (default now) bounds timestamps
        and supplies the year to layouts without one."""
        invalid_utf8 = False
        if not isinstance(message, str):
            if isinstance(message, bytes | bytearray):
                try:
                    message = bytes(message).decode("utf-8")
                except UnicodeDecodeError:
                    message = bytes(message).decode("utf-8", "replace")
                    invalid_utf8 = True
            else:
                message = "" if message is None else str(message)
        ref = reference_time or datetime.now(UTC)
        if ref.tzinfo is None:
            ref = ref.replace(tzinfo=UTC)
        line = message.rstrip("\r\n")
        try:
            if self._dissect is None and self._regex is None and self._grok is None:
                parsed = self._auto(line, ref)
            else:
                parsed = self._parse(line, ref)
        except Exception:  # noqa: BLE001 - a parser bug must not stop the stream
            parsed = Parsed("text", line, errors=["parse_exception"])
        if invalid_utf8:
            parsed.errors.insert(0, "invalid_utf8")
        return parsed

    def captures(self, line: str) -> tuple[dict[str, Any] | None, str]:
        """The header pattern's captures of ``line`` (None: no match) and the format name."""
        if self._dissect is not None:
            return self._dissect.match(line), "dissect"
        if self._grok is not None:
            return self._grok.match(line), "grok"
        m = self._regex.match(line)  # type: ignore[union-attr]
        return (None if m is None else {k: v for k, v in m.groupdict().items() if v is not None}), "regex"

    def _parse(self, line: str, ref: datetime) -> Parsed:
        kv, fmt = self.captures(line)
        if kv is not None:
            return from_captures(kv, fmt, line, ref, self.max_attributes)
        parsed = self._auto(line, ref)
        parsed.errors.append("header_mismatch")
        return parsed

    def _auto(self, line: str, ref: datetime) -> Parsed:
        if not line:
            return Parsed("text", line, errors=["empty"])
        c = line[0]
        if c == " " or c == "\t":
            # Leading whitespace: a structured line indented (a stack frame stays text as written).
            stripped = line.lstrip(" \t")
            if not stripped:
                return parse_text(line, ref)
            parsed = self._auto(stripped, ref)
            return parse_text(line, ref) if parsed.format == "text" else parsed
        if c == "{":
            parsed = parse_json(line, ref, self.max_json_depth, self.max_attributes)
            if parsed is not None:
                return parsed
            text = parse_text(line, ref)
            text.errors.append("json_invalid")
            return text
        if c == "<":
            return parse_syslog(line, ref) or parse_text(line, ref)
        if c == "[":
            return parse_apache_error(line, ref) or parse_text(line, ref)
        if c in "IWEF" and line[1:5].isdigit():
            parsed = parse_klog(line, ref)
            if parsed is not None:
                return parsed
        # (``find`` with bounds: the first 256 characters, without copying them.)
        if c.isalpha() or c in '_@"':
            sp = line.find(" ", 0, 256)
            eq = line.find("=", 0, 256)
            if 0 < eq and (sp < 0 or eq < sp or c == '"'):
                parsed = parse_logfmt(line, ref, self.max_attributes)
                if parsed is not None:
                    return parsed
            colon = line.find(":", 0, 256)
            if 0 < colon and (sp < 0 or colon < sp) and (eq < 0 or colon < eq) \
                    and line[colon + 1:colon + 2] not in (" ", ""):
                comma = line.find(",", colon, 1024)
                if comma < 0:
                    comma = line.find(";", colon, 1024)
                parsed = parse_colon_kv(line, ref, self.max_attributes,
                                        comma > colon and (sp < 0 or comma < sp or line[colon + 1] == '"'))
                if parsed is not None:
                    return parsed
        if line.find('] "', 0, 1200) >= 0:
            parsed = parse_access(line, ref)
            if parsed is not None:
                return parsed
        if c.isalpha():
            if c.isupper() and line.find(":", 0, 256) >= 0:
                parsed = parse_python_basic(line)
                if parsed is not None:
                    return parsed
            parsed = parse_syslog(line, ref)
            if parsed is not None:
                return parsed
        return parse_text(line, ref)


_DEFAULT = Parser()


def parse_message(message: str, *, reference_time: datetime | None = None) -> Parsed:
    """Parse with the default (auto-detecting) parser."""
    return _DEFAULT.parse(message, reference_time=reference_time)

