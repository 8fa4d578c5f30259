"""Apache Kafka in KRaft mode (one combined broker+controller node), fetched with Maven.

Besides the PLAINTEXT client listener the node has a ``SASL_PLAINTEXT`` listener (port
``LOGRIVER_KAFKA_SASL_PORT``, default Kafka port + 2) accepting PLAIN, SCRAM-SHA-256 and
SCRAM-SHA-512 for one user, ``DEV_SASL_USERNAME`` / ``DEV_SASL_PASSWORD``: a fixed, public
*development* credential for local runs and the SASL integration tests, never a production
secret. PLAIN users live in the listener's JAAS line in server.properties; SCRAM credentials
are written into the metadata log when the storage is formatted (``--add-scram``), so a node
formatted before this listener existed accepts PLAIN only until its data directory is reset.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .base import SERVICE_TAG, Java, ServiceError, Settings, run_mvn

NAME = "kafka"
VERSION = "4.0.2"
SCALA = "2.13"
SLF4J = "2.0.17"
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

# Fixed development credential of the local SASL listener (documented, not a secret).
DEV_SASL_USERNAME = "logriver"
DEV_SASL_PASSWORD = "logriver-dev-password"
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
SASL_MECHANISMS = ("PLAIN", *SCRAM_MECHANISMS)


def sasl_port(settings: Settings) -> int:
    """The SASL_PLAINTEXT listener's port: ``settings.kafka_sasl_port`` when set, else
    ``LOGRIVER_KAFKA_SASL_PORT``, else the Kafka port + 2."""
    port = getattr(settings, "kafka_sasl_port", None)
    if port is None:
        raw = os.environ.get("LOGRIVER_KAFKA_SASL_PORT")
        try:
            port = int(raw) if raw else settings.kafka_port + 2
        except ValueError:
            raise ServiceError(f"LOGRIVER_KAFKA_SASL_PORT={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise ServiceError(f"kafka_sasl_port={port} is not a valid TCP port")
    return port


def _jaas_plain(username: str, password: str) -> str:
    return (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{username}" password="{password}" user_{username}="{password}";'
    )


def scram_format_args(username: str = DEV_SASL_USERNAME, password: str = DEV_SASL_PASSWORD) -> list[str]:
    """StorageTool arguments that create the SCRAM credentials at format time."""
    args: list[str] = []
    for mech in SCRAM_MECHANISMS:
        args += ["--add-scram", f"{mech}=[name={username},password={password}]"]
    return args


def render_pom(version: str = VERSION) -> str:
    """A pom whose runtime closure is the Kafka broker plus a log backend (reload4j).
    slf4j-api is pinned so the 2.x provider binds (Kafka alone resolves 1.7.x)."""
    deps = [
        ("org.apache.kafka", f"kafka_{SCALA}", version),
        ("org.slf4j", "slf4j-api", SLF4J),
        ("org.slf4j", "slf4j-reload4j", SLF4J),
    ]
    body = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>"
        for g, a, v in deps
    )
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>logriver.local</groupId>
  <artifactId>kafka-dist</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
{body}
  </dependencies>
</project>
"""


