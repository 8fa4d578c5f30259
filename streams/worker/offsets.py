"""Which offsets of a partition a worker may commit: the ledger behind ``GuardedConsumer``.

An offset is committable only when every offset from the last commit up to it is *done*:
processed by an agent (indexed, published or dead-lettered, and acknowledged) or proven
absent from the log (a real hole: transaction markers, compaction, retention). Faust's own
bookkeeping counts neither: it marks messages acked that were never processed and records
"gaps" that are not holes (see ``streams/worker/consumer.py``).

A hole is proven by the fetch chain: after a seek to ``X`` the first record the fetcher returns
is the first one the log holds at or after ``X``, and within one chain (no seek in between)
consecutive records have nothing between them. So while the chain is unbroken, the offsets
between the chain's position and the next fetched record are holes. A record fetched but not
delivered to the agents (dropped during a rebalance, or the delivery abandoned) breaks the
chain: the partition delivers nothing more until it was fetched again from that record.

Pure bookkeeping, no Faust and no I/O: ``tests/unit/test_offset_ledger.py``.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field


class IntervalSet:
    """Disjoint half-open integer intervals ``[start, end)``, merged on insertion."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def add(self, start: int, end: int) -> None:
        if end <= start:
            return
        starts, ends = self._starts, self._ends
        i = bisect_right(starts, start) - 1  # the interval starting at or before ``start``
        if i >= 0 and ends[i] >= start:  # touches or overlaps it: extend that one
            start = starts[i]
        else:
            i += 1
        j = i
        while j < len(starts) and starts[j] <= end:  # swallow the ones it reaches
            end = max(end, ends[j])
            j += 1
        starts[i:j] = [start]
        ends[i:j] = [end]

    def covered_from(self, offset: int) -> int:
        """The first offset at or after ``offset`` not in the set."""
        i = bisect_right(self._starts, offset) - 1
        if i >= 0 and self._ends[i] > offset:
            return self._ends[i]
        return offset

    def discard_below(self, offset: int) -> None:
        i = bisect_right(self._ends, offset)  # intervals ending at or before ``offset``
        del self._starts[:i], self._ends[:i]
        if self._starts and self._starts[0] < offset:
            self._starts[0] = offset

    def __contains__(self, offset: int) -> bool:
        return self.covered_from(offset) != offset

    def __len__(self) -> int:
        return len(self._starts)

    def __repr__(self) -> str:
        return f"IntervalSet({list(zip(self._starts, self._ends))})"


@dataclass
class PartitionLedger:
    """One partition of a guarded topic, in the current assignment."""

    base: int | None = None  # everything below is committed; None until the first seek
    position: int | None = None  # next offset the fetch chain expects; None: chain unknown
    epoch: int = 0  # changes with every seek: records fetched before it are stale
    reseek: int | None = None  # fetched but not delivered from here on: fetch again first
    done: IntervalSet = field(default_factory=IntervalSet)
    high: int | None = None  # the highest offset processed
    gap_seen: tuple[int, float] | None = None  # (gap offset, monotonic time first seen)

    @property
    def synced(self) -> bool:
        return self.base is not None and self.position is not None

    def sync(self, position: int, base: int | None = None) -> None:
        """The consumer was positioned at ``position`` (``base``: the committed offset)."""
        self.epoch += 1
        self.position = position
        self.reseek = None
        if base is not None:
            self.base = base
        if self.base is not None:
            self.done.discard_below(self.base)

    def fetched(self, offset: int) -> None:
        """The next record of the current chain is delivered: what lies between the chain's
        position and it is not in the log."""
        if self.position is not None and offset > self.position:
            self.done.add(self.position, offset)
        if self.position is None or offset >= self.position:
            self.position = offset + 1

    def undelivered(self, offset: int) -> None:
        """A record of the current chain was fetched but not delivered: the chain is broken
        there; it must be fetched again (unless a seek replaces the chain first)."""
        if self.reseek is None:
            self.reseek = offset
        self.position = None

    def processed(self, offset: int) -> None:
        if self.base is None or offset >= self.base:
            self.done.add(offset, offset + 1)
        if self.high is None or offset > self.high:
            self.high = offset

    def committable(self) -> int | None:
        """The offset to commit now (every offset below it done), or None if no progress."""
        if self.base is None:
            return None
        frontier = self.done.covered_from(self.base)
        return frontier if frontier > self.base else None

    def gap(self) -> int | None:
        """The first offset not done while a later one is: a message processed after one
        before it was not, which only a discarded delivery explains (or a refetch under way)."""
        if self.base is None or self.high is None:
            return None
        frontier = self.done.covered_from(self.base)
        return frontier if self.high > frontier else None

    def committed(self, offset: int) -> None:
        if self.base is None or offset > self.base:
            self.base = offset
            self.done.discard_below(offset)
