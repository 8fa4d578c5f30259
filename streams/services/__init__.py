"""Local Kafka and Elasticsearch for development, tests and the demo, without Docker.

``up()`` fetches Apache Kafka (KRaft, one combined broker+controller node) and Elasticsearch
(the integ-test zip) from Maven Central with ``mvn``, caches them under ``<home>/dist/``,
keeps their state (config, data, logs, pid files) under ``<home>/run/<service>/``, starts them
on 127.0.0.1 with bounded heaps as detached processes (they outlive the caller), and waits until
they answer: Kafka to a metadata request, Elasticsearch with a yellow/green
``_cluster/health``. ``status()`` reports them, ``down()`` stops them. As root, Elasticsearch
runs as an unprivileged system user (it refuses root), created on first use.

Environment variables (keyword arguments of ``up`` win over them):

- ``LOGRIVER_HOME``                   cache + state folder (default ``/var/cache/logriver`` as
                                      root, so the ES user can reach it; else ``~/.cache/logriver``)
- ``LOGRIVER_KAFKA_PORT``             Kafka client port (default 9092)
- ``LOGRIVER_KAFKA_CONTROLLER_PORT``  KRaft controller port (default Kafka port + 1)
- ``LOGRIVER_ES_PORT``                Elasticsearch HTTP port (default 9200)
- ``LOGRIVER_ES_TRANSPORT_PORT``      Elasticsearch transport port (default HTTP port + 100)
- ``LOGRIVER_KAFKA_HEAP``             Kafka JVM heap, -Xms = -Xmx (default ``512m``)
- ``LOGRIVER_ES_HEAP``                Elasticsearch JVM heap, -Xms = -Xmx (default ``512m``)
- ``LOGRIVER_ES_USER``                account Elasticsearch runs as when we are root
                                      (default ``logriver``)
- ``JAVA_HOME``                       the Java 17+ to use (default: ``java`` on PATH)

Owns the local services only; nothing in the engine imports it (the CLI, tests and demo do).
"""

from .base import ServiceError, ServiceStatus, Settings
from .manager import down, elasticsearch_url, kafka_bootstrap, status, up

__all__ = [
    "ServiceError",
    "ServiceStatus",
    "Settings",
    "down",
    "elasticsearch_url",
    "kafka_bootstrap",
    "status",
    "up",
]
