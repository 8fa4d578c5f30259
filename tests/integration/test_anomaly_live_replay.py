"""The live path and a replay raise the same alerts on the same node log tree.

One scenario tree (services in several formats sharing a namespace, a rolling deploy,
incidents) goes through the node agent -> Kafka -> the shipped kubernetes pipeline's worker
-> Elasticsearch, and through ``replay_tree`` in-process; the alerts in Elasticsearch (each
at its latest version: updates overwrite by id) must equal the replay's, field for field."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import orjson
from elasticsearch import ApiError, AsyncElasticsearch

from benchmarks import scenarios
from streams.demo.chain import WorkerProcess, collect_once, count_events
from streams.pipeline import load_pipeline
from streams.replay.tree import replay_tree


async def _alerts(settings) -> dict[str, dict]:
    async with AsyncElasticsearch(settings.es_url) as es:
        index = f"{settings.index_prefix}-anomalies-*"
        try:
            await es.indices.refresh(index=index, allow_no_indices=True)
            resp = await es.search(index=index, size=1000, allow_no_indices=True,
                                   query={"match_all": {}})
        except ApiError as exc:
            if exc.meta.status == 503:
                return {}
            raise
    return {h["_id"]: h["_source"] for h in resp["hits"]["hits"]}


def _canonical(alerts: dict[str, dict]) -> dict[str, bytes]:
    return {k: orjson.dumps(v, option=orjson.OPT_SORT_KEYS) for k, v in sorted(alerts.items())}


def test_live_and_replay_raise_the_same_alerts(settings, tmp_path):
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    sc = scenarios.write(tmp_path / "log", seed=42, n_windows=50, t0=start,
                         kinds=("error_burst", "new_exception", "traffic_drop"), deploys=1,
                         first=15, volume=0.4)
    summary = replay_tree([str(sc.root)], load_pipeline("kubernetes"))
    replayed = _canonical(summary.alerts)
    named = {(a["kubernetes"]["namespace"], a["service"]["name"]) for a in summary.alerts.values()}
    incidents = {(i.namespace, i.service) for i in sc.incidents if i.should_alert}
    assert named & incidents, (named, incidents)  # the replay found incidents, by service

    asyncio.run(collect_once(settings, sc.root, tmp_path / "cp"))
    with WorkerProcess("kubernetes", settings, log_path=tmp_path / "worker.log") as worker:
        deadline = time.monotonic() + 300
        while asyncio.run(count_events(settings)) < summary.events:
            assert worker.alive() and time.monotonic() < deadline, "events not all indexed"
            time.sleep(1)
        live: dict[str, bytes] = {}
        while time.monotonic() < deadline:  # alerts grow and close as windows close
            live = _canonical(asyncio.run(_alerts(settings)))
            if live == replayed:
                break
            assert worker.alive()
            time.sleep(2)
    assert set(live) == set(replayed)
    for key in replayed:
        assert orjson.loads(live[key]) == orjson.loads(replayed[key])
