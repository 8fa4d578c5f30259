"""Elasticsearch index management from code: templates, capability detection, retention.

Layout (``prefix`` defaults to ``logriver``; kinds: events, metrics, anomalies, templates):

- component templates ``<prefix>-settings``, ``<prefix>-mappings-base`` (``@timestamp``,
  ``logriver.*``, strings as capped keywords), ``<prefix>-mappings-window`` (``window.*``,
  ``key.*``) and ``<prefix>-mappings-<kind>``; one composable index template ``<prefix>-<kind>``
  per kind, matching ``<prefix>-<kind>-*``.
- Where the cluster has data streams and ILM (the full distribution): events and metrics go
  to data streams ``<prefix>-<kind>-<pipeline>`` (append-only, bulk op ``create``) under an ILM
  policy (hot with rollover, delete after N days). Anomalies (alerts, published again as they
  grow) are updated in place, so they always go to daily indices (an alert's by its start).
- Elsewhere (the Maven test distribution): daily indices ``<prefix>-<kind>-<pipeline>-YYYY.MM.DD``
  for events, metrics and anomalies, and ``apply_retention`` (``logriver indices retention``)
  deletes whole days.
- Templates are a catalog, updated in place: one index ``<prefix>-templates-<pipeline>`` (no
  date, no lifecycle; bounded by the miners' ``max_templates``).

Kubernetes labels: ``dedot_labels`` replaces dots in keys (``app.kubernetes.io/name`` becomes
``app_kubernetes_io/name``), so ``app`` and ``app.kubernetes.io/name`` never clash; the mapping
(``flattened``, or a keyword-only object without sub-objects) would also accept dotted keys.
``attributes.*`` (the application's own fields) are bounded the same way: one ``flattened``
field, or keywords only plus a field limit that ignores dynamic fields beyond it.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any, Literal, cast

from elasticsearch import ApiError, AsyncElasticsearch

KINDS = ("events", "metrics", "anomalies", "templates")
DEFAULT_PREFIX = "logriver"
DEFAULT_RETENTION_DAYS = 30
TEMPLATE_VERSION = 1
TEMPLATE_PRIORITY = 200  # above the built-in logs-*-* (100), should a prefix overlap it
TOTAL_FIELDS_LIMIT = 2000
KEYWORD_LIMIT = 1024  # ignore_above for keywords of unknown length
LONG_KEYWORD_LIMIT = 4096  # templates, URLs

# Field types outside the server core that the cluster may or may not have.
OPTIONAL_TYPES = ("flattened", "match_only_text", "wildcard", "constant_keyword")
_IGNORE_BEYOND_LIMIT = "index.mapping.total_fields.ignore_dynamic_beyond_limit"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_PROBE_PATTERN = "logriver-capability-probe-*"
_UTC_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ][0-9:.]+(?:[Zz]|\+00:00)$")

# Fields a metrics window may be keyed by; ``key.<field with _ for .>`` in documents.
KEY_FIELDS = (
    "kubernetes.namespace",
    "kubernetes.pod.name",
    "kubernetes.container.name",
    "service.name",
    "host.name",
    "log.level",
    "log.severity",
    "log.template_id",
)

Mapping_ = dict[str, Any]
_NOT_INDEXED: Mapping_ = {"type": "keyword", "index": False, "doc_values": False}


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What the cluster supports and how Logriver writes to it."""

    prefix: str = DEFAULT_PREFIX
    data_streams: bool = False
    ilm: bool = False
    field_types: frozenset[str] = frozenset()
    ignore_dynamic_beyond_limit: bool = False
    retention_days: int = DEFAULT_RETENTION_DAYS
    installed: tuple[str, ...] = ()

    @property
    def mode(self) -> Literal["data_streams", "daily_indices"]:
        return "data_streams" if self.data_streams and self.ilm else "daily_indices"

    def uses_data_stream(self, kind: str) -> bool:
        """Whether documents of ``kind`` go to a data stream (else to daily indices).
        Templates and alerts are updated in place (same ``_id``), which a data stream
        refuses: they always go to daily indices."""
        return self.mode == "data_streams" and kind not in ("templates", "anomalies")

    def index_for(self, kind: str, pipeline: str, timestamp: datetime | str) -> str:
        """The bulk target of a document of ``kind`` with this ``@timestamp`` (templates: the
        catalog index, whatever the time)."""
        if self.uses_data_stream(kind):
            return data_stream_name(kind, pipeline, self.prefix)
        if kind == "templates":
            return catalog_index_name(pipeline, self.prefix)
        return index_name(kind, pipeline, timestamp, self.prefix)

    def op_type(self, kind: str) -> Literal["create", "index"]:
        """Bulk action: data streams only take ``create`` (a 409 then means already indexed)."""
        return "create" if self.uses_data_stream(kind) else "index"

    def has(self, field_type: str) -> bool:
        return field_type in self.field_types


