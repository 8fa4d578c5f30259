"""The JSON Schemas of every topic: valid, accept the examples and real builders' output, reject
what a consumer must never see."""

from __future__ import annotations

import orjson
import pytest
from jsonschema import Draft202012Validator

import schemas
from schemas.examples import example
from streams.transport.records import encode_batch, event_id, now_rfc3339


@pytest.mark.parametrize("name", schemas.SCHEMA_NAMES)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = schemas.load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/{name}.schema.json")


@pytest.mark.parametrize("name", schemas.SCHEMA_NAMES)
def test_example_is_valid(name: str) -> None:
    schemas.validate(name, example(name))


def test_every_topic_has_known_schemas() -> None:
    for topic, names in schemas.TOPICS.items():
        assert set(names) <= set(schemas.SCHEMA_NAMES), topic
    assert {n for names in schemas.TOPICS.values() for n in names} == set(schemas.SCHEMA_NAMES)
    assert schemas.topic_name("logs.raw", "t1.") == "t1.logs.raw"
    with pytest.raises(ValueError, match="unknown topic"):
        schemas.topic_name("logs.nope")


def test_unknown_schema_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown schema 'nope'"):
        schemas.load_schema("nope")


def test_raw_batch_from_the_records_module() -> None:
    record = {
        "id": event_id("file", 1, 0),
        "message": "hello",
        "time": None,
        "observed": now_rfc3339(),
        "stream": "stderr",
        "source": {"type": "file", "path": "/var/log/a.log", "offset": 0},
    }
    schemas.validate("raw_batch", orjson.loads(encode_batch([record])))
    with pytest.raises(schemas.SchemaValidationError, match="raw_batch: v"):
        schemas.validate("raw_batch", {"v": 2, "records": []})
    with pytest.raises(schemas.SchemaValidationError, match="records.0"):
        schemas.validate("raw_batch", {"v": 1, "records": [{"id": "x"}]})


def test_minimal_event_is_valid() -> None:
    schemas.validate(
        "event",
        {
            "@timestamp": "2026-01-01T00:00:00Z",
            "message": "x",
            "event": {"id": "a"},
            "logriver": {"pipeline": "kubernetes"},
        },
    )


def test_event_accepts_further_ecs_fields_as_objects() -> None:
    doc = example("event")
    doc["log"]["origin"] = {"file": {"name": "main.go", "line": 12}}
    doc["cloud"] = {"region": "eu-west-1"}
    schemas.validate("event", doc)
    doc["loose"] = "a top-level string"
    with pytest.raises(schemas.SchemaValidationError, match="loose"):
        schemas.validate("event", doc)


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("log", "severity"), "WARNING", "log.severity"),
        (("@timestamp",), "2026-01-01T02:00:00+02:00", "@timestamp"),
        (("@timestamp",), "yesterday", "@timestamp"),
        (("http", "response", "status_code"), "200", "http.response.status_code"),
        (("kubernetes", "labels"), {"app.kubernetes.io/name": "web"}, "kubernetes.labels"),
        (("attributes",), {"nested": {"deep": 1}}, "attributes.nested"),
        (("logriver", "pipeline"), "Bad Name", "logriver.pipeline"),
    ],
)
def test_event_rejections_name_the_field(path: tuple[str, ...], value: object, where: str) -> None:
    doc = example("event")
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(schemas.SchemaValidationError) as info:
        schemas.validate("event", doc)
    assert info.value.path.startswith(where)
    assert str(info.value).startswith(f"event: {info.value.path}: ")


def test_event_requires_its_id() -> None:
    doc = example("event")
    del doc["event"]["id"]
    with pytest.raises(schemas.SchemaValidationError, match="'id' is a required property"):
        schemas.validate("event", doc)


def test_metrics_and_anomaly_rejections() -> None:
    doc = example("metrics")
    doc["count"] = -1
    assert not schemas.is_valid("metrics", doc)
    doc = example("metrics")
    doc["key"] = {"kubernetes.namespace": "shop"}  # keys are de-dotted
    assert not schemas.is_valid("metrics", doc)
    doc = example("metrics")
    doc["latency_ms"] = None  # no samples
    assert schemas.is_valid("metrics", doc)
    doc = example("anomaly")
    doc["severity"] = "apocalyptic"
    assert not schemas.is_valid("anomaly", doc)
    doc = example("anomaly")
    del doc["explanation"]["items"][0]["name"]
    assert not schemas.is_valid("anomaly", doc)


def test_templates_topic_tells_documents_from_changes() -> None:
    kinds = ("template", "template_change", "template_alias")
    for a in kinds:
        for b in kinds:
            assert schemas.is_valid(a, example(b)) == (a == b), (a, b)


def test_dead_letters_of_the_streams_builder_are_valid() -> None:
    from streams.transport.deadletter import dead_letter

    binary = dead_letter(
        "decode",
        "bad_raw_message",
        b"\xff\xfe",
        detail="not JSON",
        pipeline="kubernetes",
        topic="logs.raw",
        partition=0,
        offset=3,
    )
    assert binary["original_encoding"] == "base64"
    schemas.validate("deadletter", binary)
    schemas.validate(
        "deadletter",
        dead_letter("index", "mapper_parsing_exception", {"a": 1}, step="elasticsearch:x"),
    )
    schemas.validate("deadletter", dead_letter("window", "late_event", None))
    bad = example("deadletter")
    del bad["original_encoding"]
    with pytest.raises(schemas.SchemaValidationError, match="original_encoding"):
        schemas.validate("deadletter", bad)
