"""Stream framing for TCP receivers: delimiter framing (newline, NUL) and RFC 6587 octet
counting, with bounded memory: a frame over the limit keeps its first ``max_bytes`` (reported
as truncated) and the rest is discarded as it arrives."""

from __future__ import annotations

import re

_OCTET_RE = re.compile(rb"([1-9]\d{0,9}) ")


class Framer:
    """Incremental framer. ``feed`` returns ``(frame, truncated)`` pairs; empty frames
    (consecutive delimiters) are skipped. With ``octet_counting``, a frame starting with a
    digit run and a space is ``LEN SP MSG`` (RFC 6587 3.4.1); others end at a delimiter."""

    def __init__(self, delimiters: bytes, max_bytes: int, octet_counting: bool = False) -> None:
        self._delims = re.compile(b"[" + re.escape(delimiters) + b"]")
        self._delim_set = set(delimiters)
        self.max_bytes = max_bytes
        self.octet_counting = octet_counting
        self._buf = bytearray()
        self._discard_until_delim = False
        self._discard_bytes = 0

    def feed(self, data: bytes) -> list[tuple[bytes, bool]]:
        out: list[tuple[bytes, bool]] = []
        buf = self._buf
        buf += data
        pos = 0
        while pos < len(buf):
            if self._discard_bytes:
                n = min(self._discard_bytes, len(buf) - pos)
                self._discard_bytes -= n
                pos += n
                continue
            if self._discard_until_delim:
                m = self._delims.search(buf, pos)
                if m is None:
                    pos = len(buf)
                    break
                self._discard_until_delim = False
                pos = m.end()
                continue
            if buf[pos] in self._delim_set:
                pos += 1
                continue
            if self.octet_counting and 0x31 <= buf[pos] <= 0x39:
                m = _OCTET_RE.match(buf, pos)
                if m is not None:
                    length = int(m.group(1))
                    start = m.end()
                    if length > self.max_bytes:
                        if len(buf) - start < self.max_bytes:
                            break
                        out.append((bytes(buf[start : start + self.max_bytes]), True))
                        self._discard_bytes = length - self.max_bytes
                        pos = start + self.max_bytes
                        continue
                    if len(buf) - start < length:
                        break
                    out.append((bytes(buf[start : start + length]), False))
                    pos = start + length
                    continue
                if len(buf) - pos < 11 and not self._delims.search(buf, pos):
                    break  # the length may still be arriving
            m = self._delims.search(buf, pos)
            if m is None:
                if len(buf) - pos > self.max_bytes:
                    out.append((bytes(buf[pos : pos + self.max_bytes]), True))
                    self._discard_until_delim = True
                    pos = len(buf)
                break
            frame = bytes(buf[pos : m.start()])
            if len(frame) > self.max_bytes:
                out.append((frame[: self.max_bytes], True))
            else:
                out.append((frame, False))
            pos = m.end()
        del buf[:pos]
        return out

    def finish(self) -> list[tuple[bytes, bool]]:
        """Frames left at end of input (an unterminated last frame counts as whole)."""
        rest = bytes(self._buf)
        self._buf.clear()
        if not rest or self._discard_bytes or self._discard_until_delim:
            return []
        if self.octet_counting:
            m = _OCTET_RE.match(rest)
            if m is not None:  # an octet-counted frame cut short by EOF
                return [(rest[m.end() :], True)]
        return [(rest[: self.max_bytes], len(rest) > self.max_bytes)]

    @property
    def buffered(self) -> int:
        return len(self._buf)
