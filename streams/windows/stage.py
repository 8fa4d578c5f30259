"""The window + scoring stage of a pipeline, shared by the in-process runner and the Faust
worker: events in, closed-window metrics documents and alert documents out, late events
dead-lettered (counted, never dropped silently).

In the worker the stage runs on a repartitioned topic keyed by the fields every window
spec groups by (``partition_fields``), so all events of a (window, key) meet in one
partition; its state (``snapshot``) is kept in a changelog-backed Faust table, and the
``applied`` positions make re-delivered input after a crash count once.

Scoring is scoped by the same fields: each value of them (a *scope*, e.g. a namespace) has
its own :class:`~streams.anomaly.Scorer`, fed its closed windows in the order they end, so
the alerts do not depend on how scopes share partitions, workers or a replay.

Only final windows are scored. A closed window waits (``pending``) until its scope's
event time has passed it: the newest event of the scope minus the largest allowed
lateness must reach the window's end, and every spec must have closed that far. Windows
closed only because the input ended (the end of a replay, the worker's idle close on the
wall clock) stay unscored until the scope's own events pass them, which at the end of a
finite input is never: a partial last window is not a volume drop.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from streams.anomaly import Scorer
from streams.transport.deadletter import DeadLetter, dead_letter
from streams.transport.events import get_path, parse_time_us
from streams.windows import WindowAggregator, WindowSpec
from streams.windows.spec import _key_value

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


def scope_of(values: Iterable[Any]) -> str:
    """The scope (and window-topic key) of the partition fields' values."""
    return "\x1f".join([str(v) for v in values])


