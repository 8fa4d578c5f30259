"""Index templates built from code, offline: names, mappings mirroring the schemas, detection
and installation against a fake client, retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from elasticsearch import ApiError

import schemas
from schemas import elasticsearch as es
from schemas.examples import example

CORE = es.Capabilities(prefix="lr")  # the Maven test distribution, as far as mappings go
FULL = es.Capabilities(
    prefix="lr",
    data_streams=True,
    ilm=True,
    field_types=frozenset(es.OPTIONAL_TYPES),
    ignore_dynamic_beyond_limit=True,
)
KIND_SCHEMA = {
    "events": "event",
    "metrics": "metrics",
    "anomalies": "anomaly",
    "templates": "template",
}


# ------------------------------------------------------------------ labels


def test_dedot_labels_keeps_app_and_app_kubernetes_io_name_apart() -> None:
    labels = {"app": "web", "app.kubernetes.io/name": "web-frontend", "tier": 1}
    out = es.dedot_labels(labels)
    assert out == {"app": "web", "app_kubernetes_io/name": "web-frontend", "tier": "1"}
    # no key is a prefix of another key followed by a dot: no object/keyword conflict
    assert not any(k.startswith(j + ".") for k in out for j in out)
    assert labels["app.kubernetes.io/name"] == "web-frontend"  # input untouched


def test_dedot_labels_collision_keeps_the_undotted_label() -> None:
    assert es.dedot_labels({"a.b": "dotted", "a_b": "plain"}) == {"a_b": "plain"}
    assert es.dedot_labels(None) == {}


def test_dedotted_labels_follow_the_event_schema() -> None:
    doc = example("event")
    doc["kubernetes"]["labels"] = es.dedot_labels({"app": "x", "app.kubernetes.io/name": "y"})
    schemas.validate("event", doc)


# ------------------------------------------------------------------ names


@pytest.mark.parametrize(
    ("timestamp", "day"),
    [
        ("2026-11-26T23:59:59.999999Z", "2026.11.26"),
        ("2026-11-27T01:30:00+02:00", "2026.11.26"),  # UTC day, not local
        (datetime(2026, 1, 2, 3, 4, 5), "2026.01.02"),  # naive means UTC
        (datetime(2026, 1, 2, 23, 0, tzinfo=timezone(timedelta(hours=-3))), "2026.01.03"),
    ],
)
def test_index_name_uses_the_utc_day(timestamp: datetime | str, day: str) -> None:
    assert es.index_name("events", "kubernetes", timestamp, "lr") == f"lr-events-kubernetes-{day}"


def test_index_name_default_prefix_and_validation() -> None:
    assert es.index_name("metrics", "p1", "2026-01-01T00:00:00Z").startswith("logriver-metrics-p1-")
    with pytest.raises(ValueError, match="unknown kind"):
        es.index_name("logs", "p", "2026-01-01T00:00:00Z")
    with pytest.raises(ValueError, match="invalid pipeline"):
        es.index_name("events", "My Pipeline", "2026-01-01T00:00:00Z")
    with pytest.raises(ValueError, match="invalid prefix"):
        es.index_name("events", "p", "2026-01-01T00:00:00Z", prefix="_x")


def test_capabilities_choose_targets_and_bulk_actions() -> None:
    ts = "2026-11-26T10:00:00Z"
    assert CORE.mode == "daily_indices"
    for kind in ("events", "metrics", "anomalies"):
        assert CORE.index_for(kind, "k8s", ts) == f"lr-{kind}-k8s-2026.11.26"
        assert CORE.op_type(kind) == "index"
    assert FULL.mode == "data_streams"
    assert FULL.index_for("events", "k8s", ts) == "lr-events-k8s"
    assert FULL.op_type("events") == "create"
    # templates are a catalog updated in place: one index, whatever the time, never a data
    # stream, never expired
    for caps in (CORE, FULL):
        assert caps.index_for("templates", "k8s", ts) == "lr-templates-k8s"
        assert caps.index_for("templates", "k8s", "2030-01-01T00:00:00Z") == "lr-templates-k8s"
        assert caps.op_type("templates") == "index"
    assert es.expired_indices(["lr-templates-k8s"], "lr", 0) == []
    # data streams without ILM: daily indices still
    assert es.Capabilities(data_streams=True).mode == "daily_indices"


# ------------------------------------------------------------------ templates


@pytest.mark.parametrize("caps", [CORE, FULL], ids=["core", "full"])
def test_index_templates_compose_existing_components(caps: es.Capabilities) -> None:
    components = es.component_templates(caps)
    templates = es.index_templates(caps)
    assert set(templates) == {f"lr-{k}" for k in es.KINDS}
    policies = es.ilm_policies("lr", 7)
    for kind in es.KINDS:
        body = templates[f"lr-{kind}"]
        assert body["index_patterns"] == [f"lr-{kind}-*"]
        assert all(name in components for name in body["composed_of"])
        assert ("data_stream" in body) == caps.uses_data_stream(kind)
        policy = body.get("template", {}).get("settings", {}).get("index", {}).get("lifecycle")
        if caps.mode == "data_streams" and kind != "templates":
            assert policy["name"] in policies
        else:
            assert policy is None
        orjson.dumps(body)
    for body in components.values():
        orjson.dumps(body)


def test_patterns_of_two_prefixes_do_not_overlap() -> None:
    a = es.index_templates(es.Capabilities(prefix="logriver"))
    b = es.index_templates(es.Capabilities(prefix="logriver-test"))
    assert not set(a) & set(b)
    assert not {p for t in a.values() for p in t["index_patterns"]} & {
        p for t in b.values() for p in t["index_patterns"]
    }


def test_ilm_policies() -> None:
    policies = es.ilm_policies("lr", 14)
    stream, daily = policies["lr-stream"]["policy"], policies["lr-daily"]["policy"]
    assert stream["phases"]["delete"] == {"min_age": "14d", "actions": {"delete": {}}}
    assert "rollover" in stream["phases"]["hot"]["actions"]
    assert "rollover" not in daily["phases"]["hot"]["actions"]  # plain indices cannot roll over


def test_settings_bound_the_mapping() -> None:
    core = es.settings(CORE)["index"]["mapping"]
    assert core["total_fields.limit"] == es.TOTAL_FIELDS_LIMIT
    assert core["ignore_malformed"] is True
    assert "total_fields.ignore_dynamic_beyond_limit" not in core
    assert es.settings(FULL)["index"]["mapping"]["total_fields.ignore_dynamic_beyond_limit"]


def _fields(kind: str, caps: es.Capabilities) -> dict[str, str]:
    return es.mapped_fields(es.merged_mappings(kind, caps))


def test_event_mapping_types() -> None:
    fields = _fields("events", CORE)
    expect = {
        "@timestamp": "date",
        "message": "text",
        "message.keyword": "keyword",
        "event.id": "keyword",
        "event.created": "date",
        "event.original": "keyword",
        "event.duration": "long",
        "log.level": "keyword",
        "log.severity": "keyword",
        "event.severity": "byte",
        "log.syslog.severity.name": "keyword",
        "log.syslog.facility.code": "long",
        "http.request.bytes": "long",
        "client.ip": "ip",
        "source.port": "long",
        "log.template_id": "keyword",
        "log.offset": "long",
        "kubernetes.namespace": "keyword",
        "kubernetes.pod.uid": "keyword",
        "kubernetes.labels": "object",
        "http.response.status_code": "short",
        "http.response.body.bytes": "long",
        "source.ip": "ip",
        "error.stack_trace": "text",
        "process.pid": "long",
        "attributes": "object",
        "logriver.pipeline": "keyword",
        "logriver.flags": "keyword",
    }
    assert {k: fields.get(k) for k in expect} == expect
    mappings = es.merged_mappings("events", CORE)
    props = mappings["properties"]
    assert props["event"]["properties"]["original"]["index"] is False
    assert props["message"]["fields"]["keyword"]["ignore_above"] == es.KEYWORD_LIMIT
    # without flattened: keyword-only objects without sub-objects
    assert props["attributes"]["subobjects"] is False
    assert props["kubernetes"]["properties"]["labels"]["subobjects"] is False
    matched = {
        t[name]["path_match"]: t[name]["mapping"]["type"]
        for t in mappings["dynamic_templates"]
        for name in t
        if "path_match" in t[name]
    }
    assert matched == {"attributes.*": "keyword", "kubernetes.labels.*": "keyword",
                       "log.syslog.structured_data.*": "keyword"}


def test_richer_types_only_when_detected() -> None:
    full = _fields("events", FULL)
    assert full["message"] == "match_only_text"
    assert full["attributes"] == "flattened"
    assert full["kubernetes.labels"] == "flattened"
    assert not any(
        "path_match" in t[n]
        for t in es.merged_mappings("events", FULL)["dynamic_templates"]
        for n in t
    )
    core_types = {t for kind in es.KINDS for t in _fields(kind, CORE).values()}
    assert not core_types & set(es.OPTIONAL_TYPES)


def test_strings_never_become_text_dynamically() -> None:
    for kind in es.KINDS:
        mappings = es.merged_mappings(kind, CORE)
        for template in mappings["dynamic_templates"]:
            (spec,) = template.values()
            assert spec["mapping"]["type"] == "keyword"
            assert spec["mapping"]["ignore_above"] <= es.LONG_KEYWORD_LIMIT
    base = es.base_mappings()
    assert base["date_detection"] is False and base["numeric_detection"] is False


def _schema_leaves(schema: dict[str, Any], defs: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Leaf paths of a JSON Schema's ``properties`` (``$ref`` to local or metrics defs followed)."""
    if "$ref" in schema:
        ref = schema["$ref"]
        name = ref.split("#/$defs/")[1]
        if not ref.startswith("#"):
            defs = schemas.load_schema(ref.split("#")[0].removesuffix(".schema.json"))["$defs"]
        return _schema_leaves(defs[name], defs, path)
    if "properties" in schema and schema.get("type") != "array":
        out: dict[str, Any] = {}
        for key, sub in schema["properties"].items():
            out.update(_schema_leaves(sub, defs, f"{path}{key}."))
        return out
    if schema.get("type") == "array" and "properties" in schema.get("items", {}):
        return _schema_leaves(schema["items"], defs, path)
    return {path.rstrip("."): schema}


