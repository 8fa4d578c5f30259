"""Per (window, key) state: small, JSON-serializable and exactly mergeable.

Template counts are exact while a window holds at most ``max_templates`` distinct templates.
Past that the state keeps the ``max_templates`` templates whose 64-bit hash is smallest
(a bottom-k / KMV sample): their counts stay exact, the distinct count becomes the KMV
estimate, and ``truncated`` is set. The choice depends only on the template ids, never on
arrival order, so merging and reordering still give identical state.

Influencer values (``WindowSpec.influencers``: the pods of a service, the services of a
namespace) are counted per field as ``{value: [count, error count]}``, bounded the same way
(at most ``max_values`` values per field, the smallest hashes kept past that).

Template texts: one per counted template, the text its events were emitted with; when a
template's events carry several (each raw partition's miner generalizes on its own schedule),
the most general wins (most ``<*>``, then the smallest), so the text too depends only on the
window's events, never on the order they arrived in (live and replay name templates alike).

Latency percentiles come from a DDSketch (``ddsketch`` package, 1 % relative accuracy); the
state stores its positive bins as ``{bin key: count}``. Bin counts are whole numbers, so
merged sketches are identical whatever the merge order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ddsketch import DDSketch

ERROR_LEVELS = frozenset({"error", "fatal", "critical", "crit", "alert", "emerg", "emergency"})
LATENCY_ACCURACY = 0.01
PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p95", 0.95), ("p99", 0.99))
_HASH_SPACE = float(2**64)


@lru_cache(maxsize=65536)
def template_hash(template_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(template_id.encode(), digest_size=8).digest(), "big")


def _bottom_k(counts: dict[str, Any], k: int, threshold: int | None) -> tuple[dict[str, Any], int | None]:
    """Keep entries with hash <= threshold, then the k smallest hashes; returns the new threshold."""
    if threshold is not None:
        counts = {t: c for t, c in counts.items() if template_hash(t) <= threshold}
    if len(counts) <= k:
        return counts, threshold
    kept = sorted(counts, key=template_hash)[:k]
    return {t: counts[t] for t in kept}, template_hash(kept[-1])


def utf8_len(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (lone surrogates count as 3), without encoding ASCII text."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


Sample = tuple[int, bool, bool, "str | None", bool, "float | None"]


def more_general(a: str, b: str) -> bool:
    """Whether template text ``a`` names a template better than ``b``: more wildcards (a miner
    only ever turns tokens into ``<*>``), then the smaller text; a total order, so the choice
    does not depend on which came first."""
    na, nb = a.count("<*>"), b.count("<*>")
    return na > nb or (na == nb and a < b)


def sample_of(event: dict[str, Any]) -> Sample:
    """What an aggregate counts of one event: (bytes, is_error, template_is_new, template id,
    is_5xx, duration in ms). ``logriver.bytes`` (set in compact window input) wins over
    measuring ``message``."""
    lr = event.get("logriver")
    size = lr.get("bytes") if isinstance(lr, dict) else None
    if not isinstance(size, int):
        msg = event.get("message")
        size = utf8_len(msg) if isinstance(msg, str) else 0
    log = event.get("log") or {}
    level = log.get("severity") or log.get("level")  # normalized, else as written
    is_error = (level if isinstance(level, str) else str(level or "")).lower() in ERROR_LEVELS
    is_new = bool(isinstance(lr, dict) and lr.get("template_is_new"))
    tid = log.get("template_id")
    is_5xx = False
    http = event.get("http")
    if isinstance(http, dict):
        status = (http.get("response") or {}).get("status_code")
        is_5xx = isinstance(status, int) and 500 <= status <= 599
    duration_ms = None
    ev = event.get("event")
    if isinstance(ev, dict):
        dur = ev.get("duration")
        if isinstance(dur, (int, float)) and not isinstance(dur, bool):
            duration_ms = max(dur, 0) / 1e6  # ns -> ms
    return size, is_error, is_new, None if tid is None else str(tid), is_5xx, duration_ms


class Aggregate:
    """Counters of one (window, key). ``add`` an event, ``merge`` another aggregate."""

    __slots__ = (
        "by",
        "by_threshold",
        "bytes",
        "count",
        "error_count",
        "error_templates",
        "http_5xx",
        "latency",
        "max_templates",
        "max_values",
        "new_templates",
        "templates",
        "texts",
        "threshold",
    )

    def __init__(self, max_templates: int = 2000, max_values: int = 256) -> None:
        self.count = 0
        self.error_count = 0
        self.bytes = 0
        self.new_templates = 0
        self.http_5xx = 0
        self.templates: dict[str, int] = {}
        self.error_templates: dict[str, int] = {}
        self.texts: dict[str, str] = {}  # template id -> its most general text in the window
        self.threshold: int | None = None  # hash cut-off once truncated (bottom-k)
        self.max_templates = max_templates
        self.latency: DDSketch | None = None
        self.max_values = max_values
        # per influencer field (in the spec's order): value -> [count, error count]
        self.by: list[dict[str, list[int]]] | None = None
        self.by_threshold: list[int | None] | None = None

    # -- updating -------------------------------------------------------------------------
    def add(self, event: dict[str, Any]) -> None:
        """Count one structured event (and its template's text)."""
        sample = sample_of(event)
        self.add_sample(sample)
        text = (event.get("log") or {}).get("template")
        if sample[3] is not None and isinstance(text, str):
            self.add_text(sample[3], text)

    def add_sample(self, sample: Sample) -> None:
        """Count one event given as its :func:`sample_of` (extracted once, counted in every
        window spec it belongs to)."""
        size, is_error, is_new, tid, is_5xx, duration_ms = sample
        self.count += 1
        self.bytes += size
        if is_error:
            self.error_count += 1
        if is_new:
            self.new_templates += 1
        if tid is not None:
            self._count_template(tid, is_error)
        if is_5xx:
            self.http_5xx += 1
        if duration_ms is not None:
            if self.latency is None:
                self.latency = DDSketch(LATENCY_ACCURACY)
            self.latency.add(duration_ms)

    def add_text(self, tid: str, text: str) -> None:
        """The text an event of template ``tid`` was emitted with (see :func:`more_general`)."""
        if tid not in self.templates:
            return
        cur = self.texts.get(tid)
        if cur != text and (cur is None or more_general(text, cur)):
            self.texts[tid] = text

    def add_values(self, values: Sequence[Any], is_error: bool) -> None:
        """Count one event's influencer values (one per influencer field; None: absent)."""
        by, cut = self.by, self.by_threshold
        if by is None or cut is None:
            by = self.by = [{} for _ in values]
            cut = self.by_threshold = [None for _ in values]
        for i, v in enumerate(values):
            if v is None:
                continue
            v = v if type(v) is str else str(v)
            if cut[i] is not None and template_hash(v) > cut[i]:  # type: ignore[operator]
                continue
            counts = by[i]
            cur = counts.get(v)
            if cur is None:
                counts[v] = [1, 1 if is_error else 0]
                if len(counts) > self.max_values:
                    by[i], cut[i] = _bottom_k(counts, self.max_values, cut[i])
            else:
                cur[0] += 1
                if is_error:
                    cur[1] += 1

    def _merge_values(self, other: Aggregate) -> None:
        if other.by is None or other.by_threshold is None:
            return
        if self.by is None or self.by_threshold is None:
            self.by = [{} for _ in other.by]
            self.by_threshold = [None for _ in other.by]
        for i, counts in enumerate(other.by):
            mine = self.by[i]
            for v, (c, e) in counts.items():
                cur = mine.get(v)
                if cur is None:
                    mine[v] = [c, e]
                else:
                    cur[0] += c
                    cur[1] += e
            cuts = [t for t in (self.by_threshold[i], other.by_threshold[i]) if t is not None]
            cut = min(cuts) if cuts else None
            if cut is not None or len(mine) > self.max_values:
                self.by[i], self.by_threshold[i] = _bottom_k(mine, self.max_values, cut)

    def _count_template(self, tid: str, is_error: bool) -> None:
        if self.threshold is not None and template_hash(tid) > self.threshold:
            return
        self.templates[tid] = self.templates.get(tid, 0) + 1
        if is_error:
            self.error_templates[tid] = self.error_templates.get(tid, 0) + 1
        if len(self.templates) > self.max_templates:
            self._truncate()

    def alias(self, absorbed: str, survivor: str) -> None:
        """Template ``absorbed`` was merged into ``survivor`` (``streams.templates``): count
        its events there."""
        for counts in (self.templates, self.error_templates):
            c = counts.pop(absorbed, 0)
            if c:
                counts[survivor] = counts.get(survivor, 0) + c
        text = self.texts.pop(absorbed, None)
        if text is not None and survivor not in self.texts and survivor in self.templates:
            self.texts[survivor] = text

    def _truncate(self) -> None:
        self.templates, self.threshold = _bottom_k(self.templates, self.max_templates, self.threshold)
        self.error_templates = {
            t: c for t, c in self.error_templates.items() if t in self.templates
        }
        self.texts = {t: x for t, x in self.texts.items() if t in self.templates}

    def merge(self, other: Aggregate) -> Aggregate:
        """Fold ``other`` into this aggregate (in place) and return self."""
        self.count += other.count
        self.error_count += other.error_count
        self.bytes += other.bytes
        self.new_templates += other.new_templates
        self.http_5xx += other.http_5xx
        for t, c in other.templates.items():
            self.templates[t] = self.templates.get(t, 0) + c
        for t, c in other.error_templates.items():
            self.error_templates[t] = self.error_templates.get(t, 0) + c
        for t, x in other.texts.items():
            cur = self.texts.get(t)
            if cur is None or (cur != x and more_general(x, cur)):
                self.texts[t] = x
        self.max_templates = min(self.max_templates, other.max_templates)
        thresholds = [t for t in (self.threshold, other.threshold) if t is not None]
        self.threshold = min(thresholds) if thresholds else None
        if self.threshold is not None or len(self.templates) > self.max_templates:
            self._truncate()
        if other.latency is not None:
            if self.latency is None:
                self.latency = DDSketch(LATENCY_ACCURACY)
            self.latency.merge(other.latency)
        self._merge_values(other)
        return self

    # -- reading --------------------------------------------------------------------------
    @property
    def truncated(self) -> bool:
        return self.threshold is not None

    @property
    def distinct_templates(self) -> int:
        """Exact number of distinct templates, or the KMV estimate once truncated."""
        if self.threshold is None:
            return len(self.templates)
        return round((len(self.templates) - 1) * _HASH_SPACE / (self.threshold + 1))

    def latency_percentiles(self) -> dict[str, float] | None:
        """p50/p90/p95/p99 in ms (1 % relative accuracy), plus ``count``; None without samples."""
        sk = self.latency
        if sk is None or sk.count == 0:
            return None
        out: dict[str, float] = {n: round(sk.get_quantile_value(q), 3) for n, q in PERCENTILES}
        out["count"] = int(sk.count)
        return out

    # -- serialization --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "count": self.count,
            "error_count": self.error_count,
            "bytes": self.bytes,
            "new_templates": self.new_templates,
            "http_5xx": self.http_5xx,
            "templates": dict(self.templates),
            "error_templates": dict(self.error_templates),
            "threshold": self.threshold,
            "max_templates": self.max_templates,
            "latency": None,
        }
        if self.texts:
            d["texts"] = dict(self.texts)
        if self.by is not None:
            d["by"] = [{v: list(ce) for v, ce in counts.items()} for counts in self.by]
            d["by_threshold"] = list(self.by_threshold or ())
            d["max_values"] = self.max_values
        sk = self.latency
        if sk is not None:
            store = sk._store  # ddsketch has no public store accessor; bins are its state
            bins = {
                str(store.offset + i): int(c) for i, c in enumerate(store.bins) if c
            }
            d["latency"] = {"bins": bins, "zero": int(sk._zero_count)}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Aggregate:
        agg = cls(d.get("max_templates", 2000), d.get("max_values", 256))
        agg.count = d["count"]
        agg.error_count = d["error_count"]
        agg.bytes = d["bytes"]
        agg.new_templates = d["new_templates"]
        agg.http_5xx = d.get("http_5xx", 0)
        agg.templates = dict(d["templates"])
        agg.error_templates = dict(d["error_templates"])
        agg.threshold = d.get("threshold")
        agg.texts = dict(d.get("texts") or {})
        by = d.get("by")
        if by is not None:
            agg.by = [{v: list(ce) for v, ce in counts.items()} for counts in by]
            agg.by_threshold = list(d["by_threshold"])
        lat = d.get("latency")
        if lat is not None:
            sk = DDSketch(LATENCY_ACCURACY)
            for key in sorted(lat["bins"], key=int):
                sk._store.add(int(key), float(lat["bins"][key]))
            sk._zero_count = float(lat["zero"])
            sk._count = sk._store.count + sk._zero_count
            agg.latency = sk
        return agg

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Aggregate) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Aggregate(count={self.count}, errors={self.error_count}, templates={len(self.templates)})"