# --------------------------------------------------------------------------- names


def _check_name(what: str, value: str) -> None:
    if not _NAME_RE.match(value):
        raise ValueError(f"invalid {what} {value!r}: use lowercase letters, digits, '_' and '-'")


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can start an index name; raise ValueError otherwise."""
    _check_name("prefix", prefix)
    return prefix


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")


def _utc(timestamp: datetime | str) -> datetime:
    if isinstance(timestamp, str):
        timestamp = datetime.fromisoformat(timestamp.replace("Z", "+00:00").replace("z", "+00:00"))
    if timestamp.tzinfo is None:
        return timestamp.replace(tzinfo=UTC)
    return timestamp.astimezone(UTC)


@cache
def _stem(kind: str, pipeline: str, prefix: str) -> str:
    _check_kind(kind)
    _check_name("prefix", prefix)
    _check_name("pipeline", pipeline)
    return f"{prefix}-{kind}-{pipeline}"


def index_name(
    kind: str, pipeline: str, timestamp: datetime | str, prefix: str = DEFAULT_PREFIX
) -> str:
    """Daily index ``<prefix>-<kind>-<pipeline>-YYYY.MM.DD`` (UTC day of ``timestamp``).

    ``timestamp`` is a datetime (naive means UTC) or an RFC 3339 string. Cheap enough to call
    per document.
    """
    stem = _stem(kind, pipeline, prefix)
    if isinstance(timestamp, str) and _UTC_TEXT.match(timestamp):
        return f"{stem}-{timestamp[:4]}.{timestamp[5:7]}.{timestamp[8:10]}"
    return f"{stem}-{_utc(timestamp):%Y.%m.%d}"


def data_stream_name(kind: str, pipeline: str, prefix: str = DEFAULT_PREFIX) -> str:
    return _stem(kind, pipeline, prefix)


def catalog_index_name(pipeline: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The template catalog of a pipeline, ``<prefix>-templates-<pipeline>``: one index, no
    date (one document per template and partition, updated in place; never expires)."""
    return _stem("templates", pipeline, prefix)


