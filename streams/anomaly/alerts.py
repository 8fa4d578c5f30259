"""Alerts: one per incident, from the detectors' per-window findings.

Every detector that flags a (window, key) produces a *finding* (``anomaly_doc``). Findings of
one series (window name + key) in consecutive windows, whatever the detector, make one
alert: it opens at the first anomalous window, is extended (``alert.end``, ``alert.windows``,
severity the highest so far, influencers summed) by each following anomalous window, stays
open through up to ``gap`` quiet windows, and closes at the next one. Each change is
published again under the same id (``event_id("alert", pipeline, series, first window)``),
so an update overwrites the document in Elasticsearch.

An alert document keeps the fields of a finding (``window`` is its latest anomalous window,
``detector``/``score``/``threshold``/``model`` its strongest finding, ``explanation`` the
latest window's) and adds ``alert`` (id, start, end, windows, status), ``detectors``,
``influencers``, and what it is about as filterable fields: its key fields at their own path
(``service.name``, ``kubernetes.namespace``), and the top influencer values of each
influencer field (``kubernetes.pod.name``, ``log.template_id``...) that moved the alert's
way: up for bursts, errors, new templates, latency; down for a volume drop (templates a
detector blamed itself, a never-seen one for instance, come first). A series keyed
without ``service.name`` (a namespace-level window) names the service that moved most.
"""

from __future__ import annotations

from typing import Any

from streams.anomaly.influence import TEMPLATE_FIELD, anscombe_gap
from streams.transport.events import format_time_us
from streams.transport.records import event_id

Doc = dict[str, Any]
SEVERITY_RANK = {"minor": 1, "major": 2, "critical": 3}
SERVICE_FIELD = "service.name"
TOP_PER_FIELD = 10
KEEP_PER_FIELD = 50


def _ratio(finding: Doc) -> float:
    th = finding.get("threshold") or 0.0
    return float(finding["score"]) / th if th > 0 else float(finding["score"])


def _set_path(doc: Doc, path: str, value: Any) -> None:
    parts = path.split(".")
    cur = doc
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = cur[p] = {}
        cur = nxt
    cur[parts[-1]] = value


