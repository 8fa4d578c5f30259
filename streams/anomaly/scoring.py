"""The scoring of one scope's closed windows: detectors, influencers, warm-up, alerts.

A ``Scorer`` takes the closed-window documents of one scope (in the worker, one value of
the window topic's partition key, e.g. a namespace; in-process, the same), in the order
their windows end, and returns alert documents (``streams.anomaly.alerts``). Its state
depends only on that sequence, so however scopes are spread over partitions and workers,
and whether the input came live or from a replay, the same documents give the same alerts.

Warm-up is explicit: the first ``warmup_windows`` windows of every series are learnt, never
alerted on (detectors may ask for more history of their own, e.g. ``min_history``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from streams.anomaly.alerts import AlertBook
from streams.anomaly.base import Doc, series_id
from streams.anomaly.detectors import DetectorSet
from streams.anomaly.influence import Baselines


class Scorer:
    """Detectors, baselines and open alerts of one scope.

    ``key_fields``: window name -> the dotted key fields of its spec (the alert's filterable
    fields come from them). ``alert_gap``: quiet windows an alert stays open through.
    """

    def __init__(self, detectors: Sequence[Any], pipeline: str,
                 key_fields: Mapping[str, tuple[str, ...]], *, warmup_windows: int = 10,
                 alert_gap: int = 1) -> None:
        self.detectors = DetectorSet.from_config(list(detectors))
        self.key_fields = dict(key_fields)
        self.warmup_windows = warmup_windows
        self.baselines = Baselines()
        self.alerts = AlertBook(pipeline, gap=alert_gap)
        self.seen: dict[str, int] = {}  # series id -> windows scored (warm-up)
        self.findings = 0

    def score(self, docs: Sequence[Doc]) -> list[Doc]:
        """Alert documents (opened, updated, closed) after scoring ``docs``."""
        out: list[Doc] = []
        for name, _start, end, batch, findings in self.detectors.windows(docs):
            self.findings += len(findings)
            out += self._window(name, end, batch, findings)
        return out

    def _window(self, name: str, end: int, batch: list[Doc], findings: list[Doc]) -> list[Doc]:
        by_sid: dict[str, list[Doc]] = {}
        for f in findings:
            by_sid.setdefault(series_id(f), []).append(f)
        anomalous: dict[str, tuple[Doc, list[Doc], list[dict[str, Any]]]] = {}
        for doc in batch:
            sid = series_id(doc)
            if not (doc.get("logriver") or {}).get("synthetic"):
                self.seen[sid] = self.seen.get(sid, 0) + 1
            found = by_sid.get(sid)
            if found and self.seen.get(sid, 0) > self.warmup_windows:
                anomalous[sid] = (doc, found, self.baselines.influencers(sid, doc))
            elif not found:
                self.baselines.learn(sid, doc)
        return self.alerts.window(name, end, self.key_fields, anomalous)

    def snapshot(self) -> dict[str, Any]:
        return {"detectors": self.detectors.snapshot(), "baselines": self.baselines.snapshot(),
                "alerts": self.alerts.snapshot(), "seen": dict(self.seen),
                "findings": self.findings}

    def restore(self, state: dict[str, Any]) -> None:
        self.detectors.restore(state["detectors"])
        self.baselines.restore(state["baselines"])
        self.alerts.restore(state["alerts"])
        self.seen = dict(state["seen"])
        self.findings = state["findings"]
