"""Contracts of every Logriver topic and index.

- ``*.schema.json``: JSON Schemas (draft 2020-12) of each topic's messages; ``load_schema`` and
  ``validate`` use them. Schemas refer to each other by relative ``$ref`` (all share the base
  ``https://logriver.dev/schemas/``).
- ``schemas.elasticsearch``: index templates and retention, built from code.
- ``schemas.kibana``: Kibana saved objects (data views, dashboard), built from code.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # jsonschema is imported on first validation: the worker does not need it
    from jsonschema import Draft202012Validator
    from referencing import Registry

# Schema name -> what it describes. The file is ``<name>.schema.json``.
SCHEMA_NAMES = (
    "raw_batch",
    "event",
    "metrics",
    "anomaly",
    "template",
    "template_change",
    "template_alias",
    "deadletter",
)

# Topic (without the optional topic prefix) -> schema names its messages follow.
TOPICS: dict[str, tuple[str, ...]] = {
    "logs.raw": ("raw_batch",),
    "logs.structured": ("event",),
    "logs.metrics": ("metrics",),
    "logs.anomalies": ("anomaly",),
    "logs.templates": ("template", "template_change", "template_alias"),
    "logs.deadletter": ("deadletter",),
}


class SchemaValidationError(ValueError):
    """A document does not follow its schema. ``path`` is where (e.g. ``log.level``)."""

    def __init__(self, schema: str, path: str, message: str) -> None:
        self.schema = schema
        self.path = path
        super().__init__(f"{schema}: {path or '<root>'}: {message}")


def topic_name(topic: str, prefix: str = "") -> str:
    """The Kafka topic name with the optional topic prefix (``prefix + topic``)."""
    if topic not in TOPICS:
        raise ValueError(f"unknown topic {topic!r}; known: {', '.join(TOPICS)}")
    return f"{prefix}{topic}"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The parsed JSON Schema called ``name`` (one of ``SCHEMA_NAMES``)."""
    if name not in SCHEMA_NAMES:
        raise ValueError(f"unknown schema {name!r}; known: {', '.join(SCHEMA_NAMES)}")
    text = resources.files(__name__).joinpath(f"{name}.schema.json").read_bytes()
    schema: dict[str, Any] = orjson.loads(text)
    return schema


@cache
def _registry() -> Registry:
    from referencing import Registry, Resource

    resources_ = [(s["$id"], Resource.from_contents(s)) for s in map(load_schema, SCHEMA_NAMES)]
    return Registry().with_resources(resources_)


@cache
def _validator(name: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name), registry=_registry())


def validate(name: str, obj: Any) -> None:
    """Raise ``SchemaValidationError`` (the most relevant error) if ``obj`` breaks schema ``name``."""
    from jsonschema.exceptions import best_match

    error = best_match(_validator(name).iter_errors(obj))
    if error is not None:
        path = ".".join(str(p) for p in error.absolute_path)
        raise SchemaValidationError(name, path, error.message)


def is_valid(name: str, obj: Any) -> bool:
    return _validator(name).is_valid(obj)
