"""Latency regression on access-log percentiles (from the windows' DDSketch)."""

from __future__ import annotations

import math
import statistics
from collections import deque
from typing import Any

from streams.anomaly.base import Detector, Doc, anomaly_doc, config_version, series_id

_ALL = ("p50", "p90", "p95", "p99")


class LatencyDetector(Detector):
    """Flags a series whose latency percentiles rise above their own history.

    Works in log space: z = (log x - median(log history)) / max(1.4826 * MAD, log(1 + floor)).
    percentiles: which of p50/p90/p95/p99 are checked. min_samples: latency samples a window
    needs to be scored or learnt. min_ratio: observed / expected must also reach this.
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
        self.version = config_version(self.name, {
            "p": self.percentiles, "threshold": threshold, "min_ratio": min_ratio,
            "min_samples": min_samples, "min_history": min_history, "history": history,
            "floor": scale_floor,
        })
        self.state: dict[str, dict[str, deque[float]]] = {}

    def process_window(self, docs: list[Doc]) -> list[Doc]:
        out = []
        for doc in docs:
            lat = doc.get("latency_ms")
            if not self.accepts(doc) or not lat or lat.get("count", 0) < self.min_samples:
                continue
            st = self.state.setdefault(
                series_id(doc), {p: deque(maxlen=self.history) for p in _ALL})
            expected = {p: math.exp(statistics.median(st[p])) if st[p] else None for p in _ALL}
            scores = []
            if len(st[_ALL[0]]) >= self.min_history:
                for p in self.percentiles:
                    logs = st[p]
                    med = statistics.median(logs)
                    mad = statistics.median(abs(v - med) for v in logs)
                    x = math.log(max(lat[p], 1e-6))
                    z = (x - med) / max(1.4826 * mad, self.scale_floor)
                    if z >= self.threshold and lat[p] >= self.min_ratio * math.exp(med):
                        scores.append((z, p))
            if scores:
                items = [{"name": f"latency_ms.{p}", "expected": round(expected[p], 3),
                          "observed": lat[p]} for p in _ALL]
                z, p = max(scores)
                summary = (f"latency regression: {p} {lat[p]:g} ms vs {expected[p]:.3g} ms "
                           f"expected (x{lat[p] / expected[p]:.2f}, z={z:.1f})")
                out.append(anomaly_doc(doc, self.name, z, self.threshold, self.version,
                                       summary, items))
            for p in _ALL:
                st[p].append(math.log(max(lat[p], 1e-6)))
        return out

    def snapshot(self) -> dict[str, Any]:
        return {s: {p: list(v) for p, v in st.items()} for s, st in self.state.items()}

    def restore(self, state: dict[str, Any]) -> None:
        self.state = {s: {p: deque(v, maxlen=self.history) for p, v in st.items()}
                      for s, st in state.items()}
