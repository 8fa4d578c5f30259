"""Kibana saved objects as code: data views, Lens panels, saved searches and one dashboard.

``export_ndjson`` writes them in the format of ``POST /api/saved_objects/_import`` (one JSON
object per line); ``import_to_kibana`` posts them. Ids are stable (derived from the index
prefix), so an import with ``overwrite=true`` updates in place. Objects are written in the
Kibana 7.14 saved-object format (``migrationVersion``), which every later Kibana migrates on
import.
"""

from __future__ import annotations

import base64
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any

import orjson

from schemas.elasticsearch import DEFAULT_PREFIX, index_pattern

SavedObject = dict[str, Any]

# Data view per index kind: (display name, time field).
DATA_VIEWS: dict[str, tuple[str, str]] = {
    "events": ("Logriver logs", "@timestamp"),
    "metrics": ("Logriver metrics", "@timestamp"),
    "anomalies": ("Logriver anomalies", "@timestamp"),
    "templates": ("Logriver templates", "first_seen"),  # the time range selects new templates
}
RECORDS = "Records"  # Lens' pseudo-field of count()
_LENS_VERSION = "7.14.0"
_QUERY = {"query": "", "language": "kuery"}


class KibanaError(RuntimeError):
    """Kibana is unreachable or refused the request."""


def data_view_id(kind: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}-{kind}"


def dashboard_id(prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}-overview"


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def _data_view(kind: str, prefix: str) -> SavedObject:
    name, time_field = DATA_VIEWS[kind]
    return {
        "id": data_view_id(kind, prefix),
        "type": "index-pattern",
        "migrationVersion": {"index-pattern": "7.11.0"},
        "attributes": {
            "title": index_pattern(kind, prefix),
            "name": name,
            "timeFieldName": time_field,
        },
        "references": [],
    }


# ------------------------------------------------------------------ Lens columns


def _date_histogram(field: str = "@timestamp") -> dict[str, Any]:
    return {
        "label": field,
        "dataType": "date",
        "operationType": "date_histogram",
        "sourceField": field,
        "isBucketed": True,
        "scale": "interval",
        "params": {"interval": "auto"},
    }


def _terms(field: str, size: int, order_by: str, label: str) -> dict[str, Any]:
    return {
        "label": label,
        "customLabel": True,
        "dataType": "string",
        "operationType": "terms",
        "sourceField": field,
        "isBucketed": True,
        "scale": "ordinal",
        "params": {
            "size": size,
            "orderBy": {"type": "column", "columnId": order_by},
            "orderDirection": "desc",
            "otherBucket": True,
            "missingBucket": False,
        },
    }


def _metric(operation: str, field: str, label: str, data_type: str = "number") -> dict[str, Any]:
    return {
        "label": label,
        "customLabel": True,
        "dataType": data_type,
        "operationType": operation,
        "sourceField": field,
        "isBucketed": False,
        "scale": "ratio",
    }


def _last_value(field: str, sort_field: str, label: str) -> dict[str, Any]:
    """The value of ``field`` in the document with the latest ``sort_field`` (a template's
    current text)."""
    return {
        "label": label,
        "customLabel": True,
        "dataType": "string",
        "operationType": "last_value",
        "sourceField": field,
        "isBucketed": False,
        "scale": "ordinal",
        "params": {"sortField": sort_field},
    }


# Catalog panels leave out merged ids: their events count under the id they were merged into.
_NOT_ALIASES = "NOT alias_of:*"


def _ratio(col: str, numerator: str, denominator: str, label: str) -> dict[str, dict[str, Any]]:
    """A Lens formula ``sum(numerator) / sum(denominator)`` with its hidden helper columns."""
    text = f"sum({numerator}) / sum({denominator})"
    part = f"Part of {label}"
    return {
        f"{col}X0": _metric("sum", numerator, part),
        f"{col}X1": _metric("sum", denominator, part),
        f"{col}X2": {
            "label": part,
            "customLabel": True,
            "dataType": "number",
            "operationType": "math",
            "isBucketed": False,
            "scale": "ratio",
            "params": {
                "tinymathAst": {
                    "type": "function",
                    "name": "divide",
                    "args": [f"{col}X0", f"{col}X1"],
                    "location": {"min": 0, "max": len(text)},
                    "text": text,
                }
            },
            "references": [f"{col}X0", f"{col}X1"],
        },
        col: {
            "label": label,
            "customLabel": True,
            "dataType": "number",
            "operationType": "formula",
            "isBucketed": False,
            "scale": "ratio",
            "params": {
                "formula": text,
                "isFormulaBroken": False,
                "format": {"id": "percent", "params": {"decimals": 1}},
            },
            "references": [f"{col}X2"],
        },
    }