class AlertBook:
    """Open alerts by series; ``window`` folds one scored window into them."""

    def __init__(self, pipeline: str, gap: int = 1) -> None:
        self.pipeline = pipeline
        self.gap = gap
        self.open: dict[str, dict[str, Any]] = {}  # series id -> alert state

    def window(self, name: str, end_us: int, key_fields: dict[str, tuple[str, ...]],
               anomalous: dict[str, tuple[Doc, list[Doc], list[dict[str, Any]]]]) -> list[Doc]:
        """Fold the scored window ``name`` ending at ``end_us``: ``anomalous`` maps each series
        with findings to (its metrics document, its findings, its influencers). Returns the
        alert documents that opened, changed or closed."""
        out: list[Doc] = []
        for sid in sorted(anomalous):
            doc, findings, infl = anomalous[sid]
            st = self.open.get(sid)
            if st is None:
                st = self.open[sid] = self._new(sid, doc, key_fields.get(name, ()))
            self._extend(st, doc, findings, infl)
            out.append(self.document(st))
        for sid in sorted(self.open):
            st = self.open[sid]
            if st["window_name"] != name or sid in anomalous:
                continue
            st["quiet"] += 1
            st["updated"] = format_time_us(end_us)
            if st["quiet"] > self.gap:
                st["status"] = "closed"
                out.append(self.document(st))
                del self.open[sid]
        return out

    def _new(self, sid: str, doc: Doc, fields: tuple[str, ...]) -> dict[str, Any]:
        start = doc["window"]["start"]
        values = list((doc.get("key") or {}).values())
        return {
            "id": event_id("alert", self.pipeline, sid, start), "sid": sid,
            "window_name": doc["window"]["name"], "key": dict(doc.get("key") or {}),
            "fields": dict(zip(fields, values)) if len(fields) == len(values) else {},
            "start": start, "end": doc["window"]["end"], "windows": 0, "quiet": 0,
            "status": "open", "severity": "minor", "top": None, "detectors": [],
            "latest": None, "influencers": {}, "updated": doc["window"]["end"],
        }

    def _extend(self, st: dict[str, Any], doc: Doc, findings: list[Doc],
                infl: list[dict[str, Any]]) -> None:
        st["end"] = doc["window"]["end"]
        st["updated"] = doc["window"]["end"]
        st["windows"] += 1
        st["quiet"] = 0
        best = max(findings, key=lambda f: (_ratio(f), f["detector"]))
        if st["top"] is None or _ratio(best) > st["top"]["ratio"]:
            st["top"] = {"detector": best["detector"], "score": best["score"],
                         "threshold": best.get("threshold"), "ratio": round(_ratio(best), 6),
                         "model": best.get("model") or {}}
        for f in findings:
            if SEVERITY_RANK.get(f.get("severity", "minor"), 1) > SEVERITY_RANK[st["severity"]]:
                st["severity"] = f["severity"]
        st["detectors"] = sorted(set(st["detectors"]) | {f["detector"] for f in findings})
        drivers = st.setdefault("drivers", [])  # templates a detector itself blamed
        for f in findings:
            for it in f["explanation"]["items"]:
                if it.get("kind") == "template" and it["name"] not in drivers:
                    drivers.append(it["name"])
        del drivers[KEEP_PER_FIELD:]
        # a volume drop is explained by what vanished, anything else by what appeared
        drop = all(it.get("kind") == "drop" for f in findings for it in f["explanation"]["items"])
        st["direction"] = "down" if drop and st.get("direction", "down") == "down" else "up"
        st["latest"] = {
            "window": {"start": doc["window"]["start"], "end": doc["window"]["end"],
                       "name": doc["window"]["name"]},
            "summary": "; ".join(f"{f['detector']}: {f['explanation']['summary']}"
                                 for f in sorted(findings, key=lambda f: f["detector"])),
            "items": [it for f in sorted(findings, key=lambda f: f["detector"])
                      for it in f["explanation"]["items"]][:20],
        }
        self._add_influencers(st, infl)

    @staticmethod
    def _add_influencers(st: dict[str, Any], infl: list[dict[str, Any]]) -> None:
        acc: dict[str, dict[str, Any]] = st["influencers"]
        for it in infl:
            k = f"{it['field']}\x1f{it['value']}"
            cur = acc.get(k)
            if cur is None:
                acc[k] = {**it, "windows": 1}
                continue
            cur["observed"] += it["observed"]
            cur["expected"] = round(cur["expected"] + it["expected"], 3)
            cur["windows"] += 1
            if "error_count" in it:
                cur["error_count"] = cur.get("error_count", 0) + it["error_count"]
            if cur.get("template") is None and it.get("template"):
                cur["template"] = it["template"]
        by_field: dict[str, list[tuple[float, str]]] = {}
        for k, it in acc.items():
            it["score"] = round(anscombe_gap(it["observed"], it["expected"]), 3)
            by_field.setdefault(it["field"], []).append((-abs(it["score"]), k))
        keep = {k for items in by_field.values() for _, k in sorted(items)[:KEEP_PER_FIELD]}
        st["influencers"] = {k: v for k, v in acc.items() if k in keep}

    def ranked_influencers(self, st: dict[str, Any]) -> list[dict[str, Any]]:
        """The alert's influencers, per field the ``TOP_PER_FIELD`` that moved most."""
        by_field: dict[str, list[dict[str, Any]]] = {}
        for it in st["influencers"].values():
            by_field.setdefault(it["field"], []).append(it)
        out: list[dict[str, Any]] = []
        for field in sorted(by_field):
            items = sorted(by_field[field], key=lambda it: (-abs(it["score"]), it["value"]))
            out += [dict(it) for it in items[:TOP_PER_FIELD]]  # copies: the state goes on
        return out

    def document(self, st: dict[str, Any]) -> Doc:
        """The alert document of a state (what is indexed and published)."""
        top, latest = st["top"], st["latest"]
        influencers = self.ranked_influencers(st)
        doc: Doc = {
            "@timestamp": st["start"],
            "alert": {"id": st["id"], "start": st["start"], "end": st["end"],
                      "windows": st["windows"], "status": st["status"],
                      "updated": st["updated"]},
            "window": dict(latest["window"]),
            "key": dict(st["key"]),
            "detector": top["detector"],
            "detectors": list(st["detectors"]),
            "score": top["score"],
            "threshold": top["threshold"],
            "model": dict(top["model"]),
            "severity": st["severity"],
            "explanation": {"summary": latest["summary"],
                            "items": [dict(it) for it in latest["items"]]},
            "influencers": influencers,
            "logriver": {"pipeline": self.pipeline, "doc_type": "anomaly"},
            "event": {"id": st["id"]},
        }
        for path, value in st["fields"].items():
            if value is not None:
                _set_path(doc, path, value)
        named: dict[str, list[str]] = {}
        if st.get("drivers"):
            named[TEMPLATE_FIELD] = list(st["drivers"])
        sign = -1 if st.get("direction") == "down" else 1
        for it in influencers:  # the values that moved the way the alert says
            if it["field"] not in st["fields"] and it["score"] * sign > 0:
                values = named.setdefault(it["field"], [])
                if str(it["value"]) not in values:
                    values.append(str(it["value"]))
        for path, values in named.items():
            # a series keyed without a service (namespace level) names the one that moved most
            _set_path(doc, path, values[0] if path == SERVICE_FIELD else values)
        return doc

    def snapshot(self) -> dict[str, Any]:
        return {"open": self.open}

    def restore(self, state: dict[str, Any]) -> None:
        self.open = {sid: dict(st) for sid, st in state["open"].items()}
