"""``logriver search`` and ``streams.views.query`` against the real Elasticsearch: known events,
templates and anomalies are indexed through the real sink into indices created by the real
index templates, then each question a user asks first must return exactly them. This proves
the mappings serve those queries (keyword filters, date ranges, terms aggregations, text)."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import AsyncElasticsearch

from schemas import elasticsearch as es_schema
from schemas import validate
from schemas.examples import example
from streams.cli import search as search_cmd
from streams.sinks.elasticsearch import Action, ElasticsearchSink
from streams.views import query

NOW = datetime.now(UTC).replace(microsecond=0)


def _ts(delta: timedelta) -> str:
    return (NOW - delta).isoformat().replace("+00:00", "Z")


def _event(i: int, *, ns: str, pod: str, service: str, level: str, message: str,
           template: str, tid: str, ago: timedelta) -> dict:
    ev = example("event")
    ev["@timestamp"] = _ts(ago)
    ev["event"] = {"id": f"ev{i:06d}"}
    ev["message"] = message
    ev["log"] = {"level": level, "severity": level, "format": "text", "template": template,
                 "template_id": tid}
    ev["service"] = {"name": service}
    ev["kubernetes"] = {"namespace": ns, "pod": {"name": pod}, "container": {"name": service}}
    for key in ("http", "url", "source", "user_agent", "attributes"):
        ev.pop(key, None)
    validate("event", ev)
    return ev


def _known_events() -> list[dict]:
    evs, i = [], 0

    def add(n: int, **kw):
        nonlocal i
        for _ in range(n):
            evs.append(_event(i, **kw))
            i += 1

    m = timedelta(minutes=1)
    # shop/checkout: 3 recent errors, 1 old error (3 h ago), many infos
    add(3, ns="shop", pod="checkout-1", service="checkout", level="error",
        message="payment declined for order 42: insufficient funds",
        template="payment declined for order <*>: insufficient funds", tid="t-declined", ago=10 * m)
    add(1, ns="shop", pod="checkout-1", service="checkout", level="fatal",
        message="checkout crashed: out of memory", template="checkout crashed: <*>",
        tid="t-crash", ago=20 * m)
    add(1, ns="shop", pod="checkout-1", service="checkout", level="error",
        message="payment declined for order 7: insufficient funds",
        template="payment declined for order <*>: insufficient funds", tid="t-declined",
        ago=timedelta(hours=3))
    add(12, ns="shop", pod="checkout-1", service="checkout", level="info",
        message="order 1234 placed by alice", template="order <*> placed by <*>", tid="t-placed",
        ago=5 * m)
    add(6, ns="shop", pod="checkout-1", service="checkout", level="debug",
        message="cache lookup key=cart:bob hit=true", template="cache lookup key=<*> hit=<*>",
        tid="t-cache", ago=2 * m)
    # the same statement, indexed under an id the miner later merged into t-cache
    add(2, ns="shop", pod="checkout-1", service="checkout", level="debug",
        message="cache lookup key=cart:eve hit=false", template="cache lookup key=cart:eve hit=<*>",
        tid="t-cache-merged", ago=3 * m)
    # another pod of the same namespace (errors count for the namespace, not for the pod)
    add(2, ns="shop", pod="frontend-1", service="nginx", level="error",
        message="upstream timed out while reading response header",
        template="upstream timed out while reading response header", tid="t-upstream", ago=30 * m)
    # another namespace: must never show up in shop queries
    add(5, ns="payments", pod="ledger-0", service="ledger", level="error",
        message="commit failed for batch 17", template="commit failed for batch <*>",
        tid="t-commit", ago=15 * m)
    return evs


def _anomalies() -> list[dict]:
    out = []
    for i, (service, detector, score, ago) in enumerate([
        ("checkout", "error_rate", 7.5, timedelta(minutes=5)),
        ("checkout", "new_template", 4.0, timedelta(minutes=50)),
        ("ledger", "error_rate", 9.0, timedelta(minutes=10)),
    ]):
        a = example("anomaly")
        a["@timestamp"] = _ts(ago)
        a["key"] = {"kubernetes_namespace": "shop" if service == "checkout" else "payments",
                    "service_name": service}
        a["detector"] = detector
        a["score"] = score
        a["event"] = {"id": f"an{i:04d}"}
        validate("anomaly", a)
        out.append(a)
    return out


async def _index(settings) -> None:
    async with AsyncElasticsearch(settings.es_url) as es:
        caps = await es_schema.install(es, settings.index_prefix)
        letters: list = []

        async def dlq(batch):
            letters.extend(batch)

        sink = ElasticsearchSink(es, dead_letter_fn=dlq, pipeline="kubernetes")
        await sink.write(
            Action(caps.index_for("events", "kubernetes", ev["@timestamp"]), ev["event"]["id"], ev,
                   caps.op_type("events"))
            for ev in _known_events()
        )
        await sink.write(
            Action(caps.index_for("anomalies", "kubernetes", a["@timestamp"]), a["event"]["id"], a,
                   caps.op_type("anomalies"))
            for a in _anomalies()
        )
        alias = example("template")
        alias.update({"template_id": "t-cache-merged", "alias_of": "t-cache", "count": 0,
                      "template": "cache lookup key=<*> hit=<*>"})
        del alias["aliases"], alias["texts"]
        validate("template", alias)
        await sink.write([Action(caps.index_for("templates", "kubernetes", alias["@timestamp"]),
                                 "t-cache-merged-p0", alias, caps.op_type("templates"))])
        assert not letters, letters
        await es.indices.refresh(index=f"{settings.index_prefix}-*")


@pytest.fixture
def indexed(settings):
    global NOW  # times are relative to when the documents are indexed, not to collection
    NOW = datetime.now(UTC).replace(microsecond=0)
    asyncio.run(_index(settings))
    return settings  # the settings fixture deletes the indices afterwards


def _q(settings, fn, *args, **kwargs) -> query.Result:
    async def go():
        async with AsyncElasticsearch(settings.es_url) as es:
            return await fn(es, settings.index_prefix, *args, **kwargs)

    return asyncio.run(go())


def test_errors_of_a_namespace_in_the_last_hour(indexed):
    r = _q(indexed, query.errors, namespace="shop", since="1h")
    assert r.total == 3 + 1 + 2  # the 3 h old error and payments' errors are out
    assert {row["kubernetes.namespace"] for row in r.rows} == {"shop"}
    assert {row["log.level"] for row in r.rows} == {"error", "fatal"}
    stamps = [row["@timestamp"] for row in r.rows]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    assert _q(indexed, query.errors, namespace="shop", since="4h").total == 7
    assert _q(indexed, query.errors, namespace="shop", pod="frontend-1").total == 2
    assert _q(indexed, query.errors, since="1h").total == 11


def test_top_templates_of_a_pod(indexed):
    r = _q(indexed, query.top_templates, pod="checkout-1", size=3)
    # t-cache-merged was merged into t-cache: one row, both counts
    assert [(row["template_id"], row["count"]) for row in r.rows] == [
        ("t-placed", 12), ("t-cache", 8), ("t-declined", 4)]
    assert r.rows[1]["template"] == "cache lookup key=<*> hit=<*>"  # the latest text
    assert r.total == 25
    assert r.rows[0]["template"] == "order <*> placed by <*>"
    assert r.rows[2]["errors"] == 4 and r.rows[2]["last_seen"].replace(".000Z", "Z") == _ts(timedelta(minutes=10))
    recent = _q(indexed, query.top_templates, pod="checkout-1", since="1h")
    assert {row["template_id"]: row["count"] for row in recent.rows}["t-declined"] == 3
    assert _q(indexed, query.top_templates, pod="no-such-pod").rows == []


def test_anomalies_of_a_service(indexed):
    r = _q(indexed, query.anomalies, service="checkout")
    assert r.total == 2
    assert [(row["detector"], row["score"]) for row in r.rows] == [
        ("error_rate", 7.5), ("new_template", 4.0)]
    assert r.rows[0]["summary"] == "errors 6/min, expected about 0.4/min"
    assert _q(indexed, query.anomalies, service="checkout", since="30m").total == 1
    assert _q(indexed, query.anomalies, min_score=8).rows[0]["key"].endswith("service_name=ledger")


def test_free_query(indexed):
    r = _q(indexed, query.logs, "payment declined", since="15m")
    assert r.total == 3
    assert all("payment declined" in row["message"] for row in r.rows)
    r = _q(indexed, query.logs, "log.level:error AND kubernetes.namespace:payments", since="1h")
    assert r.total == 5
    assert _q(indexed, query.logs, "declined", since="4h").total == 4
    assert _q(indexed, query.logs, "insufficient", namespace="payments", since="4h").total == 0


def _cli(settings, argv: list[str], capsys) -> str:
    parser = argparse.ArgumentParser(prog="logriver")
    search_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args([*argv, "--es-url", settings.es_url,
                              "--index-prefix", settings.index_prefix])
    assert args.func(args) == 0
    return capsys.readouterr().out


def test_cli_table_and_json(indexed, capsys):
    out = _cli(indexed, ["search", "errors", "--namespace", "shop", "--since", "1h"], capsys)
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["@timestamp", "log.level", "kubernetes.namespace"]
    assert len(lines) == 1 + 6 + 1 and lines[-1] == "(6 shown of 6 matching errors)"
    data = json.loads(_cli(indexed, ["search", "templates", "--pod", "checkout-1", "--json"], capsys))
    assert data["rows"][0]["template_id"] == "t-placed"
    data = json.loads(_cli(indexed, ["search", "anomalies", "--service", "checkout", "--json"], capsys))
    assert data["total"] == 2
    data = json.loads(_cli(indexed, ["search", "logs", "crashed", "--since", "1h", "--json"], capsys))
    assert data["total"] == 1 and data["rows"][0]["log.level"] == "fatal"


def test_parse_since():
    assert query.parse_since("15m") == timedelta(minutes=15)
    assert query.parse_since("2w") == timedelta(weeks=2)
    assert query.parse_since(None) is None
    for bad in ("", "1y", "-1h", "0m", "h"):
        with pytest.raises(ValueError):
            query.parse_since(bad)
