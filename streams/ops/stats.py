"""Live counters of a running worker or collector: what the console, the Prometheus endpoint
and the health check read. Updated in place on the hot path (plain ints and dicts, no locks:
one event loop per process)."""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PartitionStats:
    records_in: int = 0
    events_out: int = 0
    last_offset: int = -1
    high_watermark: int = -1  # last known end offset (for lag)

    @property
    def lag(self) -> int | None:
        if self.high_watermark < 0 or self.last_offset < 0:
            return None
        return max(0, self.high_watermark - self.last_offset - 1)


@dataclass
class WorkerStats:
    """Counters of one worker process. ``stage`` keys: collect, decode, structure, index,
    window, score."""

    pipeline: str = ""
    role: str = "worker"
    # Unix times are what the metrics export; intervals are measured on the monotonic clock,
    # which a wall-clock step (NTP, a resumed VM) does not move.
    started: float = field(default_factory=time.time)
    started_monotonic: float = field(default_factory=time.monotonic)
    partitions: dict[tuple[str, int], PartitionStats] = field(default_factory=dict)
    lines_in: Counter = field(default_factory=Counter)  # by stage
    lines_out: Counter = field(default_factory=Counter)  # by stage
    errors: Counter = field(default_factory=Counter)  # by (stage, reason)
    dead_letters: Counter = field(default_factory=Counter)  # by (stage, reason)
    bulk_seconds: deque = field(default_factory=lambda: deque(maxlen=512))
    window_lateness_seconds: deque = field(default_factory=lambda: deque(maxlen=512))
    late_events: int = 0
    model_versions: dict[str, str] = field(default_factory=dict)  # detector -> version
    recent_anomalies: deque = field(default_factory=lambda: deque(maxlen=50))
    recent_windows: deque = field(default_factory=lambda: deque(maxlen=50))
    elasticsearch_ok: bool = True
    kafka_ok: bool = True
    last_progress: float = field(default_factory=time.time)  # Unix time of the last buffer
    last_progress_monotonic: float = field(default_factory=time.monotonic)

    def progressed(self) -> None:
        """A buffer was processed now."""
        self.last_progress = time.time()
        self.last_progress_monotonic = time.monotonic()

    def seconds_since_progress(self) -> float:
        return time.monotonic() - self.last_progress_monotonic

    def uptime(self) -> float:
        return time.monotonic() - self.started_monotonic

    def partition(self, topic: str, partition: int) -> PartitionStats:
        key = (topic, partition)
        ps = self.partitions.get(key)
        if ps is None:
            ps = self.partitions[key] = PartitionStats()
        return ps

    def dead_lettered(self, letters: list[dict[str, Any]]) -> None:
        for dl in letters:
            self.dead_letters[(dl.get("stage", "?"), dl.get("reason", "?"))] += 1

    def total_lag(self) -> int:
        return sum(p.lag or 0 for p in self.partitions.values())

    def health(self, *, stall_seconds: float = 120.0) -> dict[str, Any]:
        """``ok`` or ``degraded`` with the reasons (Elasticsearch unreachable, lag without
        progress)."""
        reasons = []
        if not self.elasticsearch_ok:
            reasons.append("elasticsearch unreachable")
        if not self.kafka_ok:
            reasons.append("kafka unreachable")
        lag = self.total_lag()
        if lag > 0 and self.seconds_since_progress() > stall_seconds:
            reasons.append(f"consumer lag {lag} without progress for {stall_seconds:.0f}s")
        return {"status": "degraded" if reasons else "ok", "reasons": reasons, "lag": lag,
                "pipeline": self.pipeline, "uptime_seconds": round(self.uptime(), 1)}
