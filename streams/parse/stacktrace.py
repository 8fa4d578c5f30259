"""Java, Python and Go stack traces inside a (multiline) message -> error.type / stack_trace."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .model import put

if TYPE_CHECKING:
    from .model import Parsed

# "java.lang.IllegalStateException: boom" / "Caused by: x.y.FooError" at the start of a line.
_JAVA_EXC = re.compile(r"(?:Caused by: )?((?:[A-Za-z_$][\w$]{0,100}\.){1,20}[A-Za-z_$][\w$]{0,100}"
                       r"(?:Exception|Error|Throwable))(?::\s?(.{0,2000}))?$")
# Python's last traceback line: "ValueError: bad" or "pkg.mod.Error: bad".
_PY_EXC = re.compile(r"([A-Za-z_][\w.]{0,200})(?::\s?(.{0,2000}))?$")
_MAX_TRACE = 32768
# A Java frame line, whatever its indentation (tabs, 2, 4, 8 spaces...).
_JAVA_FRAME = re.compile(r"\n[ \t]{1,32}at [\w$.<>/-]{1,512}\(")


def _set(parsed: Parsed, etype: str | None, emsg: str | None, trace: str) -> None:
    fields = parsed.fields
    if etype:
        put(fields, ("error", "type"), etype)
    if emsg and not (isinstance(fields.get("error"), dict) and fields["error"].get("message")):
        put(fields, ("error", "message"), emsg.strip())
    put(fields, ("error", "stack_trace"), trace[:_MAX_TRACE])


def attach_stack_trace(parsed: Parsed) -> None:
    """Detect a stack trace in ``parsed.message`` (or in error.stack_trace) and fill error.*."""
    err = parsed.fields.get("error")
    text = parsed.message
    if isinstance(err, dict) and isinstance(err.get("stack_trace"), str):
        text = err["stack_trace"]
    if "\n" not in text:
        return
    lines = text[:_MAX_TRACE].split("\n")
    if "Traceback (most recent call last):" in text:
        start = next(i for i, ln in enumerate(lines) if ln.startswith("Traceback (most"))
        for ln in reversed(lines[start + 1:]):
            if ln and not ln[0].isspace():
                m = _PY_EXC.match(ln.strip())
                if m:
                    _set(parsed, m[1], m[2], "\n".join(lines[start:]))
                    return
        _set(parsed, None, None, "\n".join(lines[start:]))
        return
    if _JAVA_FRAME.search(text):
        for i, ln in enumerate(lines):
            m = _JAVA_EXC.match(ln.strip())
            if m and i + 1 < len(lines) and lines[i + 1].lstrip().startswith(("at ", "...")):
                _set(parsed, m[1], m[2], "\n".join(lines[i:]))
                return
        for i, ln in enumerate(lines):
            if ln.lstrip().startswith("at "):
                head = lines[i - 1].strip() if i else ""
                m = _JAVA_EXC.match(head) if head else None
                _set(parsed, m[1] if m else None, m[2] if m else None, "\n".join(lines[max(i - 1, 0):]))
                return
    for i, ln in enumerate(lines):
        if ln.startswith("goroutine ") and ln.rstrip().endswith("]:"):
            start = i
            emsg = None
            if i and lines[i - 1].startswith("panic: "):
                start, emsg = i - 1, lines[i - 1][7:]
            elif i > 1 and lines[i - 2].startswith("panic: ") and not lines[i - 1].strip():
                start, emsg = i - 2, lines[i - 2][7:]
            _set(parsed, "panic" if emsg is not None else None, emsg, "\n".join(lines[start:]))
            return