def _lens(
    prefix: str,
    slug: str,
    title: str,
    kind: str,
    columns: dict[str, dict[str, Any]],
    visualization_type: str,
    visualization: dict[str, Any],
    query: str = "",
) -> SavedObject:
    layer = "layer1"
    view = data_view_id(kind, prefix)
    if visualization_type == "lnsDatatable":
        visualization = {**visualization, "layerId": layer}
    else:
        visualization = _xy(visualization, layer)
    return {
        "id": f"{prefix}-lens-{slug}",
        "type": "lens",
        "migrationVersion": {"lens": _LENS_VERSION},
        "attributes": {
            "title": title,
            "description": "",
            "visualizationType": visualization_type,
            "state": {
                "datasourceStates": {
                    "indexpattern": {
                        "layers": {
                            layer: {
                                "columns": columns,
                                "columnOrder": list(columns),
                                "incompleteColumns": {},
                            }
                        }
                    }
                },
                "visualization": visualization,
                "query": {**_QUERY, "query": query},
                "filters": [],
            },
        },
        "references": [
            {
                "type": "index-pattern",
                "id": view,
                "name": "indexpattern-datasource-current-indexpattern",
            },
            {"type": "index-pattern", "id": view, "name": f"indexpattern-datasource-layer-{layer}"},
        ],
    }


def _xy(layer_spec: dict[str, Any], layer: str) -> dict[str, Any]:
    """An XY chart of one layer; ``layer_spec`` holds ``seriesType`` and the accessors."""
    layer_spec = dict(layer_spec)
    series = layer_spec.pop("seriesType")
    return {
        "legend": {"isVisible": True, "position": "right"},
        "valueLabels": "hide",
        "fittingFunction": "None",
        "preferredSeriesType": series,
        "layers": [
            {
                "layerId": layer,
                "seriesType": series,
                "position": "top",
                "showGridlines": False,
                **layer_spec,
            }
        ],
    }


def _volume_by(prefix: str, slug: str, field: str, label: str) -> SavedObject:
    columns = {
        "split": _terms(field, 10, "count", label),
        "time": _date_histogram(),
        "count": _metric("count", RECORDS, "Lines"),
    }
    return _lens(
        prefix,
        slug,
        f"Log volume by {label.lower()}",
        "events",
        columns,
        "lnsXY",
        {
            "seriesType": "bar_stacked",
            "xAccessor": "time",
            "accessors": ["count"],
            "splitAccessor": "split",
        },
    )