def render_server_properties(settings: Settings, data_dir: Path) -> str:
    """server.properties for one combined KRaft node on 127.0.0.1."""
    port, cport = settings.kafka_port, settings.kafka_controller_port
    sport = sasl_port(settings)
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{cport}",
        "listeners": (
            f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport},"
            f"SASL_PLAINTEXT://127.0.0.1:{sport}"
        ),
        "advertised.listeners": (
            f"PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sport}"
        ),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": (
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
        ),
        "sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": _jaas_plain(
            DEV_SASL_USERNAME, DEV_SASL_PASSWORD
        ),
        **{
            f"listener.name.sasl_plaintext.{m.lower()}.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            )
            for m in SCRAM_MECHANISMS
        },
        "log.dirs": str(data_dir),
        "num.partitions": "4",
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # A restarted combined node must wait for its previous registration to expire (the
        # controller keeps it after a clean shutdown): a short session keeps restarts fast.
        "broker.heartbeat.interval.ms": "1000",
        "broker.session.timeout.ms": "3000",
        "message.max.bytes": str(MAX_MESSAGE_BYTES),
        "replica.fetch.max.bytes": str(MAX_MESSAGE_BYTES),
        "socket.request.max.bytes": str(4 * MAX_MESSAGE_BYTES),
        "log.retention.hours": "24",
        "log.segment.bytes": str(256 * 1024 * 1024),
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def render_log4j(log_file: Path) -> str:
    """reload4j config: everything to one size-capped file, nothing on the console."""
    return f"""log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File={log_file}
log4j.appender.file.MaxFileSize=50MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.controller=INFO
log4j.logger.state.change.logger=WARN
"""


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, base64url without padding, never starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class Kafka:
    """Paths, fetching, configuration and the command line of the Kafka node."""

    name = NAME
    version = VERSION
    env_hint = "LOGRIVER_KAFKA_PORT / LOGRIVER_KAFKA_CONTROLLER_PORT / LOGRIVER_KAFKA_SASL_PORT"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dist = settings.dist(f"kafka-{VERSION}")
        self.run_dir = settings.run(NAME)
        self.config = self.run_dir / "server.properties"
        self.log4j = self.run_dir / "log4j.properties"
        self.data = self.run_dir / "data"
        self.logfile = self.run_dir / "logs" / "server.log"
        self.outfile = self.run_dir / "kafka.out"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.settings.kafka_port}"

    @property
    def marker(self) -> str:
        """A string only our Kafka's command line contains."""
        return str(self.config)

    def ports(self) -> dict[str, int]:
        return {
            "Kafka": self.settings.kafka_port,
            "Kafka controller": self.settings.kafka_controller_port,  # type: ignore[dict-item]
            "Kafka SASL": sasl_port(self.settings),
        }

    @property
    def sasl_address(self) -> str:
        return f"127.0.0.1:{sasl_port(self.settings)}"

    def fetched(self) -> bool:
        return (self.dist / ".complete").exists()

    def fetch(self, mvn: str) -> None:
        """Resolve the broker's runtime jars into dist/kafka-<ver>/libs (atomic rename)."""
        tmp = self.dist.with_name(f"{self.dist.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            (tmp / "pom.xml").write_text(render_pom())
            run_mvn(
                mvn,
                [
                    "dependency:copy-dependencies",
                    "-DoutputDirectory=libs",
                    "-DincludeScope=runtime",
                ],
                tmp,
                f"Kafka {VERSION}",
            )
            if not any((tmp / "libs").glob(f"kafka_{SCALA}-{VERSION}.jar")):
                raise ServiceError(f"mvn finished but kafka_{SCALA}-{VERSION}.jar is missing")
            (tmp / ".complete").touch()
            shutil.rmtree(self.dist, ignore_errors=True)
            tmp.rename(self.dist)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def java_args(self, java: Java) -> list[str]:
        heap = self.settings.kafka_heap
        return [
            java.binary,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.log4j}",
            "-cp",
            str(self.dist / "libs" / "*"),
        ]

    def prepare(self, java: Java) -> None:
        """Write the config files and format the storage on first use."""
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        self.config.write_text(render_server_properties(self.settings, self.data))
        self.log4j.write_text(render_log4j(self.logfile))
        if (self.data / "meta.properties").exists():
            return
        id_file = self.run_dir / "cluster.id"
        if not id_file.exists():
            id_file.write_text(new_cluster_id())
        proc = subprocess.run(
            [
                *self.java_args(java),
                "kafka.tools.StorageTool",
                "format",
                "--ignore-formatted",
                "-t",
                id_file.read_text().strip(),
                "-c",
                str(self.config),
                *scram_format_args(),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise ServiceError(f"formatting Kafka storage in {self.data} failed: {last[0]}")

    def start(self, java: Java) -> subprocess.Popen:
        """Launch the node in its own session, logs to files; it outlives this process."""
        with open(self.outfile, "ab") as out:
            return subprocess.Popen(
                [*self.java_args(java), "kafka.Kafka", str(self.config)],
                cwd=self.run_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**_java_env(), SERVICE_TAG: self.marker},
            )

    def probe(self, timeout: float = 5.0) -> str | None:
        """A real metadata round trip; returns a short description when the broker answers."""
        if not _tcp_open(self.settings.kafka_port, min(timeout, 1.0)):
            return None
        # Own thread and event loop: callers may be inside a running loop (async tests, demo).
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, _metadata(self.address, timeout)).result()


def _java_env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "KAFKA_OPTS"):
        env.pop(var, None)
    return env


def _tcp_open(port: int, timeout: float) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


async def _metadata(bootstrap: str, timeout: float) -> str | None:
    from aiokafka import AIOKafkaClient
    from aiokafka.errors import KafkaError

    client = AIOKafkaClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout * 1000),
        client_id="logriver-services",
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        brokers = client.cluster.brokers()
        return f"{len(brokers)} broker(s) up" if brokers else None
    except (TimeoutError, KafkaError, OSError):
        return None
    finally:
        await client.close()
