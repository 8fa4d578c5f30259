"""Influencers: what moved in an anomalous window, with expected vs observed counts.

Each series (window name + key) keeps a baseline: an exponentially weighted mean of its
count, of each template's count and of each influencer value's count (the pods of a
service, the services of a namespace: ``WindowSpec.influencers``), learnt from the windows
that raised nothing. An anomalous window is explained by the series itself (count vs
expected) and by the templates and values whose counts moved most, ranked by
``|A(observed) - A(expected)|`` with ``A(x) = 2 sqrt(x + 3/8)`` (Anscombe: Poisson noise of
about one unit at any rate), the way Elastic ML lists influencers.
"""

from __future__ import annotations

import math
from typing import Any

Doc = dict[str, Any]
TEMPLATE_FIELD = "log.template_id"


def anscombe_gap(observed: float, expected: float) -> float:
    """How far ``observed`` is from ``expected`` in Poisson noise units (signed)."""
    return 2.0 * (math.sqrt(observed + 0.375) - math.sqrt(max(expected, 0.0) + 0.375))


def _decay(mean: dict[str, float], observed: dict[str, float], alpha: float,
           limit: int) -> dict[str, float]:
    """EWMA of counts by name: absent names count 0; the ``limit`` largest means are kept."""
    out = {k: (1 - alpha) * v for k, v in mean.items()}
    for k, c in observed.items():
        out[k] = out.get(k, 0.0) + alpha * c
    out = {k: round(v, 6) for k, v in out.items() if v >= 0.005}
    if len(out) > limit:
        out = dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0]))[:limit])
    return out


def observed_values(doc: Doc) -> dict[str, dict[str, float]]:
    """A window document's counts per influencer field: templates and breakdown values."""
    out: dict[str, dict[str, float]] = {
        TEMPLATE_FIELD: {t["id"]: t["count"] for t in doc.get("template_counts") or ()}}
    for b in doc.get("breakdown") or ():
        out.setdefault(b["field"], {})[str(b["value"])] = b["count"]
    return out


class Baselines:
    """Per series: EWMA (``alpha``) of the count and of each template and influencer value;
    at most ``limit`` names per field."""

    def __init__(self, alpha: float = 0.2, limit: int = 200) -> None:
        self.alpha = alpha
        self.limit = limit
        self.series: dict[str, dict[str, Any]] = {}  # sid -> {"n", "count", "fields"}

    def learn(self, sid: str, doc: Doc) -> None:
        """Fold a window that raised nothing into its series' baseline."""
        st = self.series.get(sid)
        obs = observed_values(doc)
        if st is None:
            st = self.series[sid] = {"n": 0, "count": 0.0, "fields": {}, "texts": {}}
        a = max(self.alpha, 1.0 / (st["n"] + 1))  # a plain mean while the history is short
        st["n"] += 1
        st["count"] = round((1 - a) * st["count"] + a * float(doc.get("count") or 0), 6)
        fields = st["fields"]
        for f in sorted(set(fields) | set(obs)):
            fields[f] = _decay(fields.get(f, {}), obs.get(f, {}), a, self.limit)
        texts = {t["id"]: t["template"] for t in doc.get("template_counts") or ()
                 if t.get("template")}
        old = st["texts"]
        st["texts"] = {t: texts.get(t) or old.get(t) for t in fields.get(TEMPLATE_FIELD, {})
                       if t in texts or t in old}

    def expected_count(self, sid: str) -> float | None:
        st = self.series.get(sid)
        return None if st is None else st["count"]

    def influencers(self, sid: str, doc: Doc, top: int = 5,
                    min_gap: float = 2.0) -> list[dict[str, Any]]:
        """The values that moved most in ``doc``, per field (at most ``top``, each by at
        least ``min_gap`` noise units), with expected and observed."""
        st = self.series.get(sid) or {"fields": {}, "texts": {}}
        texts = {**st["texts"], **{t["id"]: t.get("template") for t in doc.get("template_counts") or ()}}
        errors = {(b["field"], str(b["value"])): b.get("error_count", 0)
                  for b in doc.get("breakdown") or ()}
        out: list[dict[str, Any]] = []
        obs_all = observed_values(doc)
        for field in sorted(set(obs_all) | set(st["fields"])):
            obs, exp = obs_all.get(field, {}), st["fields"].get(field, {})
            ranked = sorted(((anscombe_gap(obs.get(v, 0), exp.get(v, 0.0)), v)
                             for v in set(obs) | set(exp)), key=lambda x: (-abs(x[0]), x[1]))
            for gap, v in ranked[:top]:
                if abs(gap) < min_gap:
                    break
                item = {"field": field, "value": v, "expected": round(exp.get(v, 0.0), 3),
                        "observed": obs.get(v, 0), "score": round(gap, 3)}
                if field == TEMPLATE_FIELD:
                    item["template"] = texts.get(v)
                if (field, v) in errors:
                    item["error_count"] = errors[(field, v)]
                out.append(item)
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "series": self.series}

    def restore(self, state: dict[str, Any]) -> None:
        self.series = {sid: {"n": st["n"], "count": st["count"],
                             "fields": {f: dict(v) for f, v in st["fields"].items()},
                             "texts": dict(st["texts"])}
                       for sid, st in state["series"].items()}

    def forget(self, keep: set[str]) -> None:
        """Drop the baselines of series no longer tracked."""
        for sid in [s for s in self.series if s not in keep]:
            del self.series[sid]
