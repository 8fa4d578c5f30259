"""Event-time window aggregation with per-source watermarks.

A *source* is an ordered input: in the worker one container stream of the raw topic (a
partition holds many, read at different paces: a node agent catching up reads each file's
backlog in turn), in-process the whole replay. Watermark of a source for a spec = newest
event time seen from that source minus the spec's allowed lateness. An event older than its
source's watermark, or whose window was already closed, is returned as a :class:`LateEvent`
(the caller counts and dead-letters it). A window ``[start, end)`` closes when ``end`` <= the
close watermark: by default the minimum over sources of their watermark, or
``now_watermark - allowed_lateness`` when the caller passes an event-time clock (e.g. when
all input is idle). With the default, every event that arrives within the lateness bound
reaches its window, so results do not depend on arrival order nor on when ``close_ready``
is called, and equal :func:`batch_recompute`.

``idle_source_seconds``: a source with no event for that long (processing time, the
``clock``) stops holding the close watermark back and is forgotten (a container that
stopped, a stream that went quiet); when it sends again it is a new source, and only
windows already closed can make its events late. None (in-process replays): never idle.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from streams.transport.records import event_id
from streams.windows.aggregate import Aggregate, Sample, sample_of
from streams.windows.spec import (
    WindowSpec,
    _key_value,
    format_time_us,
    get_path,
    parse_time_us,
    row_fields,
)

_TS_PATH = ("@timestamp",)
MAX_ALIASES = 10_000  # merged template ids remembered (oldest forgotten first)
_TPL_PATHS = (("log", "template_id"), ("log", "template"))


@dataclass(frozen=True)
class LateEvent:
    """An event that could not update (some of) its windows for one spec."""

    spec: str
    reason: str  # "behind_watermark" | "window_closed" | "invalid_timestamp"
    event: dict[str, Any]
    windows: tuple[str, ...] = ()  # starts (RFC 3339) of the windows it missed


@dataclass
class ClosedWindow:
    """A closed (window, key): its state and the metrics document built from it."""

    spec: WindowSpec
    start_us: int
    key: tuple
    aggregate: Aggregate
    doc: dict[str, Any]


def _key_sort(key: tuple) -> tuple:
    return tuple((v is None, str(v)) for v in key)


def window_doc(
    spec: WindowSpec,
    start_us: int,
    key: tuple,
    agg: Aggregate,
    pipeline: str,
    template_text: dict[str, str] | None = None,
    top_templates: int = 200,
    top_values: int = 20,
) -> dict[str, Any]:
    """The metrics document of one closed (window, key).

    ``key`` holds the key fields with dots replaced by underscores
    (``kubernetes.namespace`` -> ``key.kubernetes_namespace``); ``template_counts`` lists the
    ``top_templates`` most frequent templates (count desc, id asc), ``error_template_counts``
    the same for error/fatal events; ``breakdown`` the ``top_values`` most frequent values of
    each influencer field (``{"field", "value", "count", "error_count"}``).
    """
    texts = template_text or {}

    def top(counts: dict[str, int]) -> list[dict[str, Any]]:
        items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top_templates]
        # the window's own text of each template (order-independent), else the aggregator's
        return [{"id": t, "count": c, "template": agg.texts.get(t) or texts.get(t)}
                for t, c in items]

    start, end = format_time_us(start_us), format_time_us(start_us + spec.size_us)
    keys = dict(zip(spec.key_names(), key))
    return {
        "@timestamp": start,
        "window": {
            "start": start,
            "end": end,
            "size_seconds": spec.size,
            "step_seconds": spec.step_seconds,
            "kind": spec.kind,
            "name": spec.name,
        },
        "key": keys,
        "count": agg.count,
        "error_count": agg.error_count,
        "error_ratio": round(agg.error_count / agg.count, 6) if agg.count else 0.0,
        "bytes": agg.bytes,
        "http_5xx": agg.http_5xx,
        "distinct_templates": agg.distinct_templates,
        "templates_truncated": agg.truncated,
        "new_templates": agg.new_templates,
        "latency_ms": agg.latency_percentiles(),
        "template_counts": top(agg.templates),
        "error_template_counts": top(agg.error_templates),
        "breakdown": _breakdown(spec, agg, top_values),
        "logriver": {"pipeline": pipeline, "doc_type": "metrics"},
        "event": {"id": event_id("metrics", pipeline, spec.name, start_us, *key)},
    }


def _breakdown(spec: WindowSpec, agg: Aggregate, top: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if agg.by is None:
        return out
    for name, counts in zip(spec.influencers, agg.by):
        items = sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0]))[:top]
        out += [{"field": name, "value": v, "count": c, "error_count": e} for v, (c, e) in items]
    return out


class WindowAggregator:
    """Assigns events to windows of every spec by event time and closes them on watermarks.

    State is kept in *panes*: for each spec, non-overlapping slices of width
    ``gcd(size, step)`` per key (a tumbling window is its own pane). An event updates one pane
    per spec, whatever the overlap of a hopping window; a window is the merge of its panes
    when it closes (aggregates merge exactly, see :class:`Aggregate`), and a pane is dropped
    once the last window holding it closed. ("No pane, no gain", Li et al., SIGMOD Record 2005.)

    ``max_templates`` bounds template state per (pane, key) and per window (see
    :class:`Aggregate`); ``top_templates`` bounds the template lists of a metrics document.
    """

    SNAPSHOT_FORMAT = 2

    def __init__(
        self,
        specs: Sequence[WindowSpec],
        pipeline: str = "default",
        max_templates: int = 2000,
        top_templates: int = 200,
        max_template_texts: int = 100_000,
        idle_source_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"window names must be unique: {names}")
        self.specs = list(specs)
        self.pipeline = pipeline
        self.max_templates = max_templates
        self.top_templates = top_templates
        self.max_template_texts = max_template_texts
        self._paths = [s.split_paths() for s in self.specs]
        self._pane_us = [math.gcd(s.size_us, s.step_us) for s in self.specs]
        # per spec, what add() needs on every event, computed once
        self._plan = [(i, s, s.size_us, s.step_us, s.lateness_us, self._pane_us[i])
                      for i, s in enumerate(self.specs)]
        # compact window input (add_row): every field the specs read (key fields, then
        # influencer fields), and where each spec's are
        self.key_fields = row_fields(self.specs)
        self._key_index = [tuple(self.key_fields.index(f) for f in sp.key_fields)
                           for sp in self.specs]
        self._infl_index = [tuple(self.key_fields.index(f) for f in sp.influencers)
                            for sp in self.specs]
        self._infl_paths = [tuple(tuple(f.split(".")) for f in sp.influencers)
                            for sp in self.specs]
        self.panes: list[dict[tuple[int, tuple], Aggregate]] = [{} for _ in self.specs]
        self.closed_upto: list[int | None] = [None for _ in self.specs]
        self.max_time: dict[Hashable, int] = {}  # source -> newest event time (µs)
        self.idle_source_seconds = idle_source_seconds
        self.clock = clock
        self.seen_at: dict[Hashable, float] = {}  # source -> clock() of its last event
        self.late_counts: dict[str, int] = {s.name: 0 for s in self.specs}
        self.template_text: dict[str, str] = {}
        # inputs (e.g. raw partitions) not heard from yet: no window closes on event time
        # until each has reported (the caller clears it when its input is caught up)
        self.waiting_for: set[Hashable] = set()
        # extra event time (µs) windows are held open for, set by the caller while it
        # catches up on old input
        self.hold_us = 0
        # merged template id -> the id it counts under (streams.templates), bounded
        self.aliases: dict[str, str] = {}

    def alias(self, absorbed: str, survivor: str) -> None:
        """Template ``absorbed`` was merged into ``survivor``: its counts in open windows move
        there, and so do its events still to come (an id merged in one partition's miner
        may still be given in another's)."""
        if absorbed == survivor:
            return
        if len(self.aliases) >= MAX_ALIASES:
            del self.aliases[next(iter(self.aliases))]
        self.aliases[absorbed] = survivor
        for panes in self.panes:
            for agg in panes.values():
                agg.alias(absorbed, survivor)

    def add(self, event: dict[str, Any], source: Hashable = 0) -> list[LateEvent]:
        """Count ``event`` (from ``source``) in its windows; returns what arrived too late
        (empty when on time)."""
        ts = parse_time_us(event.get("@timestamp"))
        if ts is None:
            for s in self.specs:
                self.late_counts[s.name] += 1
            return [LateEvent(s.name, "invalid_timestamp", event) for s in self.specs]
        text = self._remember_template(event)
        keys = [tuple([_key_value(get_path(event, path)) for path in paths]) for paths in self._paths]
        infl = [tuple([_key_value(get_path(event, path)) for path in paths]) if paths else None
                for paths in self._infl_paths]
        return self._add(ts, source, sample_of(event), keys, event, infl, text)

    def add_row(self, ts: int | None, source: Hashable, sample: Sample, values: Sequence[Any],
                event: Callable[[], dict[str, Any]], text: str | None = None) -> list[LateEvent]:
        """Count one event given as compact window input: its time (µs), its
        :func:`sample_of`, and the values of :attr:`key_fields` in that order (what
        ``streams.windows.agent`` sends instead of whole events). ``event`` builds a dict
        standing for it, called only when it is late; ``text`` is its template's text."""
        if ts is None:
            for s in self.specs:
                self.late_counts[s.name] += 1
            ev = event()
            return [LateEvent(s.name, "invalid_timestamp", ev) for s in self.specs]
        keys = [tuple([values[j] for j in idx]) for idx in self._key_index]
        infl = [tuple([values[j] for j in idx]) if idx else None for idx in self._infl_index]
        return self._add(ts, source, sample, keys, event, infl, text)

    def remember_template(self, tid: str, text: str) -> None:
        if tid not in self.template_text and len(self.template_text) < self.max_template_texts:
            self.template_text[tid] = text

    def _add(self, ts: int, source: Hashable, sample: Sample, keys: list[tuple],
             event: dict[str, Any] | Callable[[], dict[str, Any]],
             infl: list[tuple | None], text: str | None = None) -> list[LateEvent]:
        if self.aliases and sample[3] in self.aliases:
            sample = (*sample[:3], self.aliases[sample[3]], *sample[4:])  # type: ignore[assignment]
            text = None  # the absorbed template's text: the survivor keeps its own
        if self.idle_source_seconds is not None:
            self.seen_at[source] = self.clock()
        newest = self.max_time.get(source)
        if newest is None or ts > newest:
            self.max_time[source] = newest = ts
        late: list[LateEvent] = []
        for i, spec, size, step, lateness, width in self._plan:
            if ts < newest - lateness:
                if callable(event):
                    event = event()
                late.append(LateEvent(spec.name, "behind_watermark", event,
                                      tuple(format_time_us(s) for s in spec.window_starts(ts))))
                self.late_counts[spec.name] += 1
                continue
            closed = self.closed_upto[i]
            if closed is not None and ts < closed:
                # the newest window holding ts starts at ts - ts % step: if it is closed, all
                # are; else report the older ones that are and count the event in the rest
                every = ts - ts % step + size <= closed
                missed = [s for s in spec.window_starts(ts) if s + size <= closed]
                if missed:
                    if callable(event):
                        event = event()
                    late.append(LateEvent(spec.name, "window_closed", event,
                                          tuple(format_time_us(s) for s in missed)))
                    self.late_counts[spec.name] += 1
                if every:
                    continue
            pane = (ts - ts % width, keys[i])
            panes = self.panes[i]
            agg = panes.get(pane)
            if agg is None:
                agg = panes[pane] = Aggregate(self.max_templates)
            agg.add_sample(sample)
            if text is not None and sample[3] is not None:
                agg.add_text(sample[3], text)
            values = infl[i]
            if values is not None:
                agg.add_values(values, sample[1])
        return late

    def _remember_template(self, event: dict[str, Any]) -> str | None:
        log = event.get("log")
        if not isinstance(log, dict):
            return None
        tid, text = log.get("template_id"), log.get("template")
        if tid is not None and isinstance(text, str):
            self.remember_template(str(tid), text)
            return text
        return None

    def advance(self, source: Hashable, ts: int) -> None:
        """What is known of a source's progress without one of its events being counted
        here (its events went to other window partitions): its newest event time."""
        if self.idle_source_seconds is not None:
            self.seen_at[source] = self.clock()
        if ts > self.max_time.get(source, -(1 << 62)):
            self.max_time[source] = ts

    def watermark(self) -> int | None:
        """Event-time clock (µs) that closes windows: the slowest active source's newest
        event (idle sources are forgotten here); None while ``waiting_for`` an input."""
        if self.waiting_for:
            return None
        if self.idle_source_seconds is not None and self.max_time:
            horizon = self.clock() - self.idle_source_seconds
            for src in [s for s, at in self.seen_at.items() if at < horizon]:
                del self.seen_at[src]
                self.max_time.pop(src, None)
        return min(self.max_time.values()) - self.hold_us if self.max_time else None

    def close_ready(self, now_watermark: float | None = None) -> list[ClosedWindow]:
        """Close and return every window whose end has passed the watermark.

        ``now_watermark``: optional event-time clock in epoch seconds (``math.inf`` closes all);
        each spec closes windows ending at or before it minus the spec's allowed lateness.
        Results are ordered by spec, window start, key.
        """
        if now_watermark is None:
            clock: float | None = self.watermark()
        else:
            clock = now_watermark if math.isinf(now_watermark) else round(now_watermark * 1e6)
        if clock is None:
            return []
        out: list[ClosedWindow] = []
        for i, spec in enumerate(self.specs):
            out.extend(self._close_spec(i, spec, clock - spec.lateness_us))
        if out:
            self._forget_closed_texts()
        return out

    def _forget_closed_texts(self) -> None:
        """Keep template texts only for templates still counted in an open pane: the texts
        are part of every snapshot, so they must scale with open state, not with history."""
        live: set[str] = set()
        for panes in self.panes:
            for agg in panes.values():
                live.update(agg.templates)
        if len(live) < len(self.template_text):
            self.template_text = {t: x for t, x in self.template_text.items() if t in live}

    def _close_spec(self, i: int, spec: WindowSpec, limit: float) -> list[ClosedWindow]:
        size, step, width = spec.size_us, spec.step_us, self._pane_us[i]
        panes = self.panes[i]
        before = self.closed_upto[i]
        # windows (start, key) holding a pane, ending in (before, limit]
        ready: set[tuple[int, tuple]] = set()
        for p, key in panes:
            newest = p - p % step  # the newest window start holding pane p
            if newest + size <= (before if before is not None else -math.inf):
                continue
            s = newest
            while s > p - size:
                end = s + size
                if end <= limit and (before is None or end > before):
                    ready.add((s, key))
                s -= step
        if math.isinf(limit):  # everything closes: remember the newest end closed
            limit = max((s + size for s, _ in ready), default=None)
        if limit is not None and (before is None or limit > before):
            self.closed_upto[i] = int(limit)
        out: list[ClosedWindow] = []
        tumbling = width == size
        for start, key in sorted(ready, key=lambda k: (k[0], _key_sort(k[1]))):
            if tumbling:
                agg = panes.pop((start, key))
            else:
                agg = Aggregate(self.max_templates)
                for p in range(start, start + size, width):
                    part = panes.get((p, key))
                    if part is not None:
                        agg.merge(part)
            doc = window_doc(spec, start, key, agg, self.pipeline,
                             self.template_text, self.top_templates)
            out.append(ClosedWindow(spec, start, key, agg, doc))
        closed = self.closed_upto[i]
        if not tumbling and closed is not None:
            for pane in [pk for pk in panes if pk[0] - pk[0] % step + size <= closed]:
                del panes[pane]  # the last window holding it has closed
        return out

    def flush(self) -> list[ClosedWindow]:
        """Close every open window (end of a replay)."""
        return self.close_ready(math.inf)

    def open_windows(self) -> int:
        """Number of (pane, key) states held (the memory the aggregator uses)."""
        return sum(len(p) for p in self.panes)

    # -- state ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """JSON-serializable state; :meth:`restore` on a fresh aggregator resumes exactly."""
        return {
            "format": self.SNAPSHOT_FORMAT,
            "specs": [s.name for s in self.specs],
            "panes": [
                [[start, list(key), agg.to_dict()] for (start, key), agg in sorted(
                    w.items(), key=lambda kv: (kv[0][0], _key_sort(kv[0][1])))]
                for w in self.panes
            ],
            "closed_upto": list(self.closed_upto),
            "max_time": {str(p): t for p, t in self.max_time.items()},
            "late_counts": dict(self.late_counts),
            "template_text": dict(self.template_text),
            "aliases": dict(self.aliases),
        }

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("format") != self.SNAPSHOT_FORMAT:
            raise ValueError(
                f"window state format {state.get('format', 1)} is not {self.SNAPSHOT_FORMAT}: "
                "it was written by an older Logriver; reset the worker's window table"
            )
        if state["specs"] != [s.name for s in self.specs]:
            raise ValueError(f"snapshot is for windows {state['specs']}")
        self.panes = [
            {(start, tuple(key)): Aggregate.from_dict(d) for start, key, d in w}
            for w in state["panes"]
        ]
        self.closed_upto = list(state["closed_upto"])
        self.max_time = {_source(p): t for p, t in state["max_time"].items()}
        now = self.clock()  # restored sources hold the watermark until they are idle again
        self.seen_at = dict.fromkeys(self.max_time, now) if self.idle_source_seconds is not None else {}
        self.late_counts = dict(state["late_counts"])
        self.template_text = dict(state["template_text"])
        self.aliases = dict(state.get("aliases", {}))


def _source(name: str) -> Hashable:
    """A source as written in a snapshot (JSON keys are strings): integers come back as int."""
    return int(name) if name.lstrip("-").isdigit() else name


def batch_recompute(
    events: Iterable[dict[str, Any]],
    specs: Sequence[WindowSpec],
    pipeline: str = "default",
    max_templates: int = 2000,
    top_templates: int = 200,
) -> list[dict[str, Any]]:
    """Reference: group all events (valid timestamps) into every window, no lateness, no order."""
    groups: list[dict[tuple[int, tuple], Aggregate]] = [{} for _ in specs]
    paths = [s.split_paths() for s in specs]
    infl_paths = [tuple(tuple(f.split(".")) for f in s.influencers) for s in specs]
    texts: dict[str, str] = {}
    for ev in events:
        ts = parse_time_us(ev.get("@timestamp"))
        if ts is None:
            continue
        tid, text = (get_path(ev, p) for p in _TPL_PATHS)
        if tid is not None and isinstance(text, str):
            texts.setdefault(str(tid), text)
        sample = sample_of(ev)
        for i, spec in enumerate(specs):
            key = spec.key_of(ev, paths[i])
            values = tuple(_key_value(get_path(ev, p)) for p in infl_paths[i])
            for s in spec.window_starts(ts):
                agg = groups[i].setdefault((s, key), Aggregate(max_templates))
                agg.add_sample(sample)
                if values:
                    agg.add_values(values, sample[1])
    docs = []
    for i, spec in enumerate(specs):
        for (start, key) in sorted(groups[i], key=lambda k: (k[0], _key_sort(k[1]))):
            docs.append(window_doc(spec, start, key, groups[i][(start, key)], pipeline,
                                   texts, top_templates))
    return docs
