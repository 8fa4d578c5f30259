"""Shared fixtures. Integration tests get the real Kafka and Elasticsearch, started once per
test session (and stopped at the end if this session started them); every test gets its own
topic and index names."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from streams.ops.config import Settings

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """The ../shared folder (loghub data), or None when absent."""
    env = os.environ.get("LOGRIVER_SHARED")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared"]:
        if (cand / "data").is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def services():
    """Kafka and Elasticsearch on 127.0.0.1, started once per test session."""
    from streams import services as svc

    before = {name: st.running for name, st in svc.status().items()}
    try:
        up = svc.up()
    except svc.ServiceError as exc:
        pytest.fail(f"could not start the services: {exc}")
    yield up
    if not any(before.values()) and os.environ.get("LOGRIVER_KEEP_SERVICES") != "1":
        svc.down()


@pytest.fixture
def settings(services, tmp_path: Path):
    """Settings with unique topic and index names for this test; what the test left under
    them is deleted afterwards (hundreds of leftover topics slow every client's metadata
    refresh in the rest of the session)."""
    import asyncio

    from streams.demo.chain import remove_run

    run = uuid.uuid4().hex[:10]
    s = Settings(
        kafka_bootstrap=services["kafka"].address,
        es_url=services["elasticsearch"].address,
        topic_prefix=f"t{run}.",
        index_prefix=f"lrtest-{run}",
        state_dir=tmp_path / "state",
    )
    yield s
    for problem in asyncio.run(remove_run(s)):
        print(f"teardown: {problem}")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/integration/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)
