"""One valid example message per schema: documentation for consumers, fixtures for tests.

``example(name)`` returns a fresh deep copy, safe to modify.
"""

from __future__ import annotations

import copy
from typing import Any

_EVENT: dict[str, Any] = {
    "@timestamp": "2026-11-26T01:02:03.456789Z",
    "message": "GET /api/users/42 200 12ms",
    "event": {
        "id": "5f2b9c1e0a7d4e3f8a9b0c1d",
        "created": "2026-11-26T01:02:03.500000Z",
        "ingested": "2026-11-26T01:02:04Z",
        "duration": 12_000_000,
    },
    "log": {
        "level": "info",
        "format": "json",
        "logger": "api.access",
        "template": "GET <*> <*> <*>",
        "template_id": "t-3fa9c2",
        "template_params": ["/api/users/42", "200", "12ms"],
        "file": {"path": "/var/log/containers/web-7d9f_shop_api-0123.log"},
        "offset": 4096,
    },
    "stream": "stdout",
    "service": {"name": "api"},
    "host": {"name": "node-1"},
    "kubernetes": {
        "namespace": "shop",
        "pod": {"name": "web-7d9f", "uid": "b1c2d3e4-0000-4000-8000-000000000001"},
        "container": {"name": "api"},
        "node": {"name": "node-1"},
        "labels": {"app": "web", "app_kubernetes_io/name": "web-frontend"},
    },
    "container": {"id": "0123456789ab", "runtime": "containerd"},
    "http": {
        "request": {"method": "GET", "referrer": "https://shop.example/"},
        "response": {"status_code": 200, "body": {"bytes": 512}},
    },
    "url": {"path": "/api/users/42", "original": "/api/users/42?x=1", "query": "x=1"},
    "source": {"address": "10.0.0.7", "ip": "10.0.0.7"},
    "user_agent": {"original": "curl/8.5.0"},
    "process": {"pid": 7, "thread": {"name": "worker-1"}},
    "attributes": {"user.id": "42", "cart.items": 3, "beta": True, "tags": ["a", "b"]},
    "logriver": {"pipeline": "kubernetes", "flags": ["truncated"], "errors": []},
}

_WINDOW = {
    "start": "2026-11-26T01:00:00Z",
    "end": "2026-11-26T01:01:00Z",
    "size_seconds": 60,
    "step_seconds": None,
    "kind": "tumbling",
    "name": "per_minute",
}

