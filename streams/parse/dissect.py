"""Dissect patterns (Elastic/Logstash syntax), matched by linear ``str.find`` scans.

Supported: ``%{field}``, ``%{?skip}`` and ``%{}`` (skipped), ``%{field->}`` (skip repeats of the
following delimiter, for padding), ``%{+field}`` (append to an earlier field, joined by a space).
Each field ends at the first occurrence of the literal that follows it; the last field takes
the rest of the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FIELD = re.compile(r"%\{([^}]{0,256})\}")


@dataclass(slots=True, frozen=True)
class _Field:
    name: str | None  # None: skipped
    append: bool
    pad: bool
    delimiter: str    # the literal after this field ("" only for the last one)


class Dissect:
    """A compiled dissect pattern; ``match(line)`` returns the captured fields or None."""

    __slots__ = ("fields", "names", "prefix")

    def __init__(self, pattern: str) -> None:
        matches = list(_FIELD.finditer(pattern))
        if not matches:
            raise ValueError("dissect pattern has no %{field}")
        self.prefix = pattern[: matches[0].start()]
        fields: list[_Field] = []
        for i, m in enumerate(matches):
            spec = m[1]
            end = matches[i + 1].start() if i + 1 < len(matches) else len(pattern)
            delimiter = pattern[m.end():end]
            if not delimiter and i + 1 < len(matches):
                raise ValueError(f"dissect fields need a delimiter between them: {m[0]}")
            pad = spec.endswith("->")
            spec = spec[:-2] if pad else spec
            append = spec.startswith("+")
            if spec.startswith(("?", "+")):
                spec = spec[1:]
            if spec.startswith(("*", "&")):
                raise ValueError(f"dissect reference keys are not supported: {m[0]}")
            skip = not spec or m[1].startswith("?")
            fields.append(_Field(None if skip else spec, append, pad, delimiter))
        self.fields = tuple(fields)
        self.names = tuple(f.name for f in fields if f.name)

    def match(self, line: str) -> dict[str, str] | None:
        """Split ``line`` by the pattern; None when a literal is missing."""
        if not line.startswith(self.prefix):
            return None
        pos, n = len(self.prefix), len(line)
        out: dict[str, str] = {}
        last = len(self.fields) - 1
        for i, f in enumerate(self.fields):
            d = f.delimiter
            if i == last and not d:
                value, pos = line[pos:], n
            else:
                j = line.find(d, pos) if i < last else line.rfind(d, pos)
                if j < 0 or (i == last and j + len(d) != n):
                    return None
                value, pos = line[pos:j], j + len(d)
                if f.pad:
                    while line.startswith(d, pos):
                        pos += len(d)
            if f.name is None:
                continue
            if f.append and f.name in out:
                out[f.name] = f"{out[f.name]} {value}"
            else:
                out[f.name] = value
        return out
