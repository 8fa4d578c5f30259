"""Index templates against the real Elasticsearch of the test session (the ``services``
fixture starts it): install under a unique prefix, index every kind, aggregate the keyword
fields, clean up."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from elasticsearch import ApiError, AsyncElasticsearch

from schemas import elasticsearch as es
from schemas import kibana
from schemas.examples import example

PIPELINE = "kubernetes"


pytestmark = pytest.mark.integration


@pytest.fixture
def es_url(services) -> str:
    return services["elasticsearch"].address


def _run(es_url: str, work: Callable[[AsyncElasticsearch, str], Awaitable[None]]) -> None:
    """Run ``work(client, prefix)`` with a unique prefix, then delete everything it made."""

    async def main() -> None:
        prefix = f"lrtest-{uuid.uuid4().hex[:10]}"
        client = AsyncElasticsearch(es_url, request_timeout=60)
        try:
            await work(client, prefix)
        finally:
            try:
                streams = (await client.indices.get_data_stream(name=f"{prefix}-*")).body
            except ApiError:  # no data streams on this cluster
                streams = {"data_streams": []}
            for stream in streams["data_streams"]:
                await client.indices.delete_data_stream(name=stream["name"])
            rows = await client.cat.indices(index=f"{prefix}-*", h="index", format="json")
            for row in rows.body:
                await client.indices.delete(index=row["index"])
            await es.uninstall(client, prefix)
            await client.close()

    asyncio.run(main())


def _documents() -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, _id, document) samples of every kind, labels in both forms."""
    dedotted = example("event")
    dedotted["kubernetes"]["labels"] = es.dedot_labels(
        {"app": "web", "app.kubernetes.io/name": "web-frontend"}
    )
    raw_labels = example("event")  # as a careless producer would send them
    raw_labels["event"]["id"] = "raw-labels"
    raw_labels["kubernetes"]["labels"] = {"app": "web", "app.kubernetes.io/name": "web-frontend"}
    raw_labels["attributes"] = {"a": "1", "a.b": "2", "n": 5}
    other = example("event")
    other["event"]["id"] = "other"
    other["kubernetes"]["namespace"] = "billing"
    other["log"]["level"] = "error"
    other["http"]["response"]["status_code"] = 503
    docs = [("events", d["event"]["id"], d) for d in (dedotted, raw_labels, other)]
    docs.append(("metrics", "m1", example("metrics")))
    docs.append(("anomalies", "a1", example("anomaly")))
    template = example("template")
    docs.append(("templates", template["template_id"], template))
    return docs


async def _index_all(client: AsyncElasticsearch, caps: es.Capabilities) -> None:
    operations: list[dict[str, Any]] = []
    for kind, doc_id, doc in _documents():
        target = caps.index_for(kind, PIPELINE, doc["@timestamp"])
        operations += [{caps.op_type(kind): {"_index": target, "_id": doc_id}}, doc]
    result = await client.bulk(operations=operations, refresh=True)
    failed = [item for item in result["items"] if next(iter(item.values())).get("error")]
    assert not result["errors"], failed


async def _terms(client: AsyncElasticsearch, prefix: str, kind: str, field: str) -> dict[str, int]:
    result = await client.search(
        index=es.index_pattern(kind, prefix),
        size=0,
        aggs={"t": {"terms": {"field": field, "size": 20}}},
    )
    return {b["key"]: b["doc_count"] for b in result["aggregations"]["t"]["buckets"]}


async def _count(client: AsyncElasticsearch, prefix: str, kind: str, query: dict[str, Any]) -> int:
    result = await client.count(index=es.index_pattern(kind, prefix), query=query)
    return int(result["count"])


@pytest.mark.parametrize("variant", ["detected", "core-types-only"])
def test_install_index_and_aggregate_every_kind(es_url: str, variant: str) -> None:
    async def work(client: AsyncElasticsearch, prefix: str) -> None:
        forced = es.Capabilities() if variant == "core-types-only" else None
        caps = await es.install(client, prefix, retention_days=3, capabilities=forced)
        assert caps.prefix == prefix and caps.installed
        await _index_all(client, caps)

        assert await _terms(client, prefix, "events", "kubernetes.namespace") == {
            "shop": 2,
            "billing": 1,
        }
        assert await _terms(client, prefix, "events", "log.level") == {"info": 2, "error": 1}
        assert await _terms(client, prefix, "events", "service.name") == {"api": 3}
        assert await _terms(client, prefix, "events", "log.template_id") == {"t-3fa9c2": 3}
        assert await _terms(client, prefix, "events", "logriver.flags") == {"truncated": 3}
        # both label forms: the de-dotted key, and the dotted one the mapping also absorbs
        assert await _terms(client, prefix, "events", "kubernetes.labels.app") == {"web": 3}
        assert await _terms(
            client, prefix, "events", "kubernetes.labels.app_kubernetes_io/name"
        ) == {"web-frontend": 2}
        assert await _terms(
            client, prefix, "events", "kubernetes.labels.app.kubernetes.io/name"
        ) == {"web-frontend": 1}
        assert await _terms(client, prefix, "events", "attributes.a.b") == {"2": 1}
        assert await _terms(client, prefix, "events", "attributes.user.id") == {"42": 2}
        assert await _count(client, prefix, "events", {"match": {"message": "users"}}) == 3
        assert (
            await _count(
                client, prefix, "events", {"range": {"http.response.status_code": {"gte": 500}}}
            )
            == 1
        )
        assert await _count(client, prefix, "events", {"term": {"source.ip": "10.0.0.0/8"}}) == 3

        assert await _terms(client, prefix, "metrics", "key.kubernetes_namespace") == {"shop": 1}
        assert await _terms(client, prefix, "metrics", "window.name") == {"per_minute": 1}
        assert await _terms(client, prefix, "anomalies", "detector") == {"errors": 1}
        assert await _terms(client, prefix, "anomalies", "service.name") == {"api": 1}
        assert await _terms(client, prefix, "anomalies", "influencers.value") == {
            "t-9e1a00": 1, "api-7d9f8b6c5-x2x4z": 1}
        assert await _terms(client, prefix, "anomalies", "key.service_name") == {"api": 1}
        assert await _terms(client, prefix, "templates", "template_id") == {"t-3fa9c2": 1}

        # every field a Kibana panel uses is in the live mappings
        objects = kibana.saved_objects(prefix)
        for view_id, fields in kibana.fields_by_data_view(objects).items():
            kind = view_id.removeprefix(f"{prefix}-")
            live = await client.indices.get_mapping(index=es.index_pattern(kind, prefix))
            mapped: set[str] = set()
            for index in live.body.values():
                mapped |= set(es.mapped_fields(index["mappings"]))
            assert fields <= mapped, (kind, sorted(fields - mapped))

    _run(es_url, work)


def test_retention_deletes_only_old_daily_indices(es_url: str) -> None:
    async def work(client: AsyncElasticsearch, prefix: str) -> None:
        caps = await es.install(client, prefix, capabilities=es.Capabilities())
        old = es.index_name("events", PIPELINE, "2000-01-01T00:00:00Z", prefix)
        today = caps.index_for("events", PIPELINE, datetime.now(UTC))
        for index in (old, today):
            await client.index(index=index, id="x", document=example("event"), refresh=True)
        assert await es.apply_retention(client, prefix, 30, dry_run=True) == [old]
        assert await client.indices.exists(index=old)
        assert await es.apply_retention(client, prefix, 30) == [old]
        assert not await client.indices.exists(index=old)
        assert await client.indices.exists(index=today)

    _run(es_url, work)