def _lenses(prefix: str) -> list[SavedObject]:
    error_ratio = {
        "time": _date_histogram(),
        **_ratio("ratio", "error_count", "count", "Error ratio"),
    }
    # by the id each event was indexed with (it never changes when a text generalizes), with
    # the id's latest text
    top_templates = {
        "id": _terms("log.template_id", 20, "count", "Template id"),
        "template": _last_value("log.template", "@timestamp", "Template"),
        "count": _metric("count", RECORDS, "Lines"),
    }
    new_templates = {
        "time": _date_histogram("first_seen"),
        "new": _metric("unique_count", "template_id", "New templates"),
    }
    newest = {
        "template": _terms("template", 20, "first", "Template"),
        "first": _metric("max", "first_seen", "First seen", "date"),
        "count": _metric("max", "count", "Lines so far"),
    }
    # the catalog: every template once (merged ids counted under their survivor), summed
    # over the partitions' miners
    catalog = {
        "id": _terms("template_id", 20, "count", "Template id"),
        "template": _last_value("template", "last_seen", "Template"),
        "count": _metric("sum", "count", "Lines (all partitions)"),
    }
    anomalies = {
        "service": _terms("service.name", 10, "score", "Service"),
        "time": _date_histogram(),
        "score": _metric("max", "score", "Max score"),
    }
    return [
        _volume_by(prefix, "volume-by-namespace", "kubernetes.namespace", "Namespace"),
        _volume_by(prefix, "volume-by-level", "log.severity", "Severity"),
        _lens(
            prefix,
            "error-ratio",
            "Error ratio (errors / lines)",
            "metrics",
            error_ratio,
            "lnsXY",
            {"seriesType": "line", "xAccessor": "time", "accessors": ["ratio"]},
        ),
        _lens(
            prefix,
            "top-templates",
            "Top templates",
            "events",
            top_templates,
            "lnsDatatable",
            {"columns": [{"columnId": c} for c in top_templates]},
        ),
        _lens(
            prefix,
            "new-templates",
            "New templates over time",
            "templates",
            new_templates,
            "lnsXY",
            {"seriesType": "bar", "xAccessor": "time", "accessors": ["new"]},
            _NOT_ALIASES,
        ),
        _lens(
            prefix,
            "newest-templates",
            "Newest templates",
            "templates",
            newest,
            "lnsDatatable",
            {"columns": [{"columnId": c} for c in newest]},
            _NOT_ALIASES,
        ),
        _lens(
            prefix,
            "template-catalog",
            "Template catalog (merged templates counted once)",
            "templates",
            catalog,
            "lnsDatatable",
            {"columns": [{"columnId": c} for c in catalog]},
            _NOT_ALIASES,
        ),
        _lens(
            prefix,
            "anomaly-timeline",
            "Anomaly scores by service (alerts)",
            "anomalies",
            anomalies,
            "lnsXY",
            {
                "seriesType": "line",
                "xAccessor": "time",
                "accessors": ["score"],
                "splitAccessor": "service",
            },
        ),
    ]


def _search(prefix: str, slug: str, title: str, kind: str, columns: list[str]) -> SavedObject:
    ref = "kibanaSavedObjectMeta.searchSourceJSON.index"
    source = {"query": _QUERY, "filter": [], "highlightAll": True, "indexRefName": ref}
    return {
        "id": f"{prefix}-search-{slug}",
        "type": "search",
        "migrationVersion": {"search": "7.9.3"},
        "attributes": {
            "title": title,
            "description": "",
            "columns": columns,
            "sort": [["@timestamp", "desc"]],
            "hits": 0,
            "version": 1,
            "kibanaSavedObjectMeta": {"searchSourceJSON": _dumps(source)},
        },
        "references": [{"name": ref, "type": "index-pattern", "id": data_view_id(kind, prefix)}],
    }


def _searches(prefix: str) -> list[SavedObject]:
    return [
        _search(
            prefix,
            "anomalies",
            "Anomalies and explanations: what broke, what moved",
            "anomalies",
            [
                "kubernetes.namespace",
                "service.name",
                "alert.end",
                "alert.status",
                "severity",
                "detectors",
                "kubernetes.pod.name",
                "log.template_id",
                "explanation.summary",
            ],
        ),
        _search(
            prefix,
            "logs",
            "Logs",
            "events",
            [
                "kubernetes.namespace",
                "kubernetes.pod.name",
                "log.severity",
                "log.level",
                "log.template_id",
                "message",
            ],
        ),
    ]


# (slug of the panel's object, x, y, w, h) on Kibana's 48-column grid.
_LAYOUT = (
    ("lens-volume-by-namespace", 0, 0, 24, 12),
    ("lens-volume-by-level", 24, 0, 24, 12),
    ("lens-error-ratio", 0, 12, 24, 12),
    ("lens-anomaly-timeline", 24, 12, 24, 12),
    ("lens-top-templates", 0, 24, 24, 15),
    ("lens-new-templates", 24, 24, 12, 15),
    ("lens-newest-templates", 36, 24, 12, 15),
    ("lens-template-catalog", 0, 39, 48, 15),
    ("search-anomalies", 0, 54, 48, 12),
    ("search-logs", 0, 66, 48, 20),
)


