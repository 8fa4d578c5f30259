"""SASL against a real Kafka: produce and consume through the SASL_PLAINTEXT listener with PLAIN,
SCRAM-SHA-256 and SCRAM-SHA-512 using ``streams.ops.security`` kwargs; a wrong password fails with
a clear error.

The SCRAM credentials are written when the storage is formatted, so this module runs its own
private Kafka node (fresh data directory, free ports, the cached distribution reused) unless
``LOGRIVER_TEST_KAFKA_SASL`` names the SASL listener of a node formatted with them. The user and
password are the fixed development credential of ``streams.services.kafka``."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from streams import services
from streams.ops.security import KafkaLoginError, KafkaSecurity, check_kafka_login
from streams.services import base
from streams.services.kafka import DEV_SASL_PASSWORD, DEV_SASL_USERNAME, Kafka
from streams.transport.kafka import ensure_topics

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _free_block(n: int = 3) -> int:
    for start in range(29200, 31000, 10):
        if not any(base.port_in_use(start + i) for i in range(n)):
            return start
    pytest.skip("no free block of ports for a private Kafka")


@pytest.fixture(scope="module")
def sasl_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> str:
    env = os.environ.get("LOGRIVER_TEST_KAFKA_SASL")
    if env:
        yield env
        return
    home = tmp_path_factory.mktemp("kafka-sasl")
    shared = base.Settings().dist(Kafka.name + "-" + Kafka.version)
    if (shared / ".complete").exists():  # reuse the cached broker jars
        (home / "dist").mkdir()
        (home / "dist" / shared.name).symlink_to(shared)
    port = _free_block()
    try:
        services.up(
            ("kafka",), home=home, kafka_port=port, kafka_heap="256m", progress=lambda _m: None
        )
    except services.ServiceError as exc:
        pytest.fail(f"could not start a private Kafka with a SASL listener: {exc}")
    try:
        yield Kafka(base.Settings(home=home, kafka_port=port)).sasl_address
    finally:
        services.down(home=home, progress=lambda _m: None)


def _security(mechanism: str, password: str = DEV_SASL_PASSWORD) -> KafkaSecurity:
    env = {
        "LOGRIVER_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "LOGRIVER_KAFKA_SASL_MECHANISM": mechanism,
        "LOGRIVER_KAFKA_USERNAME": DEV_SASL_USERNAME,
        "LOGRIVER_KAFKA_PASSWORD": password,
    }
    return KafkaSecurity.from_env(env)


async def _round_trip(bootstrap: str, sec: KafkaSecurity, topic: str) -> list[bytes]:
    await check_kafka_login(bootstrap, sec)
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **sec.aiokafka_kwargs())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **sec.aiokafka_kwargs())
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait(topic, f"{sec.mechanism} {i}".encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        **sec.aiokafka_kwargs(),
    )
    await consumer.start()
    got: list[bytes] = []
    try:
        async with asyncio.timeout(60):
            while len(got) < 5:
                batch = await consumer.getmany(timeout_ms=1000)
                for msgs in batch.values():
                    got.extend(m.value for m in msgs)
    finally:
        await consumer.stop()
    return got


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_produce_and_consume_over_sasl(sasl_bootstrap: str, mechanism: str) -> None:
    sec = _security(mechanism)
    topic = f"sasl-{mechanism.lower()}-{uuid.uuid4().hex[:8]}"
    got = asyncio.run(_round_trip(sasl_bootstrap, sec, topic))
    assert got == [f"{mechanism} {i}".encode() for i in range(5)]


def test_faust_credentials_carry_the_mechanism() -> None:
    creds = _security("SCRAM-SHA-256").faust_credentials()
    assert creds.mechanism.value == "SCRAM-SHA-256"
    assert creds.protocol.value == "SASL_PLAINTEXT"
    assert DEV_SASL_PASSWORD not in repr(_security("PLAIN"))


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_wrong_password_fails_clearly(sasl_bootstrap: str, mechanism: str) -> None:
    sec = _security(mechanism, password="not-the-password")
    with pytest.raises(KafkaLoginError) as info:
        asyncio.run(check_kafka_login(sasl_bootstrap, sec))
    message = str(info.value)
    assert mechanism in message and DEV_SASL_USERNAME in message
    assert "not-the-password" not in message

    async def produce() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=sasl_bootstrap, request_timeout_ms=5000, **sec.aiokafka_kwargs()
        )
        try:
            await producer.start()
        finally:
            await producer.stop()

    with pytest.raises(KafkaConnectionError):
        asyncio.run(produce())


def test_unreachable_is_not_a_login_error() -> None:
    port = _free_block(1)
    with pytest.raises(ConnectionError) as info:
        asyncio.run(check_kafka_login(f"127.0.0.1:{port}", _security("PLAIN"), timeout=2))
    assert not isinstance(info.value, KafkaLoginError)


def test_plaintext_listener_still_works_without_credentials(sasl_bootstrap: str) -> None:
    host, port = sasl_bootstrap.rsplit(":", 1)
    plain = f"{host}:{int(port) - 2}"
    if os.environ.get("LOGRIVER_TEST_KAFKA_SASL"):
        pytest.skip("external SASL listener: its PLAINTEXT port is unknown")
    asyncio.run(ensure_topics(plain, [f"plain-{uuid.uuid4().hex[:8]}"], partitions=1))
    with socket.create_connection((host, int(port)), timeout=2):
        pass
