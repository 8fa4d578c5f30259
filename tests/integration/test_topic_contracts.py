"""Contract test: run the real worker over generated input (bad lines included, plus one raw
message that is not a batch), then consume every output topic and validate every message
against its JSON Schema (``schemas.TOPICS`` maps topics to schemas)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas import TOPICS, SchemaValidationError, validate
from streams.demo.chain import WorkerProcess, collect_once, wait_for_count, wait_until_consumed
from streams.demo.loggen import generate
from streams.ops.config import Settings
from streams.pipeline import load_pipeline
from streams.replay.tree import replay_tree
from streams.transport.kafka import ensure_topics

# The kubernetes pipeline (same group name) with an eager detector, so anomalies appear too.
CONTRACT_PIPELINE = str(Path(__file__).resolve().parents[1] / "pipelines" / "contracts.py")
# Where the generated input starts, relative to the minute: with the seed, this fixes which
# lines share a window, so whether the detectors alert (the fixture checks it in-process).
START_OFFSET = timedelta(seconds=21)


async def _read_all(bootstrap: str, topics: list[str], idle: float = 4.0,
                    timeout: float = 60.0) -> dict[str, list[tuple[bytes | None, bytes]]]:
    """Every message of ``topics`` from the beginning, until nothing new came for ``idle`` s."""
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_partition_fetch_bytes=16 * 1024 * 1024,
                                fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    out: dict[str, list[tuple[bytes | None, bytes]]] = {t: [] for t in topics}
    try:
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < idle:
            for tp, msgs in (await consumer.getmany(timeout_ms=500, max_records=5000)).items():
                out[tp.topic].extend((m.key, m.value) for m in msgs)
                last = time.monotonic()
    finally:
        await consumer.stop()
    return out


def _schema_for(topic: str, obj: dict) -> str:
    names = TOPICS[topic]
    if topic == "logs.templates":
        return {"change": "template_change", "alias": "template_alias"}.get(obj.get("type"), "template")
    return names[0]


@pytest.fixture(scope="module")
def run(services, tmp_path_factory):
    """One real worker run over generated input plus two raw messages that are not batches;
    returns (generated, messages by topic, worker log path)."""
    tmp = tmp_path_factory.mktemp("contracts")
    rid = uuid.uuid4().hex[:10]
    settings = Settings(kafka_bootstrap=services["kafka"].address,
                        es_url=services["elasticsearch"].address, topic_prefix=f"t{rid}.",
                        index_prefix=f"lrtest-{rid}", state_dir=tmp / "state")
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    gen = generate(tmp / "log", 3000, seed=11, bad_lines=True, start=start + START_OFFSET)
    # the premise: this input raises alerts (checked in-process, the way replay scores it),
    # so an empty logs.anomalies below is the worker's fault, not the input's
    expected = replay_tree([str(gen.root)], load_pipeline(CONTRACT_PIPELINE)).alerts
    assert expected, "the generated input raises no alert: change seed or START_OFFSET"
    raw = settings.topic("logs.raw")

    async def produce_garbage() -> None:
        await ensure_topics(settings.kafka_bootstrap, [raw])
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(raw, b'{"not": "a batch"}', key=b"garbage")
            await producer.send_and_wait(raw, b"\xff\xfenot json at all", key=b"garbage")
        finally:
            await producer.stop()

    asyncio.run(produce_garbage())
    asyncio.run(collect_once(settings, gen.root, tmp / "cp"))
    log_path = tmp / "worker.log"
    with WorkerProcess(CONTRACT_PIPELINE, settings, log_path=log_path) as worker:
        found = asyncio.run(wait_for_count(settings, gen.events, timeout=180, worker=worker))
        assert found == gen.events, log_path.read_text()[-3000:]
        assert asyncio.run(wait_until_consumed(
            settings, f"{settings.topic_prefix}logriver-kubernetes", raw)) == 0
        anomalies, deadline = settings.topic("logs.anomalies"), time.monotonic() + 90
        while time.monotonic() < deadline and not asyncio.run(
                _read_all(settings.kafka_bootstrap, [anomalies], idle=1.0, timeout=5))[anomalies]:
            assert worker.alive(), log_path.read_text()[-3000:]
        time.sleep(3)  # let the windows close and the last outputs flush
    names = {settings.topic(t): t for t in TOPICS}
    got = asyncio.run(_read_all(settings.kafka_bootstrap, list(names)))
    return gen, {names[t]: msgs for t, msgs in got.items()}, log_path


def test_every_output_message_follows_its_schema(run):
    _gen, by_topic, _log_path = run
    failures: list[str] = []
    counts: Counter = Counter()
    for topic, msgs in by_topic.items():
        for key, value in msgs:
            if topic == "logs.raw" and key == b"garbage":
                continue  # our deliberately bad input
            obj = orjson.loads(value)
            schema = _schema_for(topic, obj)
            try:
                validate(schema, obj)
                counts[schema] += 1
            except SchemaValidationError as exc:
                if len(failures) < 20:
                    failures.append(f"{topic}: {exc}: {value[:300]!r}")
    assert not failures, "\n".join(failures)
    assert by_topic["logs.structured"], "no event published"
    letters = [orjson.loads(v) for _, v in by_topic["logs.deadletter"]]
    assert {dl["reason"] for dl in letters if dl["stage"] == "decode"} == {"bad_raw_message"}
    print("validated:", dict(counts))
    assert by_topic["logs.metrics"], "no closed window published"
    assert by_topic["logs.anomalies"], "no alert published (the replay of the same input raised some)"


def test_each_event_published_once_and_bad_input_dead_lettered_once(run):
    """The consumers' view of exactly once: every event once on logs.structured, each bad
    raw message dead-lettered once, and no good input dead-lettered."""
    gen, by_topic, log_path = run
    letters = [orjson.loads(v) for _, v in by_topic["logs.deadletter"]]
    # Windows count events by event time: a node's backlog replayed file by file arrives out
    # of order by more than the allowed lateness, and those events go to the late stream
    # (stage "window", reason late_*): counted there, still indexed and published.
    late = [dl for dl in letters if dl["stage"] == "window"]
    assert all(dl["reason"].startswith("late_") and dl.get("event_id") for dl in late)
    reasons = Counter((dl["stage"], dl["reason"]) for dl in letters if dl["stage"] != "window")
    published = Counter(k for k, _ in by_topic["logs.structured"])
    assert {dl["event_id"].encode() for dl in late} <= set(published)
    assert reasons == {("decode", "bad_raw_message"): 2}, (
        f"dead letters {dict(reasons)}; worker log:\n"
        + "\n".join(line for line in log_path.read_text().splitlines()
                    if "Error" in line)[-2000:])
    assert len(published) == gen.events
    assert max(published.values()) == 1, (
        f"{len(by_topic['logs.structured'])} messages on logs.structured for {gen.events} events")
    assert by_topic["logs.templates"], "no template change published"
