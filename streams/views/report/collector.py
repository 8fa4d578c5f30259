"""Aggregate a replay as it runs, in bounded memory, for the HTML report.

A :class:`ReportCollector` is fed the events and dead letters of each batch (its
:meth:`~ReportCollector.on_events` has the signature of ``replay_file``'s ``on_events``
callback) and anomaly documents (:meth:`~ReportCollector.add_anomalies`). It never keeps the
events themselves:

* time buckets: counts per level, per service and of new templates, per bucket of event time.
  The bucket size starts at ``initial_bucket_seconds`` and grows through a ladder of sizes,
  each a multiple of the one before (1 s, 5 s, 10 s, 30 s, 1 min, 5 min, ...), whenever the
  covered span would need more than ``max_buckets`` buckets; buckets are merged exactly.
* templates: count, levels, first/last seen, and at most ``examples_per_template`` examples
  (message and parameters) per template id, plus the most frequent values of each parameter
  position (``max_param_values`` per position). Past ``max_templates`` distinct ids, further
  ids are counted together as "other templates".
* services: exact totals for ``max_services`` services, the rest as ``(other)``.
* dead letters: exact counts per (stage, reason) with a few examples each.
* anomalies: the ``max_anomalies`` most severe documents (severity, then score), plus exact
  counts per severity and detector.

Counting follows :class:`streams.replay.runner.Summary` (level ``-`` when absent, templates by
``log.template_id``, dead letters as ``stage:reason``) so the report and the summary of the
same run show the same numbers.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

Doc = dict[str, Any]

# Each size is a multiple of the previous one, so buckets merge exactly when the size grows.
BUCKET_LADDER = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 10800, 21600, 43200, 86400,
                 7 * 86400, 28 * 86400, 364 * 86400)
SEVERITY_RANK = {"critical": 3, "major": 2, "minor": 1}
OTHER = "(other)"
UNKNOWN_SERVICE = "-"
MAX_MESSAGE = 500
MAX_PARAM = 120
MAX_TEMPLATE = 2000


def service_of(event: Doc) -> str:
    """``service.name``, else ``kubernetes.container.name``, else ``kubernetes.namespace``."""
    svc = event.get("service")
    if isinstance(svc, dict) and svc.get("name"):
        return str(svc["name"])
    k8s = event.get("kubernetes")
    if isinstance(k8s, dict):
        cont = k8s.get("container")
        if isinstance(cont, dict) and cont.get("name"):
            return str(cont["name"])
        if k8s.get("namespace"):
            return str(k8s["namespace"])
    return UNKNOWN_SERVICE


def is_new_template(event: Doc) -> bool:
    lg = event.get("log") or {}
    lr = event.get("logriver") or {}
    return bool(lg.get("template_is_new") or lr.get("template_is_new"))


@lru_cache(maxsize=8192)
def _second_epoch(prefix: str) -> int:
    return int(datetime.fromisoformat(prefix).replace(tzinfo=UTC).timestamp())


def epoch_seconds(ts: Any) -> int | None:
    """Whole seconds since the epoch of an RFC 3339 timestamp (None if unparsable)."""
    if not isinstance(ts, str) or len(ts) < 19:
        return None
    tail = ts[19:]
    try:
        # Fast path: UTC ("Z" or no offset) with an optional fraction; cached per second.
        if not tail or tail[-1] in "Zz" or ("+" not in tail and "-" not in tail):
            return _second_epoch(ts[:19])
        return int(datetime.fromisoformat(ts.replace("z", "Z")).timestamp())
    except ValueError:
        return None


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _short(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Bucket:
    total: int = 0
    levels: Counter = field(default_factory=Counter)
    services: Counter = field(default_factory=Counter)
    new_templates: int = 0
    anomalies: int = 0

    def merge(self, other: Bucket) -> None:
        self.total += other.total
        self.levels.update(other.levels)
        self.services.update(other.services)
        self.new_templates += other.new_templates
        self.anomalies += other.anomalies


@dataclass
class TemplateStat:
    id: str
    template: str
    count: int = 0
    first_seen: int | None = None
    last_seen: int | None = None
    new_at: int | None = None  # event time of the event that created it (template_is_new)
    levels: Counter = field(default_factory=Counter)
    services: Counter = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)
    params: list[Counter] = field(default_factory=list)  # per position: value -> count
    params_other: list[int] = field(default_factory=list)  # per position: values not kept


    def merge(self, other: TemplateStat, max_examples: int) -> None:
        """Fold the statistics of a template merged into this one."""
        self.count += other.count
        self.levels.update(other.levels)
        self.services.update(other.services)
        if other.first_seen is not None and (self.first_seen is None or other.first_seen < self.first_seen):
            self.first_seen = other.first_seen
        if other.last_seen is not None and (self.last_seen is None or other.last_seen > self.last_seen):
            self.last_seen = other.last_seen
        if other.new_at is not None and (self.new_at is None or other.new_at < self.new_at):
            self.new_at = other.new_at
        self.examples = (self.examples + other.examples)[:max_examples]


class ReportCollector:
    """Bounded aggregation of one run for :func:`streams.views.report.render_html`."""

    def __init__(
        self,
        *,
        title: str = "Logriver replay report",
        max_buckets: int = 240,
        initial_bucket_seconds: int = 1,
        examples_per_template: int = 3,
        max_templates: int = 20_000,
        max_services: int = 200,
        max_param_positions: int = 8,
        max_param_values: int = 10,
        max_anomalies: int = 2_000,
        examples_per_dead_letter_reason: int = 5,
    ) -> None:
        if initial_bucket_seconds not in BUCKET_LADDER:
            raise ValueError(f"initial_bucket_seconds must be one of {BUCKET_LADDER}")
        if max_buckets < 2:
            raise ValueError("max_buckets must be >= 2")
        self.title = title
        self.max_buckets = max_buckets
        self.bucket_seconds = initial_bucket_seconds
        self.examples_per_template = examples_per_template
        self.max_templates = max_templates
        self.max_services = max_services
        self.max_param_positions = max_param_positions
        self.max_param_values = max_param_values
        self.max_anomalies = max_anomalies
        self.examples_per_dead_letter_reason = examples_per_dead_letter_reason

        self.events = 0
        self.events_without_time = 0
        self.by_level: Counter = Counter()
        self.by_service: Counter = Counter()
        self.buckets: dict[int, Bucket] = {}
        self.min_time: int | None = None
        self.max_time: int | None = None
        self.templates: dict[str, TemplateStat] = {}
        self.events_with_template = 0
        self.other_template_ids = 0  # distinct ids past max_templates (approximate: not kept)
        self.other_template_events = 0
        self.new_templates = 0
        self.dead_letters = 0
        self.dead_letter_reasons: Counter = Counter()  # "stage:reason" -> count
        self.dead_letter_examples: dict[str, list[dict[str, Any]]] = {}
        self.anomalies_total = 0
        self.anomalies_by_severity: Counter = Counter()
        self.anomalies_by_detector: Counter = Counter()
        self._anomaly_heap: list[tuple[int, float, int, Doc]] = []
        self._anomaly_seq = itertools.count()
        self._alerts: dict[str, Doc] = {}  # alert id -> its latest version
        self.run: dict[str, Any] = {}

    # -- feeding ------------------------------------------------------------------------
    def on_events(self, events: list[Doc], dead_letters: list[Doc]) -> None:
        """The ``on_events`` callback of :func:`streams.replay.runner.replay_file`."""
        self.add_events(events)
        self.add_dead_letters(dead_letters)

    __call__ = on_events

    def add_events(self, events: Iterable[Doc]) -> None:
        for ev in events:
            self._add_event(ev)

    def _add_event(self, ev: Doc) -> None:
        self.events += 1
        lg = ev.get("log") or {}
        level = lg.get("severity") or lg.get("level", "-") or "-"
        self.by_level[level] += 1
        service = service_of(ev)
        if service not in self.by_service and len(self.by_service) >= self.max_services:
            service = OTHER
        self.by_service[service] += 1
        new = is_new_template(ev)
        if new:
            self.new_templates += 1

        t = epoch_seconds(ev.get("@timestamp"))
        if t is None:
            self.events_without_time += 1
        else:
            b = self._bucket(t)
            b.total += 1
            b.levels[level] += 1
            b.services[service] += 1
            if new:
                b.new_templates += 1

        tid = lg.get("template_id")
        if not tid:
            return
        self.events_with_template += 1
        ts = self.templates.get(tid)
        if ts is None:
            if len(self.templates) >= self.max_templates:
                self.other_template_events += 1
                if new:
                    self.other_template_ids += 1
                return
            ts = self.templates[tid] = TemplateStat(tid, _short(lg.get("template", ""), MAX_TEMPLATE))
        ts.count += 1
        ts.levels[level] += 1
        if len(ts.services) < 20 or service in ts.services:
            ts.services[service] += 1
        if t is not None:
            if ts.first_seen is None or t < ts.first_seen:
                ts.first_seen = t
            if ts.last_seen is None or t > ts.last_seen:
                ts.last_seen = t
            if new and ts.new_at is None:
                ts.new_at = t
        params = lg.get("template_params") or []
        if len(ts.examples) < self.examples_per_template:
            ts.examples.append({
                "time": ev.get("@timestamp"),
                "level": level,
                "service": service,
                "message": _short(ev.get("message", ""), MAX_MESSAGE),
                "params": [_short(p, MAX_PARAM) for p in params[: self.max_param_positions]],
            })
        for i, p in enumerate(params[: self.max_param_positions]):
            while len(ts.params) <= i:
                ts.params.append(Counter())
                ts.params_other.append(0)
            values = ts.params[i]
            p = _short(p, MAX_PARAM)
            if p in values or len(values) < self.max_param_values:
                values[p] += 1
            else:
                ts.params_other[i] += 1

    def add_dead_letters(self, letters: Iterable[Doc]) -> None:
        for dl in letters:
            self.dead_letters += 1
            key = f"{dl.get('stage', '?')}:{dl.get('reason', '?')}"
            self.dead_letter_reasons[key] += 1
            examples = self.dead_letter_examples.setdefault(key, [])
            if len(examples) < self.examples_per_dead_letter_reason:
                examples.append({
                    "time": dl.get("time"),
                    "stage": dl.get("stage", "?"),
                    "reason": dl.get("reason", "?"),
                    "step": dl.get("step"),
                    "detail": _short(dl.get("detail") or "", 1000),
                    "original": _short(dl.get("original") or "", 400),
                    "original_encoding": dl.get("original_encoding"),
                    "event_id": dl.get("event_id"),
                })

    def add_anomalies(self, docs: Iterable[Doc]) -> None:
        """Alert documents (``streams.anomaly.alerts``; plain findings too). Keeps the
        ``max_anomalies`` most severe; counts every one. An alert published again (same
        ``alert.id``, as it grows or closes) replaces its earlier version."""
        for doc in docs:
            aid = (doc.get("alert") or {}).get("id")
            known = self._alerts.get(aid) if aid is not None else None
            if known is not None:
                self._count_alert(known, -1)
                self._count_alert(doc, +1)
                known.clear()
                known.update(doc)  # the kept entry now shows the latest version
                continue
            if aid is not None:
                doc = dict(doc)
                self._alerts[aid] = doc
            self.anomalies_total += 1
            sev = str(doc.get("severity") or "minor")
            self.anomalies_by_severity[sev] += 1
            self.anomalies_by_detector[str(doc.get("detector") or "?")] += 1
            t = epoch_seconds(doc.get("@timestamp") or (doc.get("window") or {}).get("start"))
            if t is not None:
                self._bucket(t).anomalies += 1
            try:
                score = float(doc.get("score") or 0.0)
            except (TypeError, ValueError):
                score = 0.0
            item = (SEVERITY_RANK.get(sev, 0), score, -next(self._anomaly_seq), doc)
            if len(self._anomaly_heap) < self.max_anomalies:
                heapq.heappush(self._anomaly_heap, item)
            elif item[:3] > self._anomaly_heap[0][:3]:
                heapq.heapreplace(self._anomaly_heap, item)

    def resolve_aliases(self, aliases: dict[str, str]) -> None:
        """Templates merged into others (merged id -> surviving id, ``streams.templates``)
        count under the survivor: a merged template is one row."""
        for absorbed in list(aliases):
            survivor, seen = aliases[absorbed], 0
            while survivor in aliases and seen < 64:
                survivor, seen = aliases[survivor], seen + 1
            stat = self.templates.pop(absorbed, None)
            if stat is None or survivor == absorbed:
                continue
            into = self.templates.get(survivor)
            if into is None:
                stat.id = survivor
                self.templates[survivor] = stat
            else:
                into.merge(stat, self.examples_per_template)

    def set_run(self, summary: Any = None, **info: Any) -> None:
        """Facts about the run shown in the header: ``summary`` (a runner ``Summary``: lines,
        seconds, template changes, merged templates, which are resolved here) and free-form
        ``info`` (source file, pipeline...)."""
        if summary is not None:
            self.run["lines"] = summary.lines
            self.run["seconds"] = round(summary.seconds, 3)
            self.run["template_changes"] = summary.template_changes
            if getattr(summary, "aliases", None):
                self.resolve_aliases(summary.aliases)
        self.run.update({k: v for k, v in info.items() if v is not None})

    # -- time buckets -------------------------------------------------------------------
    def _bucket(self, t: int) -> Bucket:
        if self.min_time is None or t < self.min_time:
            self.min_time = t
        if self.max_time is None or t > self.max_time:
            self.max_time = t
        size = self.bucket_seconds
        while (self.max_time // size - self.min_time // size + 1) > self.max_buckets:
            size = self._grow()
        idx = t // size
        b = self.buckets.get(idx)
        if b is None:
            b = self.buckets[idx] = Bucket()
        return b

    def _grow(self) -> int:
        old = self.bucket_seconds
        bigger = [s for s in BUCKET_LADDER if s > old]
        new = bigger[0] if bigger else old * 2
        merged: dict[int, Bucket] = {}
        for idx, b in self.buckets.items():
            nidx = idx * old // new
            tgt = merged.get(nidx)
            if tgt is None:
                merged[nidx] = b
            else:
                tgt.merge(b)
        self.buckets = merged
        self.bucket_seconds = new
        return new

    def timeline(self) -> list[tuple[int, Bucket]]:
        """Every bucket from the first to the last (empty ones included), as (start, bucket)."""
        if not self.buckets:
            return []
        lo, hi = min(self.buckets), max(self.buckets)
        empty = Bucket()
        return [(i * self.bucket_seconds, self.buckets.get(i, empty)) for i in range(lo, hi + 1)]

    # -- reading ------------------------------------------------------------------------
    @property
    def distinct_templates(self) -> int:
        return len(self.templates) + self.other_template_ids

    def top_templates(self, n: int | None = None) -> list[TemplateStat]:
        ranked = sorted(self.templates.values(), key=lambda s: (-s.count, s.id))
        return ranked if n is None else ranked[:n]

    def _count_alert(self, doc: Doc, n: int) -> None:
        for counter, value in ((self.anomalies_by_severity, str(doc.get("severity") or "minor")),
                               (self.anomalies_by_detector, str(doc.get("detector") or "?"))):
            counter[value] += n
            if counter[value] <= 0:
                del counter[value]

    def anomalies(self) -> list[Doc]:
        """Kept anomaly documents, in time order."""
        docs = [item[3] for item in self._anomaly_heap]
        return sorted(docs, key=lambda d: (str(d.get("@timestamp") or ""), -float(d.get("score") or 0)))

    @property
    def anomalies_dropped(self) -> int:
        return self.anomalies_total - len(self._anomaly_heap)

    def totals(self) -> dict[str, Any]:
        """The headline numbers, comparable with ``Summary.as_dict()``."""
        return {
            "events": self.events,
            "dead_letters": self.dead_letters,
            "distinct_templates": self.distinct_templates,
            "new_templates": self.new_templates,
            "anomalies": self.anomalies_total,
            "by_level": dict(self.by_level.most_common()),
            "by_service": dict(self.by_service.most_common()),
            "dead_letter_reasons": dict(self.dead_letter_reasons.most_common()),
            "bucket_seconds": self.bucket_seconds,
            "buckets": len(self.timeline()),
            "first_event": iso(self.min_time) if self.min_time is not None else None,
            "last_event": iso(self.max_time) if self.max_time is not None else None,
        }
