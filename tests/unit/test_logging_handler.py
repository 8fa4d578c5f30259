"""The app-direct logging handler, with a fake publishing function (no Kafka here)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator

import orjson
import pytest

from streams.sources.logging_handler import FLAG_FORMAT_ERROR, KafkaLoggingHandler
from streams.transport.records import Record, decode_batch, encode_batch

WAIT = 10.0


class FakeBroker:
    """Collects published batches; can be made to block or fail."""

    def __init__(self) -> None:
        self.batches: list[tuple[bytes, bytes]] = []
        self.released = threading.Event()
        self.released.set()
        self.failures = 0

    async def publish(self, key: bytes, records: list[Record]) -> None:
        while not self.released.is_set():
            await asyncio.sleep(0.005)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker unavailable")
        self.batches.append((key, encode_batch(records)))  # what goes on the wire

    @property
    def records(self) -> list[Record]:
        return [r for _, value in self.batches for r in decode_batch(value)]


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.Logger("test_logging_handler", logging.DEBUG)  # noqa: LOG001 - unregistered: pytest attaches no handler
    yield log
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()


def wait_for(cond, timeout: float = WAIT) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.005)


def test_records_are_published_in_batch_format(logger: logging.Logger) -> None:
    broker = FakeBroker()
    handler = KafkaLoggingHandler("unused:9092", "logs.raw", publish=broker.publish, key="svc/a")
    logger.addHandler(handler)
    logger.info("hello %s", "world")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    handler.close()
    assert handler.published == 2 and handler.dropped == 0
    first, second = broker.records
    assert first["message"] == "hello world"
    assert first["source"]["type"] == "python" and first["source"]["logger"] == logger.name
    assert first["fields"]["level"] == "INFO" and first["fields"]["function"] == (
        "test_records_are_published_in_batch_format"
    )
    assert first["time"].endswith("Z") and first["id"] != second["id"]
    assert (
        second["message"].startswith("failed\nTraceback")
        and "ValueError: boom" in second["message"]
    )
    assert second["fields"]["exception"] == "ValueError"
    assert {key for key, _ in broker.batches} == {b"svc/a"}


def test_full_buffer_drops_and_counts_never_blocks(logger: logging.Logger) -> None:
    broker = FakeBroker()
    broker.released.clear()  # the broker hangs
    handler = KafkaLoggingHandler(
        "unused:9092", "logs.raw", publish=broker.publish, max_buffer=50, batch_size=10
    )
    logger.addHandler(handler)
    for i in range(1000):
        logger.info("line %d", i)  # returns although nothing can be delivered
    assert handler.dropped >= 1000 - 50 - 10
    broker.released.set()
    handler.close()
    assert handler.published + handler.dropped == 1000
    messages = [r["message"] for r in broker.records]
    assert messages == sorted(messages, key=lambda m: int(m.split()[1]))  # order kept


def test_failed_batches_are_retried_with_the_same_ids(logger: logging.Logger) -> None:
    broker = FakeBroker()
    broker.failures = 3
    handler = KafkaLoggingHandler(
        "unused:9092", "logs.raw", publish=broker.publish, retry_backoff=0.01
    )
    logger.addHandler(handler)
    logger.warning("must arrive")
    wait_for(lambda: handler.published == 1)
    assert handler.errors == 3
    handler.close()
    assert [r["message"] for r in broker.records] == ["must arrive"]


def test_close_gives_up_after_its_timeout_and_counts(logger: logging.Logger) -> None:
    broker = FakeBroker()
    broker.failures = 10**9  # Kafka never comes back
    handler = KafkaLoggingHandler(
        "unused:9092", "logs.raw", publish=broker.publish, retry_backoff=0.01, close_timeout=0.2
    )
    logger.addHandler(handler)
    for i in range(5):
        logger.error("lost %d", i)
    handler.close()  # returns: bounded by close_timeout
    assert handler.dropped == 5 and handler.published == 0
    logger.error("after close")  # ignored, counted, no exception
    assert handler.dropped == 6


def test_never_raises_into_the_application(logger: logging.Logger) -> None:
    broker = FakeBroker()
    handler = KafkaLoggingHandler("unused:9092", "logs.raw", publish=broker.publish)
    logger.addHandler(handler)

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

    logger.info("%d items", "not a number")
    logger.info("value: %s", Unprintable())
    logger.info(b"\xff\x00 bytes msg")
    handler.close()
    records = broker.records
    assert len(records) == 3
    assert FLAG_FORMAT_ERROR in records[0]["flags"] and "not a number" in records[0]["message"]
    assert FLAG_FORMAT_ERROR in records[1]["flags"]
    orjson.dumps(records)


def test_ignores_kafka_client_logs(logger: logging.Logger) -> None:
    broker = FakeBroker()
    handler = KafkaLoggingHandler("unused:9092", "logs.raw", publish=broker.publish)
    kafka_logger = logging.Logger("aiokafka.producer")  # noqa: LOG001
    kafka_logger.addHandler(handler)
    kafka_logger.warning("feedback")
    logger.addHandler(handler)
    logger.info("kept")
    handler.close()
    assert [r["message"] for r in broker.records] == ["kept"]
