"""Runtime settings: where Kafka and Elasticsearch are, and how topics and indices are named.

Explicit arguments win over environment variables; every variable is listed here:

- ``LOGRIVER_KAFKA``          Kafka bootstrap servers (default ``127.0.0.1:9092``, or the port
                              ``logriver services`` was given in ``LOGRIVER_KAFKA_PORT``)
- ``LOGRIVER_ES_URL``         Elasticsearch URL (default ``http://127.0.0.1:9200``, or the port
                              in ``LOGRIVER_ES_PORT``)
- ``LOGRIVER_TOPIC_PREFIX``   prefix for every topic name (default empty)
- ``LOGRIVER_INDEX_PREFIX``   prefix for every index and template (default ``logriver``)
- ``LOGRIVER_STATE_DIR``      where workers keep local state (default ``~/.cache/logriver/state``)
- ``LOGRIVER_PERSIST_SECONDS`` how often a worker snapshots its template miners to the table and
                              indexes template documents (default 30)
- ``LOGRIVER_SOURCE_IDLE_SECONDS`` after how long without events a container stream stops
                              holding back the watermark that closes windows (default 30)
- ``LOGRIVER_CATCHUP_HOLD_SECONDS`` while the worker catches up on old input (event time more
                              than 10 minutes behind the wall clock), windows close this much
                              later in event time, so a container stream read after others
                              (the node agent reads each file's backlog in chunks) still finds
                              them open (default 3600; 0 disables)
- ``LOGRIVER_STATE_CHUNK_BYTES`` largest changelog message of worker state (default 921600)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# Topic names (before the prefix). Schemas for each live in schemas/.
RAW = "logs.raw"
STRUCTURED = "logs.structured"
METRICS = "logs.metrics"
ANOMALIES = "logs.anomalies"
TEMPLATES = "logs.templates"
DEADLETTER = "logs.deadletter"
ALL_TOPICS = (RAW, STRUCTURED, METRICS, ANOMALIES, TEMPLATES, DEADLETTER)


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value else default


def _default_kafka() -> str:
    # the services this machine runs (``logriver services up``) listen where they were told
    return _env("LOGRIVER_KAFKA", f"127.0.0.1:{_env('LOGRIVER_KAFKA_PORT', '9092')}")


def _default_es() -> str:
    return _env("LOGRIVER_ES_URL", f"http://127.0.0.1:{_env('LOGRIVER_ES_PORT', '9200')}")


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = field(default_factory=_default_kafka)
    es_url: str = field(default_factory=_default_es)
    topic_prefix: str = field(default_factory=lambda: _env("LOGRIVER_TOPIC_PREFIX", ""))
    index_prefix: str = field(default_factory=lambda: _env("LOGRIVER_INDEX_PREFIX", "logriver"))
    state_dir: Path = field(
        default_factory=lambda: Path(
            _env("LOGRIVER_STATE_DIR", str(Path.home() / ".cache" / "logriver" / "state"))
        )
    )

    persist_seconds: float = field(
        default_factory=lambda: float(_env("LOGRIVER_PERSIST_SECONDS", "30"))
    )
    source_idle_seconds: float = field(
        default_factory=lambda: float(_env("LOGRIVER_SOURCE_IDLE_SECONDS", "30"))
    )
    catchup_hold_seconds: float = field(
        default_factory=lambda: float(_env("LOGRIVER_CATCHUP_HOLD_SECONDS", "3600"))
    )

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"