_EXAMPLES: dict[str, dict[str, Any]] = {
    "raw_batch": {
        "v": 1,
        "records": [
            {
                "id": "5f2b9c1e0a7d4e3f8a9b0c1d",
                "message": "GET /api/users/42 200 12ms",
                "time": "2026-11-26T01:02:03.456789123Z",
                "observed": "2026-11-26T01:02:03.500000Z",
                "stream": "stdout",
                "source": {"type": "file", "path": "/var/log/containers/x.log", "offset": 4096},
                "kubernetes": {
                    "namespace": "shop",
                    "pod": {"name": "web-7d9f"},
                    "container": {"name": "api"},
                },
                "container": {"id": "0123456789ab", "runtime": "containerd"},
                "flags": ["truncated"],
                "original": "GET /api/users/42 200 12ms ...",
            }
        ],
    },
    "event": _EVENT,
    "metrics": {
        "@timestamp": "2026-11-26T01:00:00Z",
        "window": _WINDOW,
        "key": {"kubernetes_namespace": "shop", "service_name": "api"},
        "count": 120,
        "error_count": 6,
        "error_ratio": 0.05,
        "bytes": 18_000,
        "http_5xx": 2,
        "distinct_templates": 9,
        "templates_truncated": False,
        "new_templates": 1,
        "latency_ms": {"p50": 11.8, "p90": 40.1, "p95": 55.0, "p99": 120.4, "count": 118},
        "template_counts": [{"id": "t-3fa9c2", "count": 80, "template": "GET <*> <*> <*>"}],
        "error_template_counts": [{"id": "t-9e1a00", "count": 6, "template": "timeout after <*>"}],
        "breakdown": [{"field": "kubernetes.pod.name", "value": "api-7d9f8b6c5-x2x4z", "count": 120,
                       "error_count": 6}],
        "event": {"id": "8c7d6e5f4a3b2c1d0e9f8a7b"},
        "logriver": {"pipeline": "kubernetes", "doc_type": "metrics"},
    },
    "anomaly": {
        "@timestamp": "2026-11-26T01:00:00Z",
        "alert": {
            "id": "1a2b3c4d5e6f7a8b9c0d1e2f",
            "start": "2026-11-26T01:00:00Z",
            "end": "2026-11-26T01:02:00Z",
            "windows": 2,
            "status": "open",
            "updated": "2026-11-26T01:02:00Z",
        },
        "window": {
            "start": "2026-11-26T01:01:00Z",
            "end": "2026-11-26T01:02:00Z",
            "name": "per_minute",
        },
        "key": {"kubernetes_namespace": "shop", "service_name": "api"},
        "detector": "errors",
        "detectors": ["errors", "novelty"],
        "score": 7.5,
        "threshold": 6.0,
        "model": {"version": "errors-1"},
        "severity": "major",
        "explanation": {
            "summary": "errors 6/min, expected about 0.4/min",
            "items": [
                {
                    "name": "t-9e1a00",
                    "kind": "template",
                    "template": "timeout after <*>",
                    "expected": 0.4,
                    "observed": 6,
                },
            ],
        },
        "influencers": [
            {"field": "log.template_id", "value": "t-9e1a00", "template": "timeout after <*>",
             "expected": 0.8, "observed": 12, "score": 5.2, "windows": 2},
            {"field": "kubernetes.pod.name", "value": "api-7d9f8b6c5-x2x4z", "expected": 110.0,
             "observed": 121, "score": 1.0, "error_count": 12, "windows": 2},
        ],
        "service": {"name": "api"},
        "kubernetes": {"namespace": "shop", "pod": {"name": ["api-7d9f8b6c5-x2x4z"]}},
        "log": {"template_id": ["t-9e1a00"]},
        "event": {"id": "1a2b3c4d5e6f7a8b9c0d1e2f"},
        "logriver": {"pipeline": "kubernetes", "doc_type": "anomaly"},
    },
    "template": {
        "type": "template",
        "@timestamp": "2026-11-26T01:02:03Z",
        "template_id": "t-3fa9c2",
        "template": "GET <*> <*> <*>",
        "texts": ["GET /api/users <*> <*>"],
        "first_seen": "2026-11-25T08:00:00Z",
        "last_seen": "2026-11-26T01:02:03Z",
        "count": 10_512,
        "partition": 2,
        "aliases": ["t-77aa01"],
        "example": "GET /api/users/42 200 12ms",
        "logriver": {"pipeline": "kubernetes", "doc_type": "template"},
    },
    "template_change": {
        "type": "change",
        "template_id": "t-3fa9c2",
        "template": "GET <*> <*> <*>",
        "previous_template": "GET /api/users <*> <*>",
        "time": "2026-11-26T01:02:03.456789Z",
        "pipeline": "kubernetes",
    },
    "template_alias": {
        "type": "alias",
        "alias_id": "t-77aa01",
        "template_id": "t-3fa9c2",
        "template": "GET <*> <*> <*>",
        "time": "2026-11-26T01:02:03.456789Z",
        "pipeline": "kubernetes",
    },
    "deadletter": {
        "stage": "index",
        "step": "elasticsearch:logriver-events-kubernetes-2026.11.26",
        "reason": "document_parsing_exception",
        "detail": "failed to parse field [http.response.status_code] of type [short]",
        "original": '{"message": "..."}',
        "original_encoding": "utf-8",
        "source": {"topic": "logs.structured", "partition": 0, "offset": 17},
        "event_id": "5f2b9c1e0a7d4e3f8a9b0c1d",
        "pipeline": "kubernetes",
        "time": "2026-11-26T01:02:05.000001Z",
    },
}


def example(name: str) -> dict[str, Any]:
    """A valid example of schema ``name`` (a deep copy)."""
    return copy.deepcopy(_EXAMPLES[name])
