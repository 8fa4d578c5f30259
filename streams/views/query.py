"""The questions a user asks first, as Elasticsearch queries over Logriver's indices.

- ``errors``: error (and fatal) events, optionally of one namespace / pod / service, newest first;
- ``top_templates``: the most frequent log templates of a pod (or namespace, service), with
  their text, count and last time seen;
- ``anomalies``: anomalies of a service (or namespace), newest first, with score and explanation;
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
    """The most frequent templates (``log.template_id``) of a pod, with text and last seen."""
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
                "terms": {"field": "log.template_id", "size": size,
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
    rows = []
    for b in resp.get("aggregations", {}).get("templates", {}).get("buckets", []):
        top = b["example"]["hits"]["hits"]
        src = top[0]["_source"] if top else {}
        rows.append({
            "count": b["doc_count"],
            "errors": b["errors"]["doc_count"],
            "template_id": b["key"],
            "last_seen": b["last_seen"].get("value_as_string"),
            "template": _get(src, "log.template") or _get(src, "message"),
        })
    return Result("templates", int(resp["hits"]["total"]["value"]), rows,
                  ("count", "errors", "template_id", "last_seen", "template"))


async def anomalies(client: AsyncElasticsearch, prefix: str = "logriver", *,
                    service: str | None = None, namespace: str | None = None,
                    pod: str | None = None, detector: str | None = None,
                    min_score: float | None = None, since: str | timedelta | None = None,
                    size: int = 20, now: datetime | None = None) -> Result:
    """Anomalies whose window key is this service (``key.service_name``), newest first."""
    filters = [
        *_terms(**{"key.service_name": service, "key.kubernetes_namespace": namespace,
                   "key.kubernetes_pod_name": pod, "detector": detector}),
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
        rows.append({
            "@timestamp": src.get("@timestamp"),
            "detector": src.get("detector"),
            "score": src.get("score"),
            "severity": src.get("severity"),
            "key": ",".join(f"{k}={v}" for k, v in sorted(key.items())),
            "summary": _get(src, "explanation.summary"),
            "explanation": src.get("explanation"),
        })
    return Result("anomalies", int(resp["hits"]["total"]["value"]), rows,
                  ("@timestamp", "detector", "score", "severity", "key", "summary"))