class WindowStage:
    def __init__(self, pipeline_name: str, specs: Sequence[WindowSpec],
                 detectors: Sequence[Any] = (), *, max_template_texts: int = 20_000,
                 idle_source_seconds: float | None = None, warmup_windows: int = 10,
                 alert_gap: int = 1) -> None:
        self.pipeline = pipeline_name
        self.specs = list(specs)
        self.aggregator = WindowAggregator(self.specs, pipeline_name,
                                           max_template_texts=max_template_texts,
                                           idle_source_seconds=idle_source_seconds)
        self.detector_config = list(detectors)
        self.warmup_windows = warmup_windows
        self.alert_gap = alert_gap
        self.scope_fields = partition_fields(self.specs)
        fields = self.aggregator.key_fields
        self._scope_index = [fields.index(f) for f in self.scope_fields]
        self._scope_paths = [tuple(f.split(".")) for f in self.scope_fields]
        self._spec_scope = {s.name: [s.key_fields.index(f) for f in self.scope_fields]
                            for s in self.specs}
        self.max_lateness_us = max((s.lateness_us for s in self.specs), default=0)
        self.scorers: dict[str, Scorer] = {}
        self.pending: dict[str, list[Doc]] = {}  # scope -> closed windows not scored yet
        self.scored_upto: dict[str, int] = {}  # scope -> end (µs) of the windows scored
        self.newest: dict[str, int] = {}  # scope -> newest event time (µs)
        self.windows_closed = 0
        self.anomalies = 0
        self.late = 0

    @property
    def scoring(self) -> bool:
        return bool(self.detector_config)

    # -- input ----------------------------------------------------------------------------
    def add(self, events: Iterable[Doc], source: Hashable = 0) -> list[DeadLetter]:
        """Count events of one ``source`` (see :mod:`streams.windows.aggregator`)."""
        letters: list[DeadLetter] = []
        for ev in events:
            late = self.aggregator.add(ev, source)
            if late:
                letters += self._late(late)
            if self.scoring:
                ts = parse_time_us(ev.get("@timestamp"))
                if ts is not None:
                    self._saw(scope_of(_key_value(get_path(ev, p)) for p in self._scope_paths), ts)
        return letters

    def alias(self, aliases: dict[str, str]) -> None:
        """Merged template ids (merged id -> surviving id): counted once from now on, in the
        windows still open too."""
        for absorbed, survivor in aliases.items():
            self.aggregator.alias(absorbed, survivor)

    def add_row(self, ts: int | None, source: Hashable, sample: Any, values: Any,
                event: Any, text: str | None = None) -> list[DeadLetter]:
        """Count one event of compact window input (:meth:`WindowAggregator.add_row`)."""
        late = self.aggregator.add_row(ts, source, sample, values, event, text)
        if ts is not None and self.scoring:
            self._saw(scope_of(values[j] for j in self._scope_index), ts)
        return self._late(late) if late else []

    def _saw(self, scope: str, ts: int) -> None:
        if ts > self.newest.get(scope, -1 << 62):
            self.newest[scope] = ts

    def _late(self, late: list[Any]) -> list[DeadLetter]:
        self.late += len(late)
        return [dead_letter(
            "window", f"late_{x.reason}", x.event, step=x.spec, pipeline=self.pipeline,
            detail=f"windows {', '.join(x.windows) or '-'} already closed or behind the watermark",
            event_id=(x.event.get("event") or {}).get("id"),
        ) for x in late]

    # -- output ---------------------------------------------------------------------------
    def close(self, now_watermark: float | None = None) -> tuple[list[Doc], list[Doc]]:
        """Close what the watermark allows; returns (metrics docs, alert docs)."""
        return self._finish(self.aggregator.close_ready(now_watermark))

    def flush(self) -> tuple[list[Doc], list[Doc]]:
        """Close every open window (end of a replay); only final windows are scored."""
        return self._finish(self.aggregator.flush())

    def _finish(self, closed: list[Any]) -> tuple[list[Doc], list[Doc]]:
        docs = [c.doc for c in closed]
        self.windows_closed += len(docs)
        if not self.scoring:
            return docs, []
        for c in closed:
            scope = scope_of(c.key[j] for j in self._spec_scope[c.spec.name])
            end = c.start_us + c.spec.size_us
            if end <= self.scored_upto.get(scope, -1 << 62):
                continue  # scored before a crash, closed again from re-delivered input
            queue = self.pending.setdefault(scope, [])
            if all(d["event"]["id"] != c.doc["event"]["id"] for d in queue):
                queue.append(c.doc)
        alerts = self._score()
        self.anomalies += len(alerts)
        return docs, alerts

    def _score(self) -> list[Doc]:
        """Score, per scope, the pending windows its event time has passed, in end order."""
        closed = self.aggregator.closed_upto
        if not closed or any(c is None for c in closed):
            return []
        closed_min = min(closed)  # type: ignore[type-var]
        out: list[Doc] = []
        for scope in sorted(self.pending):
            newest = self.newest.get(scope)
            if newest is None:
                continue
            frontier = min(newest - self.max_lateness_us, closed_min)
            queue = self.pending[scope]
            ready = [d for d in queue if _end_us(d) <= frontier]
            if not ready:
                continue
            rest = [d for d in queue if _end_us(d) > frontier]
            if rest:
                self.pending[scope] = rest
            else:
                del self.pending[scope]
            self.scored_upto[scope] = max(_end_us(d) for d in ready)
            out += self._scorer(scope).score(ready)
        return out

    def _scorer(self, scope: str) -> Scorer:
        scorer = self.scorers.get(scope)
        if scorer is None:
            scorer = self.scorers[scope] = Scorer(
                self.detector_config, self.pipeline, {s.name: s.key_fields for s in self.specs},
                warmup_windows=self.warmup_windows, alert_gap=self.alert_gap)
        return scorer

    def open_alerts(self) -> list[Doc]:
        """The alerts still open (their latest documents), for a summary."""
        return [sc.alerts.document(st) for _, sc in sorted(self.scorers.items())
                for _, st in sorted(sc.alerts.open.items())]

    # -- state ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The windows' state (changes with every event)."""
        return {"aggregator": self.aggregator.snapshot(), "newest": dict(self.newest)}

    def restore(self, state: dict[str, Any]) -> None:
        self.aggregator.restore(state["aggregator"])
        self.newest = dict(state.get("newest") or {})

    def scoring_snapshot(self) -> dict[str, Any]:
        """The scoring state (changes when windows close): written before the windows'
        state, so after a crash between the two, windows closed again are recognized."""
        return {"scopes": {s: sc.snapshot() for s, sc in self.scorers.items()},
                "pending": self.pending, "scored_upto": dict(self.scored_upto)}

    def restore_scoring(self, state: dict[str, Any]) -> None:
        if "scopes" not in state:
            raise ValueError("scoring state written by an older Logriver: scoring starts over")
        self.scorers = {}
        for scope, st in state["scopes"].items():
            self._scorer(scope).restore(st)
        self.pending = {s: list(q) for s, q in state["pending"].items()}
        self.scored_upto = dict(state["scored_upto"])


def _end_us(doc: Doc) -> int:
    return parse_time_us(doc["window"]["end"]) or 0
