"""Lines dockerd cut in pieces, joined again.

dockerd's log copier reads a container's output in 16 KiB buffers: a longer line reaches the log
driver as several messages, the "partials" (all stamped with the first piece's time). Drivers
that say so carry the piece's place: fluentd (``partial_message``, ``partial_id``,
``partial_ordinal``, ``partial_last``) and journald (``CONTAINER_PARTIAL_ID``,
``..._ORDINAL``, ``..._LAST``). A line of exactly 16,384 bytes ends with an empty last piece: it
completes the line and adds no record. GELF carries no marker: a GELF message of exactly 16,384
bytes from a container is taken as a piece when the next message of that container has the same
timestamp (see ``GelfReceiver``). Syslog carries neither: its pieces stay separate records.

Pieces are held per stream (the record's Kafka key and its stdout/stderr ``stream``: dockerd
copies each stream on its own, so a stderr line may come between a stdout line's pieces)
until the last one arrives; then one record carries the whole line, with the first piece's
id, time and fields. What is held is bounded:
a line over ``max_bytes`` is cut and flagged ``truncated``; a line whose next piece does not
come within ``timeout`` seconds, or whose stream starts another line, is published as far as
it got, flagged ``partial_incomplete`` (counted); at shutdown everything held is published
the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from streams.transport.records import FLAG_TRUNCATED, Record, add_flag

FLAG_PARTIAL_INCOMPLETE = "partial_incomplete"
DOCKER_PIECE_BYTES = 16 * 1024  # dockerd's copier buffer: the size of every piece but the last


@dataclass(slots=True)
class _Line:
    partial_id: str
    key: bytes
    first: Record
    started: float
    pieces: list[tuple[int, str]] = field(default_factory=list)
    size: int = 0
    cut: bool = False


class Partials:
    """Joins pieces by stream (see the module doc). ``count(reason)`` hears what is dropped."""

    def __init__(self, count: Callable[[str], None], max_bytes: int, timeout: float = 5.0,
                 max_lines: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.count = count
        # A line whose next piece never came is complete (GELF: a line of exactly 16 KiB,
        # whose empty last piece the driver does not send) rather than flagged.
        self.expire_complete = False
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.max_lines = max_lines
        self.clock = clock
        self._open: dict[tuple[bytes, str | None], _Line] = {}

    def __len__(self) -> int:
        return len(self._open)

    def held(self, key: bytes, stream: str | None = None) -> Record | None:
        """The first piece of the line held for ``key`` and ``stream``, if any."""
        line = self._open.get((key, stream))
        return line.first if line is not None else None

    def add(self, key: bytes, partial_id: str, ordinal: int, last: bool,
            record: Record) -> list[tuple[bytes, Record]]:
        """One piece; returns the records complete now (the joined line when ``last``, and a
        line of the same stream it interrupted, incomplete)."""
        out: list[tuple[bytes, Record]] = []
        slot = (key, record.get("stream"))
        line = self._open.get(slot)
        if line is not None and line.partial_id != partial_id:
            out.append(self._finish(self._open.pop(slot), complete=False))
            line = None
        if line is None:
            if len(self._open) >= self.max_lines:  # the oldest goes out as it is
                oldest = next(iter(self._open))
                out.append(self._finish(self._open.pop(oldest), complete=False))
            line = self._open[slot] = _Line(partial_id, key, record, self.clock())
        text = record.get("message") or ""
        room = self.max_bytes - line.size
        if len(text) > room:
            text, line.cut = text[: max(room, 0)], True
        line.pieces.append((ordinal, text))
        line.size += len(text)
        if last:
            out.append(self._finish(self._open.pop(slot), complete=True))
        return out

    def _finish(self, line: _Line, complete: bool) -> tuple[bytes, Record]:
        record = line.first
        line.pieces.sort(key=lambda p: p[0])
        record["message"] = "".join(text for _, text in line.pieces)
        if line.cut:
            self.count("message_truncated")
            add_flag(record, FLAG_TRUNCATED)
        if not complete:
            self.count(FLAG_PARTIAL_INCOMPLETE)
            add_flag(record, FLAG_PARTIAL_INCOMPLETE)
        return line.key, record

    def close(self, key: bytes, stream: str | None,
              complete: bool) -> list[tuple[bytes, Record]]:
        """The line held for ``key`` and ``stream`` ends here (nothing when none is held)."""
        line = self._open.pop((key, stream), None)
        return [] if line is None else [self._finish(line, complete)]

    def expire(self, now: float | None = None) -> list[tuple[bytes, Record]]:
        """Lines whose next piece is overdue, published as far as they got."""
        now = self.clock() if now is None else now
        late = [k for k, line in self._open.items() if now - line.started >= self.timeout]
        return [self._finish(self._open.pop(k), self.expire_complete) for k in late]

    def flush(self) -> list[tuple[bytes, Record]]:
        """Everything held (shutdown)."""
        keys = list(self._open)
        return [self._finish(self._open.pop(k), complete=False) for k in keys]