@pytest.mark.parametrize("kind", es.KINDS)
@pytest.mark.parametrize("caps", [CORE, FULL], ids=["core", "full"])
def test_mappings_mirror_the_schema(kind: str, caps: es.Capabilities) -> None:
    schema = schemas.load_schema(KIND_SCHEMA[kind])
    leaves = _schema_leaves(schema, schema.get("$defs", {}))
    fields = _fields(kind, caps)
    missing = [p for p in leaves if p not in fields and not p.startswith(("key", "attributes"))]
    assert not missing, f"{kind}: schema fields without a mapping: {missing}"
    time_fields = [p for p, s in leaves.items() if b"d{4}-" in orjson.dumps(s)]
    assert "@timestamp" in time_fields
    for path in time_fields:
        assert fields[path] == "date", path


def test_key_fields_are_keywords() -> None:
    fields = _fields("metrics", CORE)
    for name in es.KEY_FIELDS:
        assert fields[f"key.{name.replace('.', '_')}"] == "keyword"


# ------------------------------------------------------------------ retention


def test_expired_indices_keep_every_day_that_is_not_wholly_older() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    names = [
        "lr-events-k8s-2026.11.24",  # ends 11-25 00:00 > cutoff 11-24 12:00: kept
        "lr-events-k8s-2026.11.23",  # ends 11-24 00:00 <= cutoff: expired
        "lr-metrics-other_p-2025.01.01",
        "lr-templates-k8s-2026.11.26",
        "lr-events-k8s",  # a data stream: ILM's job
        ".ds-lr-events-k8s-2026.11.01-000001",
        "lr2-events-k8s-2020.01.01",  # another prefix
        "lr-events-k8s-2026.02.30",  # not a date
        "lr-unknown-k8s-2020.01.01",  # not a kind
    ]
    assert es.expired_indices(names, "lr", 2, now) == [
        "lr-events-k8s-2026.11.23",
        "lr-metrics-other_p-2025.01.01",
    ]
    assert es.expired_indices(names, "lr", 0, now) == sorted(
        ["lr-events-k8s-2026.11.23", "lr-events-k8s-2026.11.24", "lr-metrics-other_p-2025.01.01"]
    )
    with pytest.raises(ValueError):
        es.expired_indices(names, "lr", -1, now)


