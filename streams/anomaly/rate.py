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

    method: ``"mad"`` or ``"ewma"``. ``mad``: the expected value is the series' local level,
    a robust trend line through its last ``level_windows`` windows (it follows daily swings),
    and the scale
    is 1.4826 x the median absolute residual of the last ``history`` normal windows around
    their own local level (the noise, not the swings). ``ewma``: z against an exponentially
    weighted mean/variance (``alpha``; flagged values do not update it). The scale is never
    below sqrt(max(expected, 1)) (Poisson noise), so flat series do not alert on a single
    extra line.
    spike_fields / drop_fields: document fields checked for rises / falls (dotted paths). By
    default only falls of ``count``: more lines alone is not an incident (error bursts are
    ``ErrorDetector``'s, new failures ``NoveltyDetector``'s); add ``"count"`` to
    ``spike_fields`` to be told of log storms.
    threshold: minimum z of a spike; drop_threshold: of a drop (losing lines is rarer than
    a burst of them). min_history: windows seen before a series may alert.
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
        spike_fields: tuple[str, ...] = (),
        drop_fields: tuple[str, ...] = ("count",),
        threshold: float = 5.0,
        drop_threshold: float = 4.0,
        min_history: int = 10,
        history: int = 60,
        level_windows: int = 15,
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
        self.drop_threshold = drop_threshold
        self.min_history = min_history
        self.history = history
        self.level_windows = level_windows
        self.alpha = alpha
        self.min_abs_change = min_abs_change
        self.min_rel_change = min_rel_change
        self.drop_ratio = drop_ratio
        self.version = config_version(self.name, {
            "method": method, "spike": self.spike_fields, "drop": self.drop_fields,
            "threshold": threshold, "drop_z": drop_threshold, "min_history": min_history,
            "history": history,
            "level": level_windows, "alpha": alpha, "min_abs": min_abs_change, "min_rel": min_rel_change, "drop_ratio": drop_ratio,
        })
        # series -> field -> [values, residuals] deques (mad) or [mean, var, n] (ewma)
        self.state: dict[str, dict[str, Any]] = {}

    def _level(self, values: deque[float]) -> float:
        """The series' level now: a robust line (Theil-Sen: the median of pairwise slopes)
        through its last ``level_windows`` windows, extended to this window, never below 0,
        so a slow swing is followed without lag and an outlier or two do not move it."""
        recent = list(values)[-self.level_windows:]
        n = len(recent)
        if n < 3:
            return statistics.median(recent) if recent else 0.0
        slope = statistics.median((recent[j] - recent[i]) / (j - i)
                                  for i in range(n) for j in range(i + 1, n))
        intercept = statistics.median(y - slope * i for i, y in enumerate(recent))
        return max(intercept + slope * n, 0.0)

    def _expected(self, st: Any) -> tuple[float, float, int]:
        """(expected value, scale, history length) of one field's state."""
        if self.method == "mad":
            values, resid, _ = st
            if not values:
                return 0.0, 1.0, 0
            level = self._level(values)
            if len(resid) >= 5:
                mad = statistics.median(abs(r) for r in resid)
            else:
                med = statistics.median(values)
                mad = statistics.median(abs(v - med) for v in values)
            return level, max(1.4826 * mad, math.sqrt(max(level, 1.0))), len(values)
        mean, var, n = st
        return mean, max(math.sqrt(var), math.sqrt(max(mean, 1.0))), n

    def _update(self, st: Any, x: float, flagged: bool) -> Any:
        if self.method == "mad":
            values, resid, streak = st
            if flagged and streak < self.level_windows:
                # an anomalous value does not move the level, for a while: after
                # level_windows anomalous windows in a row it is the new normal
                return [values, resid, streak + 1]
            if values and not flagged:  # the noise of normal windows around their level
                resid.append(x - self._level(values))
            values.append(x)
            return [values, resid, 0]
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
        if self.method == "mad":
            return [deque(maxlen=self.history), deque(maxlen=self.history), 0]
        return [0.0, 0.0, 0]

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
                          and (-z >= self.drop_threshold or fall >= self.drop_ratio)):
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
        if self.method == "mad":
            return {s: {f: [list(v[0]), list(v[1]), v[2]] for f, v in st.items()}
                    for s, st in self.state.items()}
        return {s: {f: list(v) for f, v in st.items()} for s, st in self.state.items()}

    def restore(self, state: dict[str, Any]) -> None:
        if self.method == "mad":
            self.state = {s: {f: [deque(v[0], maxlen=self.history),
                                  deque(v[1], maxlen=self.history), v[2]]
                              for f, v in st.items()} for s, st in state.items()}
        else:
            self.state = {s: {f: list(v) for f, v in st.items()} for s, st in state.items()}
