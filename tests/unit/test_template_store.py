"""The worker's template store with its changelog simulated (what the broker acknowledged,
replayed as Faust recovers a table): ids survive a crash between two snapshots, the catalog
documents follow their schema, and one statement born under two ids on two partitions becomes
one template. The real-Kafka path runs in tests/integration/test_spine.py."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from test_table_state import Table, recover

from schemas import validate
from streams.pipeline import Pipeline
from streams.templates.store import TemplateStore


class _Signal:
    def connect(self, fn: Any) -> Any:
        return fn


class _App:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.on_partitions_revoked = _Signal()
        self.on_before_shutdown = _Signal()

    def Table(self, name: str, **_kw: Any) -> Table:
        return self.table

    def timer(self, interval: float) -> Any:
        return lambda fn: fn


class _Outputs:
    sink = None
    caps = None

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, dict]] = []

    async def publish(self, items: list[tuple[bytes, bytes]], topic: str | None = None) -> None:
        self.published += [(topic or "", k, orjson.loads(v)) for k, v in items]


def _store(table: Table) -> tuple[TemplateStore, _Outputs]:
    outputs = _Outputs()
    store = TemplateStore(_App(table), Pipeline(name="k8s"), outputs,  # type: ignore[arg-type]
                          source_topic="logs.raw", templates_topic="logs.templates")
    return store, outputs


def _mine(store: TemplateStore, partition: int, lines: list[str], ts: str = "2026-01-01T00:00:00.000Z"):
    """Mine lines as the structure agent does: match, observe, journal before the ack."""
    miner = store.miner(partition)
    assert miner is not None
    events, ids = [], []
    for line in lines:
        template, tid, _params, _new, change = miner.match_fields(line)
        ids.append(tid)
        events.append({"@timestamp": ts, "message": line, "log": {"template_id": tid, "template": template}})
        if change is not None:
            store.changed(partition, change.record("k8s", ts))
    store.observe(partition, events)
    asyncio.run(store.journal([partition]))
    return ids


def test_ids_given_after_the_last_snapshot_survive_a_crash():
    table = Table()
    store, _ = _store(table)
    _mine(store, 0, ["user root logged in from 10.0.0.1"])
    asyncio.run(store.persist())  # snapshot; later births only in the journal
    before = _mine(store, 0, ["worker alpha joined pool one", "worker beta joined pool one",
                              "disk sda is full"])
    # SIGKILL: only what the broker acknowledged comes back
    restarted, _ = _store(recover(table.changelog_topic.sent))
    after = _mine(restarted, 0, ["worker gamma joined pool one", "disk sdb is full",
                                 "user bob logged in from 10.0.0.2"])
    assert after[0] == before[0] and after[1] == before[2]
    miner = restarted.miner(0)
    assert miner is not None
    assert {t for _, t, _ in miner.templates()} >= {"worker <*> joined pool one"}


def test_persist_writes_the_snapshot_drops_the_journal_and_publishes_the_catalog():
    table = Table()
    store, outputs = _store(table)
    ids = _mine(store, 2, ["job alpha started on node", "job beta started on node", "GET /a 200"],
                ts="2026-01-01T00:00:05.000Z")
    assert any(k.startswith(b"2:j:") for k in table.data)
    asyncio.run(store.persist())
    assert not any(k.startswith(b"2:j:") for k in table.data)
    docs = [d for topic, _, d in outputs.published if topic == "logs.templates"]
    for d in docs:
        validate("template", d)
    by_id = {d["template_id"]: d for d in docs}
    assert by_id[ids[0]]["template"] == "job <*> started on node"
    assert by_id[ids[0]]["texts"] == ["job alpha started on node"]
    assert by_id[ids[0]]["count"] == 2 and by_id[ids[0]]["partition"] == 2
    outputs.published.clear()
    asyncio.run(store.persist())
    assert outputs.published == []  # nothing changed: nothing written again
    restarted, _ = _store(recover(table.changelog_topic.sent))
    assert _mine(restarted, 2, ["job gamma started on node"]) == [ids[0]]


def test_one_statement_born_under_two_ids_on_two_partitions_becomes_one():
    table = Table()
    store, outputs = _store(table)
    a = _mine(store, 0, ["user alice logged in from 10.0.0.1", "user carol logged in from 10.0.0.3"])
    b = _mine(store, 1, ["user bob logged in from 10.0.0.2", "user dave logged in from 10.0.0.4"])
    assert a[0] != b[0]  # born from different first messages: the masking cannot know names
    asyncio.run(store.persist())
    survivor, merged = min(a[0], b[0]), max(a[0], b[0])
    aliases = [d for topic, _, d in outputs.published if d.get("type") == "alias"]
    assert [(d["alias_id"], d["template_id"]) for d in aliases] == [(merged, survivor)]
    validate("template_alias", aliases[0])
    catalog = [d for _, _, d in outputs.published if d.get("type") == "template"]
    assert {d["template_id"]: d.get("alias_of") for d in catalog if d.get("alias_of")} == {merged: survivor}
    # both partitions give the surviving id from now on, also after a restart
    assert _mine(store, 0, ["user erin logged in from 10.0.0.5"]) == [survivor]
    assert _mine(store, 1, ["user frank logged in from 10.0.0.6"]) == [survivor]
    restarted, _ = _store(recover(table.changelog_topic.sent))
    assert _mine(restarted, 1, ["user gus logged in from 10.0.0.7"]) == [survivor]
    miner = restarted.miner(1)
    assert miner is not None and miner.resolve(merged) == survivor