def _dashboard(prefix: str, objects: Iterable[SavedObject]) -> SavedObject:
    by_id = {o["id"]: o for o in objects}
    panels, references = [], []
    for i, (slug, x, y, w, h) in enumerate(_LAYOUT, start=1):
        obj = by_id[f"{prefix}-{slug}"]
        index = str(i)
        panels.append(
            {
                "version": _LENS_VERSION,
                "type": obj["type"],
                "gridData": {"x": x, "y": y, "w": w, "h": h, "i": index},
                "panelIndex": index,
                "embeddableConfig": {"enhancements": {}},
                "panelRefName": f"panel_{index}",
            }
        )
        references.append({"name": f"{index}:panel_{index}", "type": obj["type"], "id": obj["id"]})
    return {
        "id": dashboard_id(prefix),
        "type": "dashboard",
        "migrationVersion": {"dashboard": _LENS_VERSION},
        "attributes": {
            "title": "Logriver overview",
            "description": "Log volume, errors, templates and anomalies (generated by logriver).",
            "hits": 0,
            "version": 1,
            "panelsJSON": _dumps(panels),
            "optionsJSON": _dumps(
                {"useMargins": True, "syncColors": False, "hidePanelTitles": False}
            ),
            "timeRestore": True,
            "timeFrom": "now-24h",
            "timeTo": "now",
            "refreshInterval": {"pause": False, "value": 30000},
            "kibanaSavedObjectMeta": {"searchSourceJSON": _dumps({"query": _QUERY, "filter": []})},
        },
        "references": references,
    }


def saved_objects(prefix: str = DEFAULT_PREFIX) -> list[SavedObject]:
    """Every saved object, referenced objects first (data views, panels, dashboard)."""
    objects = [_data_view(kind, prefix) for kind in DATA_VIEWS]
    objects += _lenses(prefix) + _searches(prefix)
    objects.append(_dashboard(prefix, objects))
    return objects


def export_ndjson(prefix: str = DEFAULT_PREFIX) -> str:
    """The saved objects as NDJSON for ``POST /api/saved_objects/_import``."""
    return "".join(_dumps(obj) + "\n" for obj in saved_objects(prefix))


def fields_by_data_view(objects: Iterable[SavedObject]) -> dict[str, set[str]]:
    """Data view id -> the fields the objects use on it (time field, Lens columns, search columns)."""
    out: dict[str, set[str]] = {}
    for obj in objects:
        attrs = obj["attributes"]
        views = {r["id"] for r in obj["references"] if r["type"] == "index-pattern"}
        used: set[str] = set()
        if obj["type"] == "index-pattern":
            views, used = {obj["id"]}, {attrs["timeFieldName"]}
        elif obj["type"] == "lens":
            for layer in attrs["state"]["datasourceStates"]["indexpattern"]["layers"].values():
                used |= {c["sourceField"] for c in layer["columns"].values() if "sourceField" in c}
            used.discard(RECORDS)
        elif obj["type"] == "search":
            used = set(attrs["columns"]) | {field for field, _ in attrs["sort"]}
        for view in views:
            out.setdefault(view, set()).update(used)
    return out


def import_to_kibana(
    url: str,
    ndjson: str,
    *,
    api_key: str | None = None,
    username: str | None = None,
    password: str | None = None,
    timeout: float = 30,
) -> dict[str, Any]:
    """Post ``ndjson`` to Kibana's saved objects import (overwrite=true); return its answer.

    Raises ``KibanaError`` when Kibana is unreachable or answers with an HTTP error. The
    answer's ``success`` and ``errors`` tell which objects failed.
    """
    boundary = f"logriver-{secrets.token_hex(12)}"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="logriver.ndjson"\r\n'
            "Content-Type: application/ndjson\r\n\r\n"
        ).encode()
        + ndjson.encode()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"kbn-xsrf": "true", "Content-Type": f"multipart/form-data; boundary={boundary}"}
    if api_key:
        headers["Authorization"] = f"ApiKey {api_key}"
    elif username is not None:
        token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    endpoint = f"{url.rstrip('/')}/api/saved_objects/_import?overwrite=true"
    request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode("utf-8", "replace")
        raise KibanaError(f"Kibana at {url} answered HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise KibanaError(f"Kibana is unreachable at {url}: {reason}") from None
    try:
        answer: dict[str, Any] = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise KibanaError(f"Kibana at {url} answered with something else than JSON") from None
    return answer
