"""The real service manager end to end: up, status, a second up (no-op), down, nothing left.

Runs a private pair on free ports under its own home (the cached distributions are shared by
symlink), so it runs beside the services the test session started and never touches them."""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.request
import uuid

import pytest

from streams import services
from streams.services import base, manager
from streams.services.base import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(400)]


def _free_ports() -> int:
    """A base port P with P, P+1 (Kafka, its controller), P+5, P+105 (Elasticsearch) free."""
    for start in range(31000, 33000, 10):
        if not any(base.port_in_use(start + i) for i in (0, 1, 5, 105)):
            return start
    pytest.skip("no free block of ports for a private Kafka and Elasticsearch")


@pytest.fixture
def private(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Environment pointing the service manager at a private home and free ports. The home
    sits under the default home: as root, Elasticsearch runs as another user who must reach it."""
    shared = base.default_home()
    home = shared / "test-homes" / uuid.uuid4().hex[:10]
    (home / "dist").mkdir(parents=True)
    for dist in (shared / "dist").glob("*"):
        if (dist / ".complete").exists():
            (home / "dist" / dist.name).symlink_to(dist)
    port = _free_ports()
    monkeypatch.setenv("LOGRIVER_HOME", str(home))
    monkeypatch.setenv("LOGRIVER_KAFKA_PORT", str(port))  # controller: port + 1
    monkeypatch.setenv("LOGRIVER_ES_PORT", str(port + 5))  # transport: port + 105
    monkeypatch.setenv("LOGRIVER_KAFKA_HEAP", "256m")
    monkeypatch.setenv("LOGRIVER_ES_HEAP", "384m")
    settings = Settings()
    assert settings.home == home and settings.kafka_port == port
    yield settings
    services.down(progress=lambda _m: None)
    shutil.rmtree(home, ignore_errors=True)


async def _topics(bootstrap: str) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return await admin.list_topics()
    finally:
        await admin.close()


def test_up_status_down(private: Settings) -> None:
    messages: list[str] = []
    assert not any(st.running for st in services.status(probe=False).values())
    try:
        started = services.up(progress=messages.append)
        assert set(started) == {"kafka", "elasticsearch"}
        assert all(st.running and st.pid for st in started.values())
        expected = f"127.0.0.1:{private.kafka_port}"
        assert services.kafka_bootstrap() == started["kafka"].address == expected
        assert started["elasticsearch"].address == f"http://127.0.0.1:{private.es_port}"
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
    for svc in manager._services(private):
        assert base.pids_with_marker(svc.marker) == []
        assert base.read_state(svc.run_dir) is None
        assert not any(base.port_in_use(p) for p in svc.ports().values())
    assert not any(st.running for st in services.status().values())