# ------------------------------------------------------------------ against a fake client


class _Meta:
    def __init__(self, status: int) -> None:
        self.status = status


def _api_error(status: int) -> ApiError:
    return ApiError(f"HTTP {status}", meta=_Meta(status), body={})  # type: ignore[arg-type]


class _Response:
    def __init__(self, body: Any) -> None:
        self.body = body


class _Namespace:
    def __init__(self, fake: FakeES, name: str) -> None:
        self._fake, self._name = fake, name

    def __getattr__(self, method: str) -> Any:
        async def call(**kwargs: Any) -> _Response:
            return self._fake.handle(f"{self._name}.{method}", kwargs)

        return call


class FakeES:
    """Answers like a cluster with or without ILM, data streams and some field types."""

    def __init__(self, *, full: bool, indices: list[str] = ()) -> None:  # type: ignore[assignment]
        self.full = full
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.indices_present = list(indices)
        self.ilm = _Namespace(self, "ilm")
        self.indices = _Namespace(self, "indices")
        self.cluster = _Namespace(self, "cluster")
        self.cat = _Namespace(self, "cat")

    def handle(self, name: str, kwargs: dict[str, Any]) -> _Response:
        self.calls.append((name, kwargs))
        if name in ("ilm.get_lifecycle", "indices.get_data_stream") and not self.full:
            raise _api_error(405 if name.startswith("ilm") else 400)
        if name == "indices.simulate_template":
            props = kwargs.get("template", {}).get("mappings", {}).get("properties", {})
            probe = props.get("probe", {}).get("type")
            if probe and probe != "flattened" and not self.full:
                raise _api_error(400)
        if name == "cat.indices":
            return _Response([{"index": n} for n in self.indices_present])
        if name == "indices.delete":
            self.indices_present.remove(kwargs["index"])
        return _Response({})

    def names(self, prefix: str) -> list[str]:
        return [kw["name"] for call, kw in self.calls if call.startswith(prefix)]


