"""KafkaPublisher's health as the collector reports it: degraded from the first failed send
until a batch is acknowledged again; nothing dropped meanwhile. (The real broker stop and
restart is covered by tests/integration/test_faults.py.)"""

from __future__ import annotations

import asyncio

from aiokafka.errors import KafkaConnectionError

from streams.ops.stats import WorkerStats
from streams.transport.kafka import KafkaPublisher


class FlakyProducer:
    """Fails ``failures`` sends, then acknowledges everything."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[bytes] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future:
        if self.failures:
            self.failures -= 1
            raise KafkaConnectionError("broker down")
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        self.sent.append(value)
        return fut


def test_health_goes_degraded_while_sends_fail_and_recovers() -> None:
    stats = WorkerStats(pipeline="collector", role="collector")
    changes: list[bool] = []

    def on_health(ok: bool) -> None:
        changes.append(ok)
        stats.kafka_ok = ok

    async def main() -> None:
        pub = KafkaPublisher("127.0.0.1:1", "t", retry_for=30, on_health=on_health)
        pub._producer = FlakyProducer(failures=2)  # no broker: the client is never started
        seen_degraded = asyncio.Event()

        async def watch() -> None:
            while stats.health()["status"] == "ok":
                await asyncio.sleep(0.01)
            assert "kafka unreachable" in stats.health()["reasons"]
            seen_degraded.set()

        watcher = asyncio.create_task(watch())
        await pub.publish(b"k", [{"id": "1", "message": "hello"}])
        await asyncio.wait_for(seen_degraded.wait(), 5)
        watcher.cancel()
        assert pub._producer.sent and pub.records == 1 and pub.failures == 2

    asyncio.run(main())
    assert changes == [False, True]
    assert stats.health()["status"] == "ok"
