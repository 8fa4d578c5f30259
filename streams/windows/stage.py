"""The window + scoring stage of a pipeline, shared by the in-process runner and the Faust
worker: events in, closed-window metrics documents and anomaly documents out, late events
dead-lettered (counted, never dropped silently).

In the worker the stage runs on a repartitioned topic keyed by the fields every window
spec groups by (``partition_fields``), so all events of a (window, key) meet in one
partition; its state (``snapshot``) is kept in a changelog-backed Faust table, and the
``applied`` positions make re-delivered input after a crash count once.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from streams.anomaly import DetectorSet
from streams.transport.deadletter import DeadLetter, dead_letter
from streams.windows import WindowAggregator, WindowSpec

Doc = dict[str, Any]


def partition_fields(specs: Sequence[WindowSpec]) -> tuple[str, ...]:
    """Key fields shared by every spec, in the first spec's order: partitioning the window
    input by them keeps each (window, key) in one partition."""
    if not specs:
        return ()
    common = set(specs[0].key_fields)
    for spec in specs[1:]:
        common &= set(spec.key_fields)
    return tuple(f for f in specs[0].key_fields if f in common)


class WindowStage:
    def __init__(self, pipeline_name: str, specs: Sequence[WindowSpec],
                 detectors: Sequence[Any] = (), *, max_template_texts: int = 20_000,
                 idle_source_seconds: float | None = None) -> None:
        self.pipeline = pipeline_name
        self.specs = list(specs)
        self.aggregator = WindowAggregator(self.specs, pipeline_name,
                                           max_template_texts=max_template_texts,
                                           idle_source_seconds=idle_source_seconds)
        self.detectors = DetectorSet.from_config(list(detectors)) if detectors else None
        self.windows_closed = 0
        self.anomalies = 0
        self.late = 0

    def add(self, events: Iterable[Doc], source: Hashable = 0) -> list[DeadLetter]:
        """Count events of one ``source`` (see :mod:`streams.windows.aggregator`)."""
        letters: list[DeadLetter] = []
        for ev in events:
            late = self.aggregator.add(ev, source)
            if late:
                letters += self._late(late)
        return letters

    def alias(self, aliases: dict[str, str]) -> None:
        """Merged template ids (merged id -> surviving id): counted once from now on, in the
        windows still open too."""
        for absorbed, survivor in aliases.items():
            self.aggregator.alias(absorbed, survivor)

    def add_row(self, ts: int | None, source: Hashable, sample: Any, values: Any,
                event: Any) -> list[DeadLetter]:
        """Count one event of compact window input (:meth:`WindowAggregator.add_row`)."""
        late = self.aggregator.add_row(ts, source, sample, values, event)
        return self._late(late) if late else []

    def _late(self, late: list[Any]) -> list[DeadLetter]:
        self.late += len(late)
        return [dead_letter(
            "window", f"late_{x.reason}", x.event, step=x.spec, pipeline=self.pipeline,
            detail=f"windows {', '.join(x.windows) or '-'} already closed or behind the watermark",
            event_id=(x.event.get("event") or {}).get("id"),
        ) for x in late]

    def close(self, now_watermark: float | None = None) -> tuple[list[Doc], list[Doc]]:
        """Close what the watermark allows; returns (metrics docs, anomaly docs)."""
        closed = self.aggregator.close_ready(now_watermark)
        return self._finish(closed)

    def flush(self) -> tuple[list[Doc], list[Doc]]:
        """Close every open window (end of a replay)."""
        return self._finish(self.aggregator.flush())

    def _finish(self, closed: list[Any]) -> tuple[list[Doc], list[Doc]]:
        docs = [c.doc for c in closed]
        self.windows_closed += len(docs)
        anomalies = self.detectors.process(docs) if (self.detectors and docs) else []
        self.anomalies += len(anomalies)
        return docs, anomalies

    def snapshot(self) -> dict[str, Any]:
        state: dict[str, Any] = {"aggregator": self.aggregator.snapshot()}
        if self.detectors is not None:
            state["detectors"] = self.detectors.snapshot()
        return state

    def restore(self, state: dict[str, Any]) -> None:
        self.aggregator.restore(state["aggregator"])
        if self.detectors is not None and "detectors" in state:
            self.detectors.restore(state["detectors"])
