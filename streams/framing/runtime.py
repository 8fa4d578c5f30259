"""Container runtime log lines: docker json-file and CRI (containerd, CRI-O) decoding, and the
reassembly of lines the runtime split (CRI ``P`` partials, docker 16 KiB chunks).

Shared by the node agent (which reads the files) and the pipeline (which may receive lines
still in runtime framing). Decoding never raises: what cannot be parsed comes out as the raw
text with a flag, so nothing is dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import orjson

from streams.transport.records import (
    FLAG_INVALID_UTF8,
    FLAG_RUNTIME_PARSE_ERROR,
    FLAG_TRUNCATED,
    decode_text,
)

Format = Literal["docker", "cri", "plain"]

# A line whose runtime chunks never got their final piece (the container died mid-line,
# or docker's last line had no newline) and was emitted by ``flush``/``expire``.
FLAG_INCOMPLETE = "incomplete"

DEFAULT_MAX_LINE_BYTES = 1024 * 1024
TRUNCATION_MARKER = "…[truncated by logriver]"

_CRI_RE = re.compile(rb"^\d{4}-\d\d-\d\dT\S+ (?:stdout|stderr) [PF](?::\S*)?(?: |$)")
_CRI_STREAMS = {b"stdout": "stdout", b"stderr": "stderr"}
# The runtime's timestamp was not an RFC 3339 time (year 1-9999, valid date, offset within a
# day): dropped, so the event falls back to its own or the observed time instead of sending
# Elasticsearch a @timestamp it rejects.
FLAG_RUNTIME_TIME_INVALID = "runtime_time_invalid"


def valid_time(value: str | None) -> str | None:
    """``value`` when it is an RFC 3339 timestamp Elasticsearch accepts, else None."""
    if value is None or not 20 <= len(value) <= 40:
        return None
    # The runtime's own form, ``YYYY-MM-DDTHH:MM:SS[.1-9 digits]Z``, with a date and time
    # already found valid (one second holds many lines): no datetime parsing per line.
    if value[-1] == "Z" and value[:19] in _VALID_SECONDS and (
            len(value) == 20 or (value[19] == "." and len(value) <= 30
                                 and value[20:-1].isdigit() and value.isascii())):
        return value
    checked = _valid_time(value)
    if checked is not None and _SECOND.fullmatch(value, 0, 19):
        if len(_VALID_SECONDS) >= 4096:
            _VALID_SECONDS.clear()
        _VALID_SECONDS.add(value[:19])
    return checked


_SECOND = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")
_VALID_SECONDS: set[str] = set()  # ``YYYY-MM-DDTHH:MM:SS`` that parsed as a valid time


def _valid_time(value: str) -> str | None:
    if value[4:5] != "-" or value[7:8] != "-" or value[10:11] not in ("T", "t"):
        return None
    if value[19:20] == ".":  # at most nanoseconds
        frac = value[20:]
        if len(frac) - len(frac.lstrip("0123456789")) > 9:
            return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return None
    return value if parsed.tzinfo is not None else None


@dataclass(slots=True)
class Decoded:
    """One runtime line, framing removed.

    ``raw`` holds the exact message bytes when the format carries bytes (CRI, plain), so that
    a multi-byte character split across partial chunks is rejoined intact; it is None for
    docker, whose JSON already carries text.
    """

    message: str
    stream: str | None = None
    time: str | None = None
    partial: bool = False
    flags: list[str] = field(default_factory=list)
    raw: bytes | None = None


@dataclass(slots=True)
class Line:
    """A whole log line (or, after multiline merge, a whole event).

    ``offset`` is the position of its first chunk, so its id stays stable whatever the
    chunking; ``size`` the bytes it had before any truncation; ``lines`` how many lines were
    merged; ``rule`` the multiline rule that merged them.
    """

    message: str
    offset: int
    stream: str | None = None
    time: str | None = None
    flags: list[str] = field(default_factory=list)
    size: int = 0
    lines: int = 1
    rule: str | None = None


def _strip_newline(data: bytes) -> bytes:
    return data[:-1] if data.endswith(b"\n") else data


def detect(line: bytes) -> Format:
    """Which runtime framing a line has."""
    if line.startswith(b'{"log":') or (line.startswith(b"{") and b'"log":' in line[:4096]):
        return "docker"
    if _CRI_RE.match(line):
        return "cri"
    return "plain"


def decode_plain(line: bytes) -> Decoded:
    data = _strip_newline(line)
    text, ok = decode_text(data)
    return Decoded(text, flags=[] if ok else [FLAG_INVALID_UTF8], raw=data)


def _parse_error(line: bytes) -> Decoded:
    d = decode_plain(line)
    d.flags.append(FLAG_RUNTIME_PARSE_ERROR)
    return d


def decode_docker(line: bytes) -> Decoded:
    """A docker json-file line: ``{"log":"...\\n","stream":"stderr","time":"..."}``.

    A ``log`` without its trailing newline is a chunk of a longer line (docker splits at
    16 KiB), so ``partial`` is set.
    """
    flags: list[str] = []
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        text, ok = decode_text(line)
        if ok:
            return _parse_error(line)
        try:  # valid JSON apart from its invalid UTF-8
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            return _parse_error(line)
        flags.append(FLAG_INVALID_UTF8)
    if not isinstance(obj, dict) or not isinstance(obj.get("log"), str):
        return _parse_error(line)
    log: str = obj["log"]
    last = obj.get("partial_last")
    if last is not None or "partial_message" in obj:
        # Partial metadata, as Docker's fluentd and journald drivers mark a line split at
        # 16 KiB, kept in the file by whatever wrote it: it decides, not the newline.
        partial = not _true(last) if last is not None else _true(obj["partial_message"])
        if log.endswith("\n"):
            log = log[:-1]
            partial = False if last is None else partial
    else:
        partial = not log.endswith("\n")
        if not partial:
            log = log[:-1]
    stream = obj.get("stream")
    time = obj.get("time")
    if time is not None and (not isinstance(time, str) or valid_time(time) is None):
        time = None
        flags.append(FLAG_RUNTIME_TIME_INVALID)
    return Decoded(
        log,
        stream if isinstance(stream, str) else None,
        time,
        partial,
        flags,
    )


def _true(value: object) -> bool:
    return value is True or value == "true"


def decode_cri(line: bytes) -> Decoded:
    """A CRI line: ``<RFC 3339 time> <stdout|stderr> <P|F>[:tags] <message>``."""
    data = _strip_newline(line)
    parts = data.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in _CRI_STREAMS or not parts[0][:1].isdigit():
        return _parse_error(line)
    tag = parts[2].split(b":", 1)[0]
    if tag not in (b"P", b"F"):
        return _parse_error(line)
    raw = parts[3] if len(parts) == 4 else b""
    text, ok = decode_text(raw)
    flags = [] if ok else [FLAG_INVALID_UTF8]
    time: str | None = decode_text(parts[0])[0]
    if valid_time(time) is None:
        time = None
        flags.append(FLAG_RUNTIME_TIME_INVALID)
    return Decoded(text, _CRI_STREAMS[parts[1]], time, tag == b"P", flags, raw)


_DECODERS = {"docker": decode_docker, "cri": decode_cri, "plain": decode_plain}


def decode_line(line: bytes, fmt: Format | None = None) -> Decoded:
    """Decode one line in the given format, detecting it when not given. Never raises."""
    return _DECODERS[fmt or detect(line)](line)


def cut_utf8(data: bytes, limit: int) -> bytes:
    """The first ``limit`` bytes of ``data``, shortened so no UTF-8 character is split."""
    return data if len(data) <= limit else _trim_tail(data[:limit])


def _truncate(data: bytes, limit: int) -> str:
    return decode_text(cut_utf8(data, limit))[0] + TRUNCATION_MARKER


@dataclass(slots=True)
class _Pending:
    offset: int
    stream: str | None
    time: str | None
    flags: list[str]
    last: float
    parts: list[bytes] = field(default_factory=list)
    kept: int = 0
    size: int = 0
    cut: bool = False


class PartialAssembler:
    """Joins runtime chunks (CRI ``P`` partials, docker 16 KiB pieces) into whole lines.

    State is kept per ``(key, stream)``: stdout and stderr of one file interleave. At most
    ``max_line_bytes`` of a line are kept; beyond that the line is cut at a character
    boundary, a marker appended, the ``truncated`` flag set, and the rest of that line
    discarded as it arrives, so memory stays bounded whatever the line length. Callers
    checkpoint no further than ``pending_offset``: held chunks are not yet emitted.
    """

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be positive")
        self.max_line_bytes = max_line_bytes
        self._pending: dict[tuple[Hashable, str | None], _Pending] = {}

    def feed(self, key: Hashable, decoded: Decoded, offset: int, now: float = 0.0) -> Line | None:
        """Add one decoded chunk read at ``offset``; returns the line it completes, if any."""
        k = (key, decoded.stream)
        pend = self._pending.get(k)
        if pend is None and not decoded.partial:
            return self._whole(decoded, offset)
        data = (
            decoded.raw
            if decoded.raw is not None
            else decoded.message.encode("utf-8", "surrogatepass")
        )
        if pend is None:
            pend = self._pending[k] = _Pending(offset, decoded.stream, decoded.time, [], now)
        pend.last = now
        for f in decoded.flags:
            # A chunk's bytes may end mid-character: validity is judged on the joined bytes.
            if f not in pend.flags and not (f == FLAG_INVALID_UTF8 and decoded.raw is not None):
                pend.flags.append(f)
        pend.size += len(data)
        if not pend.cut:
            room = self.max_line_bytes - pend.kept
            if len(data) > room:
                data = data[:room]
                pend.cut = True
            pend.parts.append(data)
            pend.kept += len(data)
        if decoded.partial:
            return None
        del self._pending[k]
        return self._finish(pend)

    def _whole(self, decoded: Decoded, offset: int) -> Line:
        msg = decoded.message
        flags = list(decoded.flags)
        data = decoded.raw
        if data is None and not msg.isascii():
            data = msg.encode("utf-8", "surrogatepass")
        size = len(msg) if data is None else len(data)
        if size > self.max_line_bytes:
            msg = _truncate(msg.encode() if data is None else data, self.max_line_bytes)
            flags.append(FLAG_TRUNCATED)
        return Line(msg, offset, decoded.stream, decoded.time, flags, size)

    def _finish(self, pend: _Pending, incomplete: bool = False) -> Line:
        data = b"".join(pend.parts)
        flags = pend.flags
        if pend.cut:
            data = _trim_tail(data)
        text, ok = decode_text(data)
        if not ok and FLAG_INVALID_UTF8 not in flags:
            flags.append(FLAG_INVALID_UTF8)
        if pend.cut:
            text += TRUNCATION_MARKER
            flags.append(FLAG_TRUNCATED)
        if incomplete:
            flags.append(FLAG_INCOMPLETE)
        return Line(text, pend.offset, pend.stream, pend.time, flags, pend.size)

    def pending_offset(self, key: Hashable) -> int | None:
        """Offset of the earliest chunk held for ``key`` (any stream), or None."""
        offsets = [p.offset for (k, _), p in self._pending.items() if k == key]
        return min(offsets) if offsets else None

    @property
    def buffered_bytes(self) -> int:
        return sum(p.kept for p in self._pending.values())

    def flush(self, key: Hashable) -> list[Line]:
        """Emit what is held for ``key`` as incomplete lines (e.g. when its file is released)."""
        keys = sorted(
            (k for k in self._pending if k[0] == key), key=lambda k: self._pending[k].offset
        )
        return [self._finish(self._pending.pop(k), incomplete=True) for k in keys]

    def expire(self, now: float, timeout: float) -> list[tuple[Hashable, Line]]:
        """Emit lines whose last chunk came ``timeout`` or more before ``now``."""
        old = [k for k, p in self._pending.items() if now - p.last >= timeout]
        return [(k[0], self._finish(self._pending.pop(k), incomplete=True)) for k in old]


def _trim_tail(data: bytes) -> bytes:
    """``data`` without a multi-byte character its last bytes start but do not finish."""
    for back in range(1, min(4, len(data)) + 1):
        b = data[-back]
        if b & 0xC0 != 0x80:
            need = (
                2 if b & 0xE0 == 0xC0 else 3 if b & 0xF0 == 0xE0 else 4 if b & 0xF8 == 0xF0 else 1
            )
            return data[:-back] if need > back else data
    return data
