"""The real service manager end to end: up, status, a second up (no-op), down, nothing left.

Runs only when neither service is running and their ports are free, so it never disturbs
services someone (or the session fixture) already started."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest

from streams import services
from streams.services import base, manager
from streams.services.base import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def idle() -> None:
    """Skip unless both services are stopped and their ports free."""
    if any(st.running for st in services.status(probe=False).values()):
        pytest.skip("services already running: not touching them")
    for svc in manager._services(Settings()):
        busy = [p for p in svc.ports().values() if base.port_in_use(p)]
        if busy:
            pytest.skip(f"{svc.name} ports {busy} in use by something else")


async def _topics(bootstrap: str) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return await admin.list_topics()
    finally:
        await admin.close()


def test_up_status_down(idle: None) -> None:
    messages: list[str] = []
    try:
        started = services.up(progress=messages.append)
        assert set(started) == {"kafka", "elasticsearch"}
        assert all(st.running and st.pid for st in started.values())
        assert services.kafka_bootstrap() == started["kafka"].address == "127.0.0.1:9092"
        assert services.elasticsearch_url() == started["elasticsearch"].address
        asyncio.run(_topics(services.kafka_bootstrap()))
        url = services.elasticsearch_url() + "/_cluster/health"
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert json.load(resp)["status"] in ("yellow", "green")

        again = services.up(progress=messages.append)
        assert {k: v.pid for k, v in again.items()} == {k: v.pid for k, v in started.items()}
        assert any("already running" in m for m in messages)

        st = services.status()
        assert all(s.running for s in st.values())
        assert st["elasticsearch"].detail.startswith("cluster health")
    finally:
        services.down(progress=messages.append)
    for svc in manager._services(Settings()):
        assert base.pids_with_marker(svc.marker) == []
        assert base.read_state(svc.run_dir) is None
        assert not any(base.port_in_use(p) for p in svc.ports().values())
    assert not any(st.running for st in services.status().values())
