"""Grok: named regular-expression patterns in Logstash's syntax, with its pattern library.

``%{SYNTAX}`` matches pattern SYNTAX, ``%{SYNTAX:field}`` also captures it into ``field``
(``[source][address]`` and ``source.address`` name the same nested field), ``%{SYNTAX:field:int}``
(or ``:float``) converts the value. Oniguruma's ``(?<field>...)`` captures and POSIX classes
(``[[:alnum:]]``) are accepted. Patterns come from the vendored library (``grok_patterns/``,
Logstash's ``ecs-v1`` set by default or its ``legacy`` set; see the NOTICE there), from files in
``patterns_dir`` (``NAME regex`` lines, as Logstash reads them) and from ``pattern_definitions``.

A list of patterns is tried in order, the first match wins; matching searches the text as
Logstash does (anchor with ``^``/``$`` for speed). Empty captures are left out. Compiled once;
``match`` does one regex search and a loop over the named captures.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

LIBRARY = Path(__file__).with_name("grok_patterns")
PATTERN_SETS = ("ecs-v1", "legacy")

_REF = re.compile(r"%\{(\w+)(?::([^:}]+))?(?::(\w+))?\}")
_ONIG_NAMED = re.compile(r"\(\?<([A-Za-z_@\[][^>]{0,255})>")
_POSIX = {"alnum": "a-zA-Z0-9", "alpha": "a-zA-Z", "digit": "0-9", "upper": "A-Z",
          "lower": "a-z", "space": r"\s", "xdigit": "0-9A-Fa-f", "word": r"\w",
          "punct": r"!-/:-@\[-`{-~", "blank": r" \t", "cntrl": r"\x00-\x1f\x7f",
          "print": r"\x20-\x7e", "graph": r"\x21-\x7e"}
_TYPES = {"int": int, "integer": int, "float": float}
_MAX_DEPTH = 64


def read_definitions(text: str) -> dict[str, str]:
    """``NAME regex`` lines (``#`` comments and blank lines skipped)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, pattern = line.partition(" ")
        if pattern:
            out[name] = pattern.strip()
    return out


@cache
def library(pattern_set: str = "ecs-v1") -> Mapping[str, str]:
    """The vendored pattern library of one set (every file of its folder)."""
    if pattern_set not in PATTERN_SETS:
        raise ValueError(f"unknown grok pattern set {pattern_set!r}; known: {', '.join(PATTERN_SETS)}")
    out: dict[str, str] = {}
    for path in sorted((LIBRARY / pattern_set).iterdir()):
        out.update(read_definitions(path.read_text(encoding="utf-8")))
    return out


def field_name(spec: str) -> str:
    """``[source][address]`` -> ``source.address``; a plain name stays as it is."""
    spec = spec.strip().rstrip("?")
    if spec.startswith("["):
        return ".".join(p for p in re.split(r"\]\[|\[|\]", spec) if p)
    return spec


def _posix(regex: str) -> str:
    for name, chars in _POSIX.items():
        regex = regex.replace(f"[[[:{name}:]]", f"[{chars}").replace(f"[[:{name}:]]", f"[{chars}]")
        regex = regex.replace(f"[:{name}:]", chars)
    return regex


class Grok:
    """One or more compiled grok patterns; ``match(text)`` gives the captured fields or None."""

    __slots__ = ("_compiled", "patterns")

    def __init__(self, patterns: str | Iterable[str], *, pattern_set: str = "ecs-v1",
                 patterns_dir: str | Path | Iterable[str | Path] | None = None,
                 pattern_definitions: Mapping[str, str] | None = None) -> None:
        self.patterns = [patterns] if isinstance(patterns, str) else list(patterns)
        if not self.patterns:
            raise ValueError("grok needs at least one pattern")
        defs = dict(library(pattern_set))
        if patterns_dir is not None:
            dirs = [patterns_dir] if isinstance(patterns_dir, str | Path) else list(patterns_dir)
            for d in dirs:
                for path in sorted(Path(d).iterdir()):
                    if path.is_file():
                        defs.update(read_definitions(path.read_text(encoding="utf-8")))
        defs.update(pattern_definitions or {})
        self._compiled = [self._compile(p, defs) for p in self.patterns]

    @staticmethod
    def _compile(pattern: str, defs: Mapping[str, str]) -> tuple[re.Pattern[str], list[tuple[str, str, Any]]]:
        captures: list[tuple[str, str, Any]] = []  # (group name, field, converter)

        def capture(field: str, conv: Any) -> str:
            group = f"_g{len(captures)}"
            captures.append((group, field_name(field), conv))
            return group

        def expand(text: str, depth: int) -> str:
            if depth > _MAX_DEPTH:
                raise ValueError("grok patterns nest too deep (a cycle?)")

            def onig(m: re.Match[str]) -> str:
                return f"(?P<{capture(m[1], None)}>"

            text = _ONIG_NAMED.sub(onig, _posix(text))

            def ref(m: re.Match[str]) -> str:
                name, field, typ = m[1], m[2], m[3]
                if name not in defs:
                    raise ValueError(f"unknown grok pattern %{{{name}}}")
                body = expand(defs[name], depth + 1)
                if not field:
                    return f"(?:{body})"
                conv = _TYPES.get(typ or "")
                return f"(?P<{capture(field, conv)}>{body})"

            return _REF.sub(ref, text)

        regex = expand(pattern, 0)
        try:
            return re.compile(regex), captures
        except re.error as exc:
            raise ValueError(f"bad grok pattern {pattern!r}: {exc}") from None

    def match(self, text: str) -> dict[str, Any] | None:
        """The fields of the first pattern that matches ``text`` (None when none does)."""
        for rx, captures in self._compiled:
            m = rx.search(text)
            if m is None:
                continue
            out: dict[str, Any] = {}
            for group, field, conv in captures:
                value = m.group(group)
                if not value or field in out:
                    continue
                if conv is not None:
                    try:
                        value = conv(value)
                    except ValueError:
                        pass
                out[field] = value
            return out
        return None
