"""Robust rate detectors per series: median/MAD or EWMA z-scores for spikes and drops."""

from __future__ import annotations

import math
import statistics
from collections import deque
from typing import Any, Literal

from streams.anomaly.base import Detector, Doc, anomaly_doc, config_version, series_id
from streams.transport.events import get_path


class RateDetector(Detector):
    """Flags a window whose count deviates from the series' own recent history.

    method: ``"mad"`` (z = (x - median) / scale over the last ``history`` windows) or ``"ewma"``
    (z against an exponentially weighted mean/variance, ``alpha``; flagged values do not update
    it). scale is never below sqrt(max(expected, 1)) (Poisson noise), so flat series do not
    alert on a single extra line.
    spike_fields / drop_fields: document fields checked for rises / falls (dotted paths).
    threshold: minimum |z|. min_history: windows seen before a series may alert.
    min_abs_change, min_rel_change: the change must also be at least this many events and this
    fraction of the expected value (guards low-volume series).
    drop_ratio: a fall by at least this fraction of the expected value is a drop even when
    |z| < threshold (a long history with daily swings inflates the MAD; a service losing 80 %
    of its lines is an incident anyway); its score is threshold * fall / drop_ratio.
    """

    kind = "rate"

    def __init__(
        self,
        method: Literal["mad", "ewma"] = "mad",
        spike_fields: tuple[str, ...] = ("count", "error_count"),
        drop_fields: tuple[str, ...] = ("count",),
        threshold: float = 5.0,
        min_history: int = 10,
        history: int = 60,
        alpha: float = 0.1,
        min_abs_change: float = 10.0,
        min_rel_change: float = 0.5,
        drop_ratio: float = 0.7,
        name: str | None = None,
        windows: tuple[str, ...] | None = None,
    ) -> None:
        if method not in ("mad", "ewma"):
            raise ValueError(f"unknown method {method!r}")
        super().__init__(name or f"rate_{method}", windows)
        self.method = method
        self.spike_fields = tuple(spike_fields)
        self.drop_fields = tuple(drop_fields)
        self.fields = tuple(dict.fromkeys(self.spike_fields + self.drop_fields))
        self._paths = {f: tuple(f.split(".")) for f in self.fields}
        self.threshold = threshold
        self.min_history = min_history
        self.history = history
        self.alpha = alpha
        self.min_abs_change = min_abs_change
        self.min_rel_change = min_rel_change
        self.drop_ratio = drop_ratio
        self.version = config_version(self.name, {
            "method": method, "spike": self.spike_fields, "drop": self.drop_fields,
            "threshold": threshold, "min_history": min_history, "history": history,
            "alpha": alpha, "min_abs": min_abs_change, "min_rel": min_rel_change, "drop_ratio": drop_ratio,
        })
        # series -> field -> deque of values (mad) or [mean, var, n] (ewma)
        self.state: dict[str, dict[str, Any]] = {}

    def _expected(self, st: Any) -> tuple[float, float, int]:
        """(expected value, scale, history length) of one field's state."""
        if self.method == "mad":
            if not st:
                return 0.0, 1.0, 0
            med = statistics.median(st)
            mad = statistics.median(abs(v - med) for v in st)
            return med, max(1.4826 * mad, math.sqrt(max(med, 1.0))), len(st)
        mean, var, n = st
        return mean, max(math.sqrt(var), math.sqrt(max(mean, 1.0))), n

    def _update(self, st: Any, x: float, flagged: bool) -> Any:
        if self.method == "mad":
            st.append(x)
            return st
        mean, var, n = st
        if n == 0:
            return [x, 0.0, 1]
        if flagged:
            return [mean, var, n]
        d = x - mean
        mean += self.alpha * d
        var = (1 - self.alpha) * (var + self.alpha * d * d)
        return [mean, var, n + 1]

    def _new_state(self) -> Any:
        return deque(maxlen=self.history) if self.method == "mad" else [0.0, 0.0, 0]

    def process_window(self, docs: list[Doc]) -> list[Doc]:
        out = []
        for doc in docs:
            if not self.accepts(doc):
                continue
            sid = series_id(doc)
            states = self.state.setdefault(sid, {f: self._new_state() for f in self.fields})
            items, scores = [], []
            for f in self.fields:
                x = float(get_path(doc, self._paths[f]) or 0)
                exp, scale, n = self._expected(states[f])
                z = (x - exp) / scale
                flagged, score = False, abs(z)
                if n >= self.min_history:
                    need = max(self.min_abs_change, self.min_rel_change * max(exp, 1.0))
                    fall = (exp - x) / exp if exp > 0 else 0.0
                    if f in self.spike_fields and z >= self.threshold and x - exp >= need:
                        flagged, what = True, "spike"
                    elif (f in self.drop_fields and exp - x >= need
                          and (-z >= self.threshold or fall >= self.drop_ratio)):
                        flagged, what = True, "drop"
                        score = max(score, self.threshold * fall / self.drop_ratio)
                if flagged:
                    items.append({"name": f, "kind": what, "expected": round(exp, 3),
                                  "observed": x, "z": round(z, 3)})
                    scores.append(score)
                states[f] = self._update(states[f], x, flagged)
            if items:
                summary = "; ".join(
                    f"{i['name']} {i['kind']}: {i['observed']:g} observed vs {i['expected']:g} "
                    f"expected (z={i['z']:+.1f})" for i in items)
                out.append(anomaly_doc(doc, self.name, max(scores), self.threshold,
                                       self.version, summary, items))
        return out

    def snapshot(self) -> dict[str, Any]:
        return {s: {f: list(v) for f, v in st.items()} for s, st in self.state.items()}

    def restore(self, state: dict[str, Any]) -> None:
        if self.method == "mad":
            self.state = {s: {f: deque(v, maxlen=self.history) for f, v in st.items()}
                          for s, st in state.items()}
        else:
            self.state = {s: {f: list(v) for f, v in st.items()} for s, st in state.items()}