@pytest.mark.parametrize("full", [False, True], ids=["test-distribution", "full"])
def test_install_detects_and_installs(full: bool) -> None:
    fake = FakeES(full=full)
    caps = asyncio.run(es.install(fake, "lr", retention_days=9))  # type: ignore[arg-type]
    assert caps.mode == ("data_streams" if full else "daily_indices")
    assert caps.has("flattened") and caps.has("match_only_text") == full
    assert caps.retention_days == 9
    components = fake.names("cluster.put_component_template")
    templates = fake.names("indices.put_index_template")
    assert templates == [f"lr-{k}" for k in es.KINDS]
    assert len(components) == 7
    ilm = fake.names("ilm.put_lifecycle")
    assert ilm == (["lr-stream", "lr-daily"] if full else [])
    # components before the index templates that use them
    order = [c for c, _ in fake.calls if c.startswith(("cluster.put", "indices.put"))]
    assert order.index("indices.put_index_template") > max(
        i for i, c in enumerate(order) if c == "cluster.put_component_template"
    )
    assert len(caps.installed) == len(components) + len(templates) + len(ilm)
    bodies = {kw["name"]: kw["body"] for c, kw in fake.calls if c == "ilm.put_lifecycle"}
    if full:
        assert bodies["lr-stream"]["policy"]["phases"]["delete"]["min_age"] == "9d"


def test_install_with_given_capabilities_skips_detection() -> None:
    fake = FakeES(full=True)
    caps = asyncio.run(es.install(fake, "lr", capabilities=CORE))  # type: ignore[arg-type]
    assert caps.mode == "daily_indices"
    assert not any(c.endswith(("get_lifecycle", "simulate_template")) for c, _ in fake.calls)


def test_install_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="prefix"):
        asyncio.run(es.install(FakeES(full=False), "Bad"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retention_days"):
        asyncio.run(es.install(FakeES(full=False), "lr", retention_days=0))  # type: ignore[arg-type]


def test_apply_retention_deletes_only_expired_daily_indices() -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    fake = FakeES(full=False, indices=["lr-events-k8s-2026.11.01", "lr-events-k8s-2026.11.25"])
    dry = asyncio.run(es.apply_retention(fake, "lr", 7, now, dry_run=True))  # type: ignore[arg-type]
    assert dry == ["lr-events-k8s-2026.11.01"] and len(fake.indices_present) == 2
    done = asyncio.run(es.apply_retention(fake, "lr", 7, now))  # type: ignore[arg-type]
    assert done == dry
    assert fake.indices_present == ["lr-events-k8s-2026.11.25"]
