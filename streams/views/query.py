"""The questions a user asks first, as Elasticsearch queries over Logriver's indices.

- ``errors``: error (and fatal) events, optionally of one namespace / pod / service, newest first;
- ``top_templates``: the most frequent log templates of a pod (or namespace, service), with
  their text, count and last time seen;
- ``anomalies``: alerts of a service (or namespace, pod), newest first, with start, end, score,
  explanation and influencers;
- ``logs``: a free query (Lucene ``query_string`` syntax: ``payment AND log.severity:error``).

Each returns a ``Result`` (``total`` and flat ``rows``), used by ``logriver search`` and the tests.
Every query runs on mapped fields only (keywords, dates, the ``message`` text), so it is cheap
and exact; ``since`` accepts ``30s``, ``15m``, ``1h``, ``7d``, ``2w``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import AsyncElasticsearch

from schemas.elasticsearch import index_pattern

ERROR_LEVELS = ("error", "fatal")
# The normalized severity; documents indexed before it existed carry the normalized level in
# log.level.
_ERROR_FILTER = {"bool": {"should": [{"terms": {"log.severity": list(ERROR_LEVELS)}},
                                     {"terms": {"log.level": list(ERROR_LEVELS)}}],
                          "minimum_should_match": 1}}
_SINCE_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_EVENT_COLUMNS = ("@timestamp", "log.level", "kubernetes.namespace", "kubernetes.pod.name",
                  "service.name", "message")


def parse_since(value: str | timedelta | None) -> timedelta | None:
    """``"15m"`` -> 15 minutes. None stays None (no time bound). Raises ValueError otherwise."""
    if value is None or isinstance(value, timedelta):
        return value
    m = _SINCE_RE.match(value)
    if not m or int(m[1]) <= 0:
        raise ValueError(f"invalid duration {value!r}: use e.g. 30s, 15m, 1h, 7d, 2w")
    return timedelta(**{_UNITS[m[2]]: int(m[1])})


@dataclass
class Result:
    """``total``: how many documents match (exact); ``rows``: what to show, flat dicts."""

    kind: str
    total: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    columns: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "total": self.total, "rows": self.rows}


def _get(doc: dict[str, Any], path: str) -> Any:
    cur: Any = doc
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _time_filter(since: str | timedelta | None, now: datetime | None) -> list[dict[str, Any]]:
    delta = parse_since(since)
    if delta is None:
        return []
    end = (now or datetime.now(UTC)).astimezone(UTC)
    start = end - delta
    return [{"range": {"@timestamp": {"gte": start.isoformat().replace("+00:00", "Z"),
                                       "format": "strict_date_optional_time"}}}]


def _terms(**fields: str | None) -> list[dict[str, Any]]:
    return [{"term": {name: value}} for name, value in fields.items() if value]


def _event_row(hit: dict[str, Any]) -> dict[str, Any]:
    src = hit["_source"]
    row = {col: _get(src, col) for col in _EVENT_COLUMNS}
    row["event.id"] = hit["_id"]
    row["log.template_id"] = _get(src, "log.template_id")
    return row


async def _search(client: AsyncElasticsearch, index: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.search(index=index, ignore_unavailable=True, allow_no_indices=True,
                               track_total_hits=True, **body)
    return dict(resp.body)


async def _event_search(client: AsyncElasticsearch, prefix: str, kind: str,
                        must: list[dict[str, Any]], filters: list[dict[str, Any]],
                        size: int) -> Result:
    body = {
        "query": {"bool": {"must": must, "filter": filters}},
        "sort": [{"@timestamp": {"order": "desc"}}, {"event.id": {"order": "desc"}}],
        "size": size,
        "_source": [*_EVENT_COLUMNS, "log.template_id"],
    }
    resp = await _search(client, index_pattern("events", prefix), body)
    hits = resp["hits"]
    return Result(kind, int(hits["total"]["value"]), [_event_row(h) for h in hits["hits"]],
                  _EVENT_COLUMNS)


async def errors(client: AsyncElasticsearch, prefix: str = "logriver", *,
                 namespace: str | None = None, pod: str | None = None,
                 service: str | None = None, since: str | timedelta | None = "1h",
                 size: int = 20, now: datetime | None = None) -> Result:
    """Error and fatal events (normalized ``log.severity``) of a namespace / pod / service,
    newest first."""
    filters = [
        _ERROR_FILTER,
        *_terms(**{"kubernetes.namespace": namespace, "kubernetes.pod.name": pod,
                   "service.name": service}),
        *_time_filter(since, now),
    ]
    return await _event_search(client, prefix, "errors", [], filters, size)


async def logs(client: AsyncElasticsearch, prefix: str = "logriver", query: str = "*", *,
               namespace: str | None = None, pod: str | None = None,
               service: str | None = None, level: str | None = None,
               since: str | timedelta | None = "15m", size: int = 20,
               now: datetime | None = None) -> Result:
    """A free query in Lucene syntax over ``message`` by default (``field:value`` for others)."""
    must = [{"query_string": {"query": query or "*", "default_field": "message",
                              "default_operator": "AND", "lenient": True}}]
    filters = [
        *_terms(**{"kubernetes.namespace": namespace, "kubernetes.pod.name": pod,
                   "service.name": service}),
        *([] if level is None else [{"bool": {"should": [{"term": {"log.severity": level}},
                                                         {"term": {"log.level": level}}],
                                              "minimum_should_match": 1}}]),
        *_time_filter(since, now),
    ]
    return await _event_search(client, prefix, "logs", must, filters, size)


async def top_templates(client: AsyncElasticsearch, prefix: str = "logriver", *,
                        pod: str | None = None, namespace: str | None = None,
                        service: str | None = None, since: str | timedelta | None = None,
                        size: int = 10, now: datetime | None = None) -> Result:
    """The most frequent templates (``log.template_id``) of a pod, with text and last seen.
    An id merged into another since its events were indexed (``alias_of`` in the template
    catalog) counts under the other: a merged template is one row."""
    filters = [
        {"exists": {"field": "log.template_id"}},
        *_terms(**{"kubernetes.pod.name": pod, "kubernetes.namespace": namespace,
                   "service.name": service}),
        *_time_filter(since, now),
    ]
    body = {
        "query": {"bool": {"filter": filters}},
        "size": 0,
        "aggs": {
            "templates": {
                # more buckets than shown: merged ids fold into their survivors' rows
                "terms": {"field": "log.template_id", "size": size * 3 + 10,
                          "order": [{"_count": "desc"}, {"_key": "asc"}]},
                "aggs": {
                    "last_seen": {"max": {"field": "@timestamp"}},
                    "errors": {"filter": _ERROR_FILTER},
                    "example": {"top_hits": {
                        "size": 1, "sort": [{"@timestamp": {"order": "desc"}}],
                        "_source": ["log.template", "message"]}},
                },
            }
        },
    }
    resp = await _search(client, index_pattern("events", prefix), body)
    buckets = resp.get("aggregations", {}).get("templates", {}).get("buckets", [])
    aliases = await template_aliases(client, prefix, [b["key"] for b in buckets])
    merged: dict[str, dict[str, Any]] = {}
    for b in buckets:
        top = b["example"]["hits"]["hits"]
        src = top[0]["_source"] if top else {}
        tid = aliases.get(b["key"], b["key"])
        row = {
            "count": b["doc_count"],
            "errors": b["errors"]["doc_count"],
            "template_id": tid,
            "last_seen": b["last_seen"].get("value_as_string"),
            "template": _get(src, "log.template") or _get(src, "message"),
        }
        into = merged.get(tid)
        if into is None:
            merged[tid] = row
            continue
        into["count"] += row["count"]
        into["errors"] += row["errors"]
        if (row["last_seen"] or "") > (into["last_seen"] or ""):  # the latest text
            into["last_seen"], into["template"] = row["last_seen"], row["template"]
    rows = sorted(merged.values(), key=lambda r: (-r["count"], r["template_id"]))[:size]
    return Result("templates", int(resp["hits"]["total"]["value"]), rows,
                  ("count", "errors", "template_id", "last_seen", "template"))


async def template_aliases(client: AsyncElasticsearch, prefix: str, ids: list[str]) -> dict[str, str]:
    """Merged id -> the id it counts under now, for those of ``ids`` the template catalog
    says were merged (followed to the end of a chain)."""
    out: dict[str, str] = {}
    todo = list(dict.fromkeys(ids))
    for _ in range(8):  # chains are short: a merged id's survivor was rarely merged since
        if not todo:
            break
        resp = await _search(client, index_pattern("templates", prefix), {
            "query": {"bool": {"filter": [{"terms": {"template_id": todo}},
                                          {"exists": {"field": "alias_of"}}]}},
            "size": len(todo) * 8, "_source": ["template_id", "alias_of"]})
        found = {h["_source"]["template_id"]: h["_source"]["alias_of"]
                 for h in resp.get("hits", {}).get("hits", [])}
        todo = []
        for alias, survivor in found.items():
            out[alias] = survivor
            if survivor not in out and survivor not in found:
                todo.append(survivor)
    for alias in list(out):
        seen = 0
        while out[alias] in out and seen < 64:
            out[alias], seen = out[out[alias]], seen + 1
    return out


def _either(value: str | None, *fields: str) -> list[dict[str, Any]]:
    """A filter matching ``value`` in any of ``fields`` (none when ``value`` is empty)."""
    if not value:
        return []
    return [{"bool": {"should": [{"term": {f: value}} for f in fields],
                      "minimum_should_match": 1}}]


async def anomalies(client: AsyncElasticsearch, prefix: str = "logriver", *,
                    service: str | None = None, namespace: str | None = None,
                    pod: str | None = None, detector: str | None = None,
                    min_score: float | None = None, since: str | timedelta | None = None,
                    size: int = 20, now: datetime | None = None) -> Result:
    """Alerts naming this service (``service.name``: the series' own or, for a
    namespace-level series, the service that moved most; ``key.service_name`` for documents
    of older versions), namespace or pod (an influencer pod), newest first. ``detector``
    matches any detector that flagged one of its windows."""
    filters = [
        *_either(service, "service.name", "key.service_name"),
        *_either(namespace, "kubernetes.namespace", "key.kubernetes_namespace"),
        *_either(pod, "kubernetes.pod.name", "key.kubernetes_pod_name"),
        *_either(detector, "detectors", "detector"),
        *_time_filter(since, now),
    ]
    if min_score is not None:
        filters.append({"range": {"score": {"gte": min_score}}})
    body = {
        "query": {"bool": {"filter": filters}},
        "sort": [{"@timestamp": {"order": "desc"}}, {"score": {"order": "desc"}}],
        "size": size,
    }
    resp = await _search(client, index_pattern("anomalies", prefix), body)
    rows = []
    for h in resp["hits"]["hits"]:
        src = h["_source"]
        key = src.get("key") or {}
        alert = src.get("alert") or {}
        rows.append({
            "@timestamp": src.get("@timestamp"),
            "end": alert.get("end") or _get(src, "window.end"),
            "status": alert.get("status"),
            "service": _get(src, "service.name") or key.get("service_name"),
            "detector": src.get("detector"),
            "detectors": src.get("detectors") or [src.get("detector")],
            "score": src.get("score"),
            "severity": src.get("severity"),
            "key": ",".join(f"{k}={v}" for k, v in sorted(key.items())),
            "summary": _get(src, "explanation.summary"),
            "explanation": src.get("explanation"),
            "influencers": src.get("influencers") or [],
        })
    return Result("anomalies", int(resp["hits"]["total"]["value"]), rows,
                  ("@timestamp", "end", "service", "detector", "score", "severity", "key",
                   "summary"))
