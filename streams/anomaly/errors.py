"""Error bursts: a window's error lines against its series' own error ratio.

The error lines of a window (``error_count`` of ``count``) are compared with the ratio its
series showed over the last ``history`` normal windows: under a beta-binomial model (the
ratio ``p`` ~ Beta with that mean and at most ``max_evidence`` lines of evidence, so a long
spotless history does not make one stray error an incident, and a ratio that wanders a bit
is allowed for), the probability of at least that many errors among the window's lines. A
window alerts when that probability is below ``alpha``, it holds at least ``min_errors``
errors and ``min_factor`` times what the ratio predicts. The score is ``-log10(p)``.

Unlike a z-score on the error count, the test scales with the window's volume: seven
errors among 28 lines of a quiet service is an incident, as is a 10 % error ratio in a busy
one, while more traffic with the usual ratio is not.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from scipy.stats import betabinom

from streams.anomaly.base import Detector, Doc, anomaly_doc, config_version, series_id


class ErrorDetector(Detector):
    """Beta-binomial test of ``error_count`` out of ``count`` per series (see the module)."""

    kind = "errors"

    def __init__(
        self,
        alpha: float = 1e-6,
        min_errors: int = 3,
        min_factor: float = 3.0,
        history: int = 60,
        min_history: int = 10,
        max_evidence: float = 1000.0,
        prior: tuple[float, float] = (0.5, 0.5),
        name: str | None = None,
        windows: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(name, windows)
        self.alpha = alpha
        self.min_errors = min_errors
        self.min_factor = min_factor
        self.history = history
        self.min_history = min_history
        self.max_evidence = max_evidence
        self.prior = (float(prior[0]), float(prior[1]))
        self.threshold = -math.log10(alpha)
        self.version = config_version(self.name, {
            "alpha": alpha, "min_errors": min_errors, "min_factor": min_factor,
            "history": history, "min_history": min_history, "evidence": max_evidence,
            "prior": list(self.prior)})
        self.state: dict[str, deque[tuple[int, int]]] = {}  # series -> (errors, lines)

    def expected_ratio(self, hist: deque[tuple[int, int]]) -> tuple[float, float]:
        """(ratio, lines of evidence) of a series' history, with the prior."""
        errors = sum(e for e, _ in hist) + self.prior[0]
        lines = sum(n for _, n in hist) + self.prior[0] + self.prior[1]
        return errors / lines, min(lines, self.max_evidence)

    def tail(self, errors: int, lines: int, ratio: float, evidence: float) -> float:
        """P(at least ``errors`` error lines among ``lines``) under the series' ratio."""
        a, b = ratio * evidence, (1.0 - ratio) * evidence
        return float(betabinom.sf(errors - 1, lines, a, b))

    def process_window(self, docs: list[Doc]) -> list[Doc]:
        out = []
        for doc in docs:
            if not self.accepts(doc):
                continue
            sid = series_id(doc)
            hist = self.state.setdefault(sid, deque(maxlen=self.history))
            errors, lines = int(doc.get("error_count") or 0), int(doc.get("count") or 0)
            flagged = False
            if len(hist) >= self.min_history and errors >= self.min_errors:
                ratio, evidence = self.expected_ratio(hist)
                expected = ratio * lines
                if errors >= self.min_factor * expected:
                    p = max(self.tail(errors, lines, ratio, evidence), 1e-300)
                    if p < self.alpha:
                        flagged = True
                        out.append(self._anomaly(doc, errors, lines, expected, p))
            if not flagged and lines:
                hist.append((errors, lines))
        return out

    def _anomaly(self, doc: Doc, errors: int, lines: int, expected: float, p: float) -> Doc:
        score = -math.log10(p)
        items = [{"name": "error_count", "kind": "spike", "expected": round(expected, 3),
                  "observed": errors},
                 {"name": "error_ratio", "kind": "spike",
                  "expected": round(expected / lines, 6) if lines else 0.0,
                  "observed": round(errors / lines, 6) if lines else 0.0}]
        top = ", ".join(f"{t['template'] or t['id']} x{t['count']}"
                        for t in (doc.get("error_template_counts") or [])[:3])
        summary = (f"{errors} error lines of {lines} vs {expected:.2g} expected "
                   f"(p={p:.1e})" + (f": {top}" if top else ""))
        return anomaly_doc(doc, self.name, score, self.threshold, self.version, summary, items)

    def snapshot(self) -> dict[str, Any]:
        return {s: [list(x) for x in h] for s, h in self.state.items()}

    def restore(self, state: dict[str, Any]) -> None:
        self.state = {s: deque((tuple(x) for x in h), maxlen=self.history)  # type: ignore[misc]
                      for s, h in state.items()}