def index_pattern(kind: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The pattern matching every index or data stream of ``kind``."""
    _check_kind(kind)
    return f"{prefix}-{kind}-*"


def dedot_labels(labels: Mapping[str, object] | None) -> dict[str, str]:
    """Replace dots in label keys by ``_`` (Filebeat's fix for ``app`` vs ``app.kubernetes.io/name``).

    Values become strings. Should a de-dotted key collide with an existing key, the label that
    had no dot wins.
    """
    out: dict[str, str] = {}
    for key, value in (labels or {}).items():
        if "." not in key:
            out[key] = str(value)
    for key, value in (labels or {}).items():
        if "." in key:
            out.setdefault(key.replace(".", "_"), str(value))
    return out


# --------------------------------------------------------------------------- mappings


def _kw(limit: int = KEYWORD_LIMIT) -> Mapping_:
    return {"type": "keyword", "ignore_above": limit}


def _obj(**props: Mapping_) -> Mapping_:
    return {"properties": props}


def _text(caps: Capabilities) -> Mapping_:
    return {"type": "match_only_text" if caps.has("match_only_text") else "text"}


def _keyword_bag(caps: Capabilities) -> Mapping_:
    """An object of arbitrary keys indexed as keywords, bounded in mapping size."""
    if caps.has("flattened"):
        return {"type": "flattened", "ignore_above": KEYWORD_LIMIT, "depth_limit": 10}
    return {"type": "object", "subobjects": False}


def _keyword_bag_templates(caps: Capabilities, paths: Iterable[str]) -> list[Mapping_]:
    if caps.has("flattened"):
        return []
    return [
        {f"{p.replace('.', '_')}_as_keyword": {"path_match": f"{p}.*", "mapping": _kw()}}
        for p in paths
    ]


def base_mappings() -> Mapping_:
    """Fields every kind has; unknown strings become capped keywords, never text."""
    return {
        "date_detection": False,
        "numeric_detection": False,
        "dynamic_templates": [
            {"strings_as_keyword": {"match_mapping_type": "string", "mapping": _kw()}},
        ],
        "properties": {
            "@timestamp": {"type": "date"},
            "event": _obj(id=_kw()),
            "logriver": _obj(
                pipeline=_kw(),
                doc_type=_kw(),
                flags=_kw(),
                errors=_kw(),
                template_is_new={"type": "boolean"},
                synthetic={"type": "boolean"},
            ),
        },
    }


def window_mappings() -> Mapping_:
    """``window.*`` and the grouping ``key.*`` (field names de-dotted) of metrics and anomalies."""
    key_fields = {name.replace(".", "_"): _kw() for name in KEY_FIELDS}
    return {
        "dynamic_templates": [{"key_as_keyword": {"path_match": "key.*", "mapping": _kw()}}],
        "properties": {
            "window": _obj(
                start={"type": "date"},
                end={"type": "date"},
                size_seconds={"type": "float"},
                step_seconds={"type": "float"},
                kind=_kw(),
                name=_kw(),
            ),
            "key": {"properties": key_fields},
        },
    }


def kind_mappings(kind: str, caps: Capabilities) -> Mapping_:
    """The mappings particular to ``kind``."""
    _check_kind(kind)
    if kind == "events":
        return _event_mappings(caps)
    if kind == "metrics":
        count = {"type": "long"}
        ms = {"type": "float"}
        template_counts = _obj(id=_kw(), count=count, template=_NOT_INDEXED)
        return {
            "properties": {
                "count": count,
                "error_count": count,
                "error_ratio": {"type": "float"},
                "bytes": count,
                "http_5xx": count,
                "distinct_templates": count,
                "templates_truncated": {"type": "boolean"},
                "new_templates": count,
                "latency_ms": _obj(p50=ms, p90=ms, p95=ms, p99=ms, count=count),
                "template_counts": template_counts,
                "error_template_counts": template_counts,
                "breakdown": _obj(field=_kw(), value=_kw(), count=count, error_count=count),
            }
        }
    if kind == "anomalies":
        kw = _kw()
        return {
            "properties": {
                "alert": _obj(id=kw, start={"type": "date"}, end={"type": "date"},
                              windows={"type": "long"}, status=kw, updated={"type": "date"}),
                "detectors": kw,
                "influencers": _obj(
                    field=kw, value=_kw(LONG_KEYWORD_LIMIT), template=_NOT_INDEXED,
                    expected={"type": "double"}, observed={"type": "double"},
                    score={"type": "double"}, error_count={"type": "long"},
                    windows={"type": "long"},
                ),
                "service": _obj(name=kw),
                "kubernetes": _obj(namespace=kw, pod=_obj(name=kw), container=_obj(name=kw)),
                "log": _obj(template_id=kw),
                "detector": _kw(),
                "score": {"type": "float"},
                "threshold": {"type": "float"},
                "model": _obj(version=_kw()),
                "severity": _kw(),
                "explanation": _obj(
                    summary=_text(caps),
                    items=_obj(
                        name=_kw(LONG_KEYWORD_LIMIT),
                        kind=_kw(),
                        expected={"type": "double"},
                        observed={"type": "double"},
                        template=_NOT_INDEXED,
                        recurring={"type": "boolean"},
                    ),
                ),
            }
        }
    return {
        "properties": {
            "type": _kw(),
            "template_id": _kw(),
            "template": {**_kw(LONG_KEYWORD_LIMIT), "fields": {"text": _text(caps)}},
            "texts": _NOT_INDEXED,
            "first_seen": {"type": "date"},
            "last_seen": {"type": "date"},
            "count": {"type": "long"},
            "partition": {"type": "integer"},
            "aliases": _kw(),
            "alias_of": _kw(),
            "example": _text(caps),
        }
    }


def _event_mappings(caps: Capabilities) -> Mapping_:
    kw = _kw()
    text = _text(caps)
    long = {"type": "long"}
    return {
        "dynamic_templates": _keyword_bag_templates(
            caps, ("attributes", "kubernetes.labels", "log.syslog.structured_data")),
        "properties": {
            "message": {**text, "fields": {"keyword": _kw()}},
            "event": _obj(
                id=kw,
                created={"type": "date"},
                ingested={"type": "date"},
                original=_NOT_INDEXED,
                duration=long,
                code=kw,
                severity={"type": "byte"},
            ),
            "log": _obj(
                level=kw,
                severity=kw,
                format=kw,
                logger=kw,
                template=_kw(LONG_KEYWORD_LIMIT),
                template_id=kw,
                template_params=_NOT_INDEXED,
                file=_obj(path=kw),
                offset=long,
                origin=_obj(file=_obj(name=kw, line=long)),
                syslog=_obj(
                    priority=long, version=long, appname=kw, hostname=kw, procid=kw, msgid=kw,
                    facility=_obj(code=long, name=kw), severity=_obj(code=long, name=kw),
                    structured_data=_keyword_bag(caps),
                ),
            ),
            "stream": kw,
            "service": _obj(name=kw),
            "host": _obj(name=kw, hostname=kw),
            "kubernetes": _obj(
                namespace=kw,
                pod=_obj(name=kw, uid=kw),
                container=_obj(name=kw),
                node=_obj(name=kw),
                labels=_keyword_bag(caps),
            ),
            "container": _obj(id=kw, name=kw, image=_obj(name=kw), runtime=kw),
            "http": _obj(
                request=_obj(method=kw, referrer=_kw(LONG_KEYWORD_LIMIT), bytes=long, id=kw),
                response=_obj(status_code={"type": "short"}, body=_obj(bytes=long)),
                version=kw,
                connection_id=long,
            ),
            "url": _obj(
                path=_kw(LONG_KEYWORD_LIMIT),
                original=_kw(LONG_KEYWORD_LIMIT),
                query=_kw(LONG_KEYWORD_LIMIT),
                domain=kw,
            ),
            "source": _obj(address=kw, ip={"type": "ip"}, port=long),
            "client": _obj(address=kw, ip={"type": "ip"}, port=long),
            "server": _obj(address=kw),
            "network": _obj(forwarded_ip={"type": "ip"}),
            "user_agent": _obj(original=kw),
            "user": _obj(name=kw),
            "error": _obj(type=kw, message=text, stack_trace=text),
            "process": _obj(pid=long, name=kw, thread=_obj(name=kw, id=long)),
            "trace": _obj(id=kw),
            "span": _obj(id=kw),
            "attributes": _keyword_bag(caps),
        },
    }


def settings(caps: Capabilities) -> Mapping_:
    """Index settings shared by every kind."""
    mapping: Mapping_ = {
        "total_fields.limit": TOTAL_FIELDS_LIMIT,
        "depth.limit": 20,
        "ignore_malformed": True,  # a bad ip or date drops that field, not the document
    }
    if caps.ignore_dynamic_beyond_limit:
        mapping["total_fields.ignore_dynamic_beyond_limit"] = True
    return {
        "index": {
            "number_of_shards": 1,
            "auto_expand_replicas": "0-1",
            "refresh_interval": "1s",  # near-real-time search, as Elasticsearch defaults
            "mapping": mapping,
        }
    }


def component_templates(caps: Capabilities) -> dict[str, Mapping_]:
    """Component template name -> body for ``PUT _component_template/<name>``."""
    meta = {"managed_by": "logriver", "version": TEMPLATE_VERSION}
    p = caps.prefix
    out = {
        f"{p}-settings": {"template": {"settings": settings(caps)}},
        f"{p}-mappings-base": {"template": {"mappings": base_mappings()}},
        f"{p}-mappings-window": {"template": {"mappings": window_mappings()}},
    }
    for kind in KINDS:
        out[f"{p}-mappings-{kind}"] = {"template": {"mappings": kind_mappings(kind, caps)}}
    return {
        name: {**body, "version": TEMPLATE_VERSION, "_meta": meta} for name, body in out.items()
    }


def _components_of(kind: str, prefix: str) -> list[str]:
    window = [f"{prefix}-mappings-window"] if kind in ("metrics", "anomalies") else []
    return [f"{prefix}-settings", f"{prefix}-mappings-base", *window, f"{prefix}-mappings-{kind}"]


def ilm_policy_names(prefix: str) -> dict[str, str]:
    """ILM policy per kind of target: ``stream`` (rollover + delete), ``daily`` (delete)."""
    return {"stream": f"{prefix}-stream", "daily": f"{prefix}-daily"}


def ilm_policies(prefix: str, retention_days: int) -> dict[str, Mapping_]:
    """Policy name -> body for ``PUT _ilm/policy/<name>``."""
    names = ilm_policy_names(prefix)
    delete = {"min_age": f"{retention_days}d", "actions": {"delete": {}}}
    meta = {"managed_by": "logriver", "version": TEMPLATE_VERSION}
    rollover = {"rollover": {"max_age": "1d", "max_primary_shard_size": "50gb"}}
    return {
        names["stream"]: {
            "policy": {
                "_meta": meta,
                "phases": {"hot": {"min_age": "0ms", "actions": rollover}, "delete": delete},
            }
        },
        names["daily"]: {
            "policy": {
                "_meta": meta,
                "phases": {"hot": {"min_age": "0ms", "actions": {}}, "delete": delete},
            }
        },
    }


def index_templates(caps: Capabilities) -> dict[str, Mapping_]:
    """Composable index template name -> body for ``PUT _index_template/<name>``."""
    p = caps.prefix
    policies = ilm_policy_names(p)
    out: dict[str, Mapping_] = {}
    for kind in KINDS:
        body: Mapping_ = {
            "index_patterns": [index_pattern(kind, p)],
            "composed_of": _components_of(kind, p),
            "priority": TEMPLATE_PRIORITY,
            "version": TEMPLATE_VERSION,
            "_meta": {"managed_by": "logriver", "kind": kind, "mode": caps.mode},
        }
        if caps.uses_data_stream(kind):
            body["data_stream"] = {}
        if caps.mode == "data_streams" and kind != "templates":  # (the catalog never expires)
            policy = policies["stream" if caps.uses_data_stream(kind) else "daily"]
            body["template"] = {"settings": {"index": {"lifecycle": {"name": policy}}}}
        out[f"{p}-{kind}"] = body
    return out


def merged_mappings(kind: str, caps: Capabilities) -> Mapping_:
    """The mappings an index of ``kind`` gets (components merged in order), for inspection."""
    props: Mapping_ = {}
    dynamic: list[Mapping_] = []
    components = component_templates(caps)
    for name in _components_of(kind, caps.prefix):
        mappings = components[name]["template"].get("mappings", {})
        _deep_merge(props, mappings.get("properties", {}))
        dynamic.extend(mappings.get("dynamic_templates", []))
    return {"dynamic_templates": dynamic, "properties": props}


def _deep_merge(into: Mapping_, other: Mapping_) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def mapped_fields(mappings: Mapping_) -> dict[str, str]:
    """Every field path of ``mappings`` (``properties`` and multi-``fields``) -> its type.

    Objects are listed with type ``object``.
    """
    out: dict[str, str] = {}

    def walk(props: Mapping_, prefix: str) -> None:
        for name, spec in props.items():
            path = f"{prefix}{name}"
            out[path] = spec.get("type", "object")
            walk(spec.get("properties", {}), f"{path}.")
            walk(spec.get("fields", {}), f"{path}.")

    walk(mappings.get("properties", {}), "")
    return out


# --------------------------------------------------------------------------- cluster


async def _answers(call: Any, **kwargs: Any) -> bool:
    """Whether an API exists on this cluster: any answer but an HTTP error."""
    try:
        await call(**kwargs)
    except ApiError:
        return False
    return True


async def detect(client: AsyncElasticsearch, prefix: str = DEFAULT_PREFIX) -> Capabilities:
    """Probe the cluster: data streams, ILM, optional field types and settings.

    Connection errors propagate; an API answering with an HTTP error counts as absent.
    """
    ilm = await _answers(client.ilm.get_lifecycle)
    data_streams = await _answers(client.indices.get_data_stream)
    types = []
    for field_type in OPTIONAL_TYPES:
        mappings = {"properties": {"probe": {"type": field_type}}}
        if await _answers(
            client.indices.simulate_template,
            index_patterns=[_PROBE_PATTERN],
            template={"mappings": mappings},
        ):
            types.append(field_type)
    beyond_limit = await _answers(
        client.indices.simulate_template,
        index_patterns=[_PROBE_PATTERN],
        template={"settings": {_IGNORE_BEYOND_LIMIT: True}},
    )
    return Capabilities(
        prefix=prefix,
        data_streams=data_streams,
        ilm=ilm,
        field_types=frozenset(types),
        ignore_dynamic_beyond_limit=beyond_limit,
    )


async def install(
    client: AsyncElasticsearch,
    prefix: str = DEFAULT_PREFIX,
    *,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    capabilities: Capabilities | None = None,
) -> Capabilities:
    """Detect the cluster's capabilities and install (idempotently) policies and templates.

    ``capabilities`` skips detection (e.g. to force daily indices on a full cluster).
    Existing indices keep their mappings; new daily indices or rollovers pick up changes.
    """
    _check_name("prefix", prefix)
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    caps = capabilities or await detect(client, prefix)
    caps = dataclasses.replace(caps, prefix=prefix, retention_days=retention_days)
    installed: list[str] = []
    if caps.mode == "data_streams":
        for name, body in ilm_policies(prefix, retention_days).items():
            await client.ilm.put_lifecycle(name=name, body=body)
            installed.append(f"_ilm/policy/{name}")
    for name, body in component_templates(caps).items():
        await client.cluster.put_component_template(name=name, body=body)
        installed.append(f"_component_template/{name}")
    for name, body in index_templates(caps).items():
        await client.indices.put_index_template(name=name, body=body)
        installed.append(f"_index_template/{name}")
    return dataclasses.replace(caps, installed=tuple(installed))


async def uninstall(client: AsyncElasticsearch, prefix: str) -> None:
    """Delete the templates and policies ``install`` created (not the data). For tests and teardown."""
    caps = Capabilities(prefix=prefix)
    for name in index_templates(caps):
        await _ignore_missing(client.indices.delete_index_template(name=name))
    for name in component_templates(caps):
        await _ignore_missing(client.cluster.delete_component_template(name=name))
    for name in ilm_policy_names(prefix).values():
        try:
            await client.ilm.delete_lifecycle(name=name)
        except ApiError:
            pass  # absent, or no ILM on this cluster


async def _ignore_missing(call: Any) -> None:
    try:
        await call
    except ApiError as exc:
        if exc.meta.status != 404:
            raise


def expired_indices(
    names: Iterable[str], prefix: str, days: int, now: datetime | None = None
) -> list[str]:
    """The daily indices among ``names`` whose whole day is older than ``days`` days."""
    if days < 0:
        raise ValueError("days must be >= 0")
    cutoff = _utc(now or datetime.now(UTC)) - timedelta(days=days)
    pattern = re.compile(
        rf"^{re.escape(prefix)}-(?:{'|'.join(KINDS)})-[a-z0-9][a-z0-9_-]*-(\d{{4}})\.(\d{{2}})\.(\d{{2}})$"
    )
    out = []
    for name in names:
        m = pattern.match(name)
        if not m:
            continue
        try:
            day = date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            continue
        day_end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        if day_end <= cutoff:
            out.append(name)
    return sorted(out)


async def apply_retention(
    client: AsyncElasticsearch,
    prefix: str,
    days: int,
    now: datetime | None = None,
    *,
    dry_run: bool = False,
) -> list[str]:
    """Delete the daily indices of ``prefix`` older than ``days`` days; return their names.

    The retention command where ILM is absent. Data stream backing indices are left to ILM.
    """
    _check_name("prefix", prefix)
    rows = await client.cat.indices(
        index=f"{prefix}-*", h="index", format="json", expand_wildcards="open,closed"
    )
    names = [row["index"] for row in cast(list[dict[str, str]], rows.body)]
    expired = expired_indices(names, prefix, days, now)
    if not dry_run:
        for name in expired:
            await _ignore_missing(client.indices.delete(index=name))
    return expired
