"""Latency regression on access-log percentiles (from the windows' DDSketch)."""

from __future__ import annotations

import math
import statistics
from collections import deque
from typing import Any

from streams.anomaly.base import Detector, Doc, anomaly_doc, config_version, series_id
from streams.transport.events import parse_time_us

_ALL = ("p50", "p90", "p95", "p99")


class LatencyDetector(Detector):
    """Flags a series whose latency percentiles rise above their own history.

    Works in log space: z = (log x - median(log history)) / max(1.4826 * MAD, log(1 + floor)).
    percentiles: which of p50/p90/p95/p99 are checked. min_samples: latency samples an
    observation needs to be scored or learnt. min_ratio: observed / expected must also reach
    this.

    A quiet service (ten requests a minute) has fewer than ``min_samples`` in one window: its
    observation is then the window pooled with its preceding windows, newest first, within
    ``pool_windows`` windows, until they hold ``min_samples`` (percentiles averaged in log
    space, weighted by count: an estimate, exact enough for a shift of x2 and more). A busy
    service's observation is its window alone, as before.
    """

    kind = "latency"

    def __init__(
        self,
        percentiles: tuple[str, ...] = ("p50", "p95"),
        threshold: float = 5.0,
        min_ratio: float = 2.0,
        min_samples: int = 20,
        min_history: int = 10,
        history: int = 60,
        scale_floor: float = 0.1,
        pool_windows: int = 5,
        name: str | None = None,
        windows: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(name, windows)
        self.percentiles = tuple(percentiles)
        self.threshold = threshold
        self.min_ratio = min_ratio
        self.min_samples = min_samples
        self.min_history = min_history
        self.history = history
        self.scale_floor = math.log1p(scale_floor)
        self.pool_windows = pool_windows
        self.version = config_version(self.name, {
            "p": self.percentiles, "threshold": threshold, "min_ratio": min_ratio,
            "min_samples": min_samples, "min_history": min_history, "history": history,
            "floor": scale_floor, "pool": pool_windows,
        })
        self.state: dict[str, dict[str, deque[float]]] = {}
        # series -> the latest windows with samples: [start µs, count, {percentile: log ms}]
        self.recent: dict[str, deque[list[Any]]] = {}

    def _observation(self, doc: Doc, sid: str, lat: dict[str, Any]) -> tuple[int, dict[str, float]]:
        """(samples, log percentiles) of the series' observation ending with this window."""
        logs = {p: math.log(max(lat[p], 1e-6)) for p in _ALL}
        count = int(lat.get("count", 0))
        win = doc["window"]
        start = parse_time_us(win["start"])
        horizon = start - self.pool_windows * round(win["step_seconds"] * 1e6)
        recent = self.recent.setdefault(sid, deque(maxlen=self.pool_windows))
        while recent and recent[0][0] <= horizon:
            recent.popleft()
        pane = [(count, logs)]
        total = count
        for _, c, lg in reversed(recent):
            if total >= self.min_samples:
                break
            pane.append((c, lg))
            total += c
        recent.append([start, count, logs])
        if len(pane) == 1:
            return count, logs
        return total, {p: sum(c * lg[p] for c, lg in pane) / total for p in _ALL}

    def process_window(self, docs: list[Doc]) -> list[Doc]:
        out = []
        for doc in docs:
            lat = doc.get("latency_ms")
            if not self.accepts(doc) or not lat or not lat.get("count"):
                continue
            sid = series_id(doc)
            samples, obs = self._observation(doc, sid, lat)
            if samples < self.min_samples:
                continue
            st = self.state.setdefault(sid, {p: deque(maxlen=self.history) for p in _ALL})
            expected = {p: math.exp(statistics.median(st[p])) if st[p] else None for p in _ALL}
            observed = {p: round(math.exp(obs[p]), 3) for p in _ALL}
            scores = []
            if len(st[_ALL[0]]) >= self.min_history:
                for p in self.percentiles:
                    logs = st[p]
                    med = statistics.median(logs)
                    mad = statistics.median(abs(v - med) for v in logs)
                    z = (obs[p] - med) / max(1.4826 * mad, self.scale_floor)
                    if z >= self.threshold and observed[p] >= self.min_ratio * math.exp(med):
                        scores.append((z, p))
            if scores:
                items = [{"name": f"latency_ms.{p}", "expected": round(expected[p], 3),
                          "observed": observed[p]} for p in _ALL]
                z, p = max(scores)
                pooled = "" if samples == lat["count"] else \
                    f" ({samples} samples pooled over the last windows)"
                summary = (f"latency regression: {p} {observed[p]:g} ms vs {expected[p]:.3g} ms "
                           f"expected (x{observed[p] / expected[p]:.2f}, z={z:.1f}){pooled}")
                out.append(anomaly_doc(doc, self.name, z, self.threshold, self.version,
                                       summary, items))
            for p in _ALL:
                st[p].append(obs[p])
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"series": {s: {p: list(v) for p, v in st.items()} for s, st in self.state.items()},
                "recent": {s: [list(r) for r in rs] for s, rs in self.recent.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        # a checkpoint written before quiet series were pooled holds the series alone
        series = state.get("series", state)
        self.state = {s: {p: deque(v, maxlen=self.history) for p, v in st.items()}
                      for s, st in series.items()}
        self.recent = {s: deque((list(r) for r in rs), maxlen=self.pool_windows)
                       for s, rs in (state.get("recent") or {}).items()}
