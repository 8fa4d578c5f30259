"""The service manager's pure parts: settings, rendered configs, ports, pid ownership, process
stopping, tool detection and its error messages. No Kafka or Elasticsearch is started here."""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import stat
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
import yaml

from streams import services
from streams.cli import CliError
from streams.cli import services as cli
from streams.services import base, manager
from streams.services.base import ServiceError, Settings
from streams.services.elasticsearch import Elasticsearch, extract, render_jvm_options, render_yml
from streams.services.kafka import (
    MAX_MESSAGE_BYTES,
    Kafka,
    new_cluster_id,
    render_log4j,
    render_pom,
    render_server_properties,
)

ENV_VARS = (
    "LOGRIVER_HOME",
    "LOGRIVER_KAFKA_PORT",
    "LOGRIVER_KAFKA_CONTROLLER_PORT",
    "LOGRIVER_ES_PORT",
    "LOGRIVER_ES_TRANSPORT_PORT",
    "LOGRIVER_KAFKA_HEAP",
    "LOGRIVER_ES_HEAP",
    "LOGRIVER_ES_USER",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")


# ---------------------------------------------------------------- settings


def test_settings_defaults_and_derived_ports(tmp_path: Path) -> None:
    s = Settings(home=tmp_path)
    assert (s.kafka_port, s.kafka_controller_port, s.es_port, s.es_transport_port) == (
        9092,
        9093,
        9200,
        9300,
    )
    assert (s.kafka_heap, s.es_heap) == ("512m", "512m")
    assert s.dist("kafka-4.0.2") == tmp_path / "dist" / "kafka-4.0.2"
    assert s.run("kafka") == tmp_path / "run" / "kafka"


def test_settings_env_and_kwargs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOGRIVER_KAFKA_PORT", "19092")
    monkeypatch.setenv("LOGRIVER_ES_PORT", "19200")
    monkeypatch.setenv("LOGRIVER_KAFKA_HEAP", "256m")
    monkeypatch.setenv("LOGRIVER_ES_HEAP", "1g")
    s = Settings(home=tmp_path)
    assert (s.kafka_port, s.kafka_controller_port) == (19092, 19093)
    assert (s.es_port, s.es_transport_port) == (19200, 19300)
    assert (s.kafka_heap, s.es_heap) == ("256m", "1g")
    assert Settings(home=tmp_path, kafka_port=29092).kafka_port == 29092


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("LOGRIVER_KAFKA_PORT", "abc", "not a port number"),
        ("LOGRIVER_ES_PORT", "70000", "not a valid TCP port"),
        ("LOGRIVER_ES_HEAP", "lots", "use a JVM size"),
        ("LOGRIVER_KAFKA_HEAP", "512", "use a JVM size"),
    ],
)
def test_settings_reject_bad_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: str, value: str, message: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ServiceError, match=message):
        Settings(home=tmp_path)


def test_default_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert base.default_home() == Path("/var/cache/logriver")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert base.default_home() == Path.home() / ".cache" / "logriver"
    monkeypatch.setenv("LOGRIVER_HOME", str(tmp_path))
    assert base.default_home() == tmp_path


# ---------------------------------------------------------------- rendered configuration


def test_kafka_pom_pins_a_log_backend() -> None:
    root = ET.fromstring(render_pom())
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    assert root.findtext("m:packaging", namespaces=ns) == "pom"
    deps = {
        d.findtext("m:artifactId", namespaces=ns): d.findtext("m:version", namespaces=ns)
        for d in root.iterfind("m:dependencies/m:dependency", ns)
    }
    assert deps == {"kafka_2.13": "4.0.2", "slf4j-api": "2.0.17", "slf4j-reload4j": "2.0.17"}


def test_kafka_server_properties(tmp_path: Path) -> None:
    s = Settings(home=tmp_path, kafka_port=19092)
    props = properties(render_server_properties(s, tmp_path / "data"))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == (
        "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093,SASL_PLAINTEXT://127.0.0.1:19094"
    )
    assert props["advertised.listeners"] == (
        "PLAINTEXT://127.0.0.1:19092,SASL_PLAINTEXT://127.0.0.1:19094"
    )
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(tmp_path / "data")
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
    ):
        assert props[key] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["num.partitions"] == "4"
    assert props["auto.create.topics.enable"] == "true"
    assert int(props["message.max.bytes"]) == MAX_MESSAGE_BYTES
    assert int(props["replica.fetch.max.bytes"]) >= MAX_MESSAGE_BYTES
    assert int(props["broker.session.timeout.ms"]) > int(props["broker.heartbeat.interval.ms"])


def test_kafka_sasl_listener(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from streams.services import kafka as kafka_service

    s = Settings(home=tmp_path, kafka_port=19092)
    props = properties(render_server_properties(s, tmp_path / "data"))
    assert "SASL_PLAINTEXT:SASL_PLAINTEXT" in props["listener.security.protocol.map"]
    assert props["sasl.enabled.mechanisms"] == "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    jaas = props["listener.name.sasl_plaintext.plain.sasl.jaas.config"]
    assert f'user_{kafka_service.DEV_SASL_USERNAME}="{kafka_service.DEV_SASL_PASSWORD}"' in jaas
    assert "ScramLoginModule" in props["listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config"]
    assert Kafka(s).ports()["Kafka SASL"] == 19094
    args = kafka_service.scram_format_args()
    assert args[0] == "--add-scram" and args[1].startswith("SCRAM-SHA-256=[name=logriver,")
    monkeypatch.setenv("LOGRIVER_KAFKA_SASL_PORT", "29999")
    assert Kafka(s).sasl_address == "127.0.0.1:29999"
    monkeypatch.setenv("LOGRIVER_KAFKA_SASL_PORT", "x")
    with pytest.raises(ServiceError):
        kafka_service.sasl_port(s)


def test_kafka_log4j_writes_one_file_not_the_console(tmp_path: Path) -> None:
    text = render_log4j(tmp_path / "server.log")
    props = properties(text)
    assert props["log4j.rootLogger"] == "INFO, file"
    assert props["log4j.appender.file.File"] == str(tmp_path / "server.log")
    assert "ConsoleAppender" not in text


def test_kafka_cluster_id_is_a_base64url_uuid() -> None:
    for _ in range(200):
        cid = new_cluster_id()
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_kafka_command_line(tmp_path: Path) -> None:
    kafka = Kafka(Settings(home=tmp_path, kafka_heap="300m"))
    java = base.Java(binary="/usr/bin/java", home="/usr/lib/jvm/x", major=17)
    args = kafka.java_args(java)
    assert args[:3] == ["/usr/bin/java", "-Xms300m", "-Xmx300m"]
    assert f"-Dlog4j.configuration=file:{kafka.log4j}" in args
    assert args[-1] == str(kafka.dist / "libs" / "*")
    assert kafka.marker == str(kafka.config)


def test_elasticsearch_yml(tmp_path: Path) -> None:
    s = Settings(home=tmp_path, es_port=19200)
    conf = yaml.safe_load(render_yml(s, tmp_path / "data", tmp_path / "logs"))
    assert conf["http.port"] == 19200 and conf["transport.port"] == 19300
    assert conf["network.host"] == "127.0.0.1"
    assert conf["discovery.type"] == "single-node"
    assert conf["xpack.security.enabled"] is False
    assert conf["xpack.ml.enabled"] is False
    assert conf["action.destructive_requires_name"] is False
    assert conf["path.data"] == str(tmp_path / "data")
    assert conf["path.logs"] == str(tmp_path / "logs")


def test_elasticsearch_jvm_options_keep_logs_bounded(tmp_path: Path) -> None:
    template = (
        "-XX:+UseG1GC\n-XX:ErrorFile=hs_err_pid%p.log\n"
        "-Xlog:gc*,gc+age=trace,safepoint:file=gc.log:utctime,level,pid,tags:filecount=32,filesize=64m\n"
    )
    out = render_jvm_options(template, tmp_path).splitlines()
    assert out[0] == "-XX:+UseG1GC"
    assert out[1] == f"-XX:ErrorFile={tmp_path}/hs_err_pid%p.log"
    assert out[2].startswith(f"-Xlog:gc*:file={tmp_path}/gc.log") and "filecount=2" in out[2]
    assert out[3] == f"-XX:HeapDumpPath={tmp_path}"


def test_extract_keeps_the_executable_bit(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, mode in (("es/bin/elasticsearch", 0o755), ("es/config/x.yml", 0o644)):
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | mode) << 16
            zf.writestr(info, "x")
    extract(archive, tmp_path / "out")
    assert os.access(tmp_path / "out/es/bin/elasticsearch", os.X_OK)
    assert not os.access(tmp_path / "out/es/config/x.yml", os.X_OK)


# ---------------------------------------------------------------- ports


def test_port_in_use_and_owner() -> None:
    port = free_port()
    assert not base.port_in_use(port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert base.port_in_use(port)
        assert base.port_owner(port).startswith(f"pid {os.getpid()} ")
        with pytest.raises(ServiceError) as err:
            base.check_ports_free("kafka", {"Kafka": port}, "LOGRIVER_KAFKA_PORT")
    msg = str(err.value)
    assert f"127.0.0.1:{port} is already in use by pid {os.getpid()}" in msg
    assert "LOGRIVER_KAFKA_PORT" in msg and "\n" not in msg
    assert not base.port_in_use(port)


# ---------------------------------------------------------------- processes


def test_owns_checks_command_line_environment_and_liveness(tmp_path: Path) -> None:
    marker = str(tmp_path / "server.properties")
    # argv[0] "java" (the cmdline rule is for java only); an editor on the file must not match
    by_argv = subprocess.Popen(["java", "-c", "sleep 30; true", marker], executable="/bin/sh")
    editor = subprocess.Popen(["sh", "-c", "sleep 30; true", marker])
    by_env = subprocess.Popen(["sleep", "30"], env={**os.environ, base.SERVICE_TAG: marker})
    other = subprocess.Popen(["sleep", "30"])
    # Popen returns after fork, possibly before exec: until then /proc shows the parent's
    # command line and environment. Wait until every child runs its own program.
    deadline = time.monotonic() + 10
    for proc in (by_argv, editor, by_env, other):
        while base.cmdline(proc.pid).split(" ", 1)[0] not in ("java", "sh", "sleep"):
            assert time.monotonic() < deadline, f"{proc.args} never started"
            time.sleep(0.01)
    try:
        assert base.owns(by_argv.pid, marker)
        assert base.owns(by_env.pid, marker)
        assert not base.owns(other.pid, marker)
        assert not base.owns(editor.pid, marker)
        assert not base.owns(by_argv.pid, marker + "x")
        assert not base.owns(None, marker)
        assert sorted(base.pids_with_marker(marker)) == sorted([by_argv.pid, by_env.pid])
    finally:
        for proc in (by_argv, by_env, other, editor):
            proc.kill()
    time.sleep(0.1)  # now zombies until reaped: must count as gone
    assert not base.owns(by_argv.pid, marker)
    assert not base.is_alive(by_env.pid)


def test_terminate_stops_a_process_group() -> None:
    proc = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30"], start_new_session=True)
    time.sleep(0.2)
    assert len(base.group_members(proc.pid)) == 3  # sh and two sleeps
    assert base.terminate([proc.pid], proc.pid, timeout=5) == []
    assert base.group_members(proc.pid) == []


def test_terminate_kills_what_ignores_sigterm() -> None:
    proc = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"], start_new_session=True
    )
    time.sleep(0.2)
    t0 = time.monotonic()
    killed = base.terminate([proc.pid], proc.pid, timeout=0.5)
    assert proc.pid in killed
    assert time.monotonic() - t0 < 5
    assert not base.is_alive(proc.pid)


def test_state_file_round_trip(tmp_path: Path) -> None:
    assert base.read_state(tmp_path) is None
    base.write_state(tmp_path, {"pid": 1, "address": "a"})
    assert base.read_state(tmp_path) == {"pid": 1, "address": "a"}
    base.state_file(tmp_path).write_text("{broken")
    assert base.read_state(tmp_path) is None
    base.remove_state(tmp_path)
    base.remove_state(tmp_path)
    assert not base.state_file(tmp_path).exists()


def test_tail_after_offset_and_after_truncation(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"old {i}\n" for i in range(50)))
    mark = base.file_size(log)
    assert base.tail(log, 20, start=mark) == []
    with open(log, "a") as fh:
        fh.write("new 1\n" + "y" * 1000 + "\n")
    lines = base.tail(log, 20, start=mark)
    assert lines[0] == "new 1" and lines[1].endswith(" ...") and len(lines[1]) < 500
    log.write_text("rotated\n")
    assert base.tail(log, 20, start=mark) == ["rotated"]
    assert base.tail(tmp_path / "missing.log") == []


# ---------------------------------------------------------------- tools and their errors


def test_java_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServiceError, match=r"^java not found .*install a JDK 17\+"):
        base.find_java()


def test_java_too_old(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script(tmp_path / "java", "echo '    java.specification.version = 11' >&2\n")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServiceError, match=r"is Java 11; .* need Java 17\+"):
        base.find_java()


def test_java_found() -> None:
    java = base.find_java()
    assert java.major >= 17 and Path(java.home, "bin", "java").exists()


def test_mvn_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServiceError, match=r"^mvn not found on PATH: install Maven"):
        base.find_mvn()


def test_mvn_failure_is_quoted(tmp_path: Path) -> None:
    mvn = script(
        tmp_path / "mvn",
        "echo '[ERROR] Failed to execute goal ... Could not resolve artifact x'; exit 1\n",
    )
    with pytest.raises(ServiceError) as err:
        base.run_mvn(str(mvn), ["dependency:copy"], tmp_path, "Kafka 4.0.2")
    msg = str(err.value)
    assert msg.startswith("downloading Kafka 4.0.2 with mvn failed (exit 1): [ERROR] Failed")
    assert "Maven Central" in msg and "\n" not in msg


def test_up_without_mvn_starts_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    java = base.find_java()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "java").symlink_to(java.binary)
    monkeypatch.setenv("PATH", str(bindir))
    # The ports derived from the Kafka and Elasticsearch ports (+1, +2, +100) may be some
    # client's ephemeral port on a busy machine: pin every port to a free one.
    for name in ("LOGRIVER_KAFKA_CONTROLLER_PORT", "LOGRIVER_KAFKA_SASL_PORT",
                 "LOGRIVER_ES_TRANSPORT_PORT"):
        monkeypatch.setenv(name, str(free_port()))
    home = tmp_path / "home"
    with pytest.raises(ServiceError, match="mvn not found"):
        services.up(
            home=home,
            kafka_port=free_port(),
            es_port=free_port(),
            progress=lambda _msg: None,
        )
    assert not list(home.glob("run/*/service.json"))


def test_up_rejects_unknown_service_and_busy_port(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="unknown service 'zookeeper'"):
        services.up(["zookeeper"], home=tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ServiceError, match=f"cannot start kafka: Kafka port 127.0.0.1:{port}"):
            services.up(["kafka"], home=tmp_path, kafka_port=port, progress=lambda _m: None)


# ---------------------------------------------------------------- status / down / helpers


def test_status_and_helpers_when_stopped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOGRIVER_ES_PORT", "19200")
    result = services.status(tmp_path)
    assert list(result) == ["kafka", "elasticsearch"]
    assert not result["kafka"].running and result["kafka"].pid is None
    assert result["kafka"].address == "127.0.0.1:9092"
    assert result["elasticsearch"].address == "http://127.0.0.1:19200"
    assert result["kafka"].detail == "stopped"
    assert services.kafka_bootstrap(tmp_path) == "127.0.0.1:9092"
    assert services.elasticsearch_url(tmp_path) == "http://127.0.0.1:19200"


def test_stale_pid_file_is_reported_then_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    run = Settings(home=tmp_path).run("kafka")
    run.mkdir(parents=True)
    base.write_state(run, {"pid": dead.pid, "pgid": dead.pid, "address": "127.0.0.1:1"})
    assert services.status(tmp_path)["kafka"].detail == "stale pid file (process gone)"
    services.down(tmp_path, progress=lambda _m: None)
    assert base.read_state(run) is None


def test_status_and_down_of_a_recorded_process(tmp_path: Path) -> None:
    """A process recorded as ours is reported running with its recorded address, its address
    is what the helpers return, and down stops its whole group and removes the pid file."""
    kafka = Kafka(Settings(home=tmp_path))
    kafka.run_dir.mkdir(parents=True)
    proc = subprocess.Popen(
        ["sh", "-c", "sleep 30 & sleep 30"],
        start_new_session=True,
        env={**os.environ, base.SERVICE_TAG: kafka.marker},
    )
    base.write_state(
        kafka.run_dir,
        {"pid": proc.pid, "pgid": proc.pid, "address": "127.0.0.1:19092", "version": "4.0.2"},
    )
    st = services.status(tmp_path, probe=False)["kafka"]
    assert (st.running, st.pid, st.address, st.detail) == (
        True,
        proc.pid,
        "127.0.0.1:19092",
        "running",
    )
    assert services.kafka_bootstrap(tmp_path) == "127.0.0.1:19092"
    messages: list[str] = []
    services.down(tmp_path, timeout=5, progress=messages.append)
    assert proc.wait(timeout=5) is not None
    assert base.group_members(proc.pid) == []
    assert base.read_state(kafka.run_dir) is None
    assert any(m.startswith("stopping kafka") for m in messages)


def test_elasticsearch_run_dir_must_be_reachable(tmp_path: Path) -> None:
    from streams.services import elasticsearch

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    locked.chmod(0o700)
    with pytest.raises(
        ServiceError, match=r"is not reachable by the Elasticsearch user \(mode 0o700\): move it"
    ):
        elasticsearch._reach(locked / "home" / "run" / "elasticsearch", "move it")


# ---------------------------------------------------------------- CLI


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="logriver")
    cli.register(root.add_subparsers(dest="command"))
    return root


def test_cli_parses_subcommands() -> None:
    args = parser().parse_args(["services", "up", "--only", "kafka"])
    assert args.only == "kafka" and args.func is cli._up and args.timeout == 180.0
    assert parser().parse_args(["services", "status"]).func is cli._status
    assert parser().parse_args(["services", "down", "--timeout", "5"]).timeout == 5.0
    with pytest.raises(SystemExit):
        parser().parse_args(["services", "up", "--only", "redis"])


def test_cli_turns_service_errors_into_cli_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise ServiceError("java not found")

    monkeypatch.setattr(manager, "up", boom)
    with pytest.raises(CliError, match="java not found"):
        cli._up(parser().parse_args(["services", "up"]))


def test_cli_status_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli._status(parser().parse_args(["services", "--home", str(tmp_path), "status"])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["SERVICE", "STATE", "PID", "ADDRESS", "VERSION", "DETAIL", "LOG"]
    assert lines[1].split()[:4] == ["kafka", "stopped", "-", "127.0.0.1:9092"]
    args = parser().parse_args(["services", "--home", str(tmp_path), "status", "--json"])
    cli._status(args)
    data = json.loads(capsys.readouterr().out)
    assert data["elasticsearch"]["address"] == "http://127.0.0.1:9200"
    assert data["elasticsearch"]["running"] is False


def test_module_docstring_documents_every_env_var() -> None:
    for var in ENV_VARS:
        assert var in (services.__doc__ or "")
    assert sys.modules["streams.services"].ServiceStatus is base.ServiceStatus
    assert Elasticsearch.env_hint and Kafka.env_hint


def test_clients_follow_the_ports_the_services_were_given(monkeypatch):
    """LOGRIVER_KAFKA_PORT / LOGRIVER_ES_PORT move `logriver services up`; with no explicit
    LOGRIVER_KAFKA / LOGRIVER_ES_URL, every client (worker, collector, search) follows them."""
    from streams.ops.config import Settings

    for name in ("LOGRIVER_KAFKA", "LOGRIVER_ES_URL", "LOGRIVER_KAFKA_PORT", "LOGRIVER_ES_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert (Settings().kafka_bootstrap, Settings().es_url) == ("127.0.0.1:9092", "http://127.0.0.1:9200")
    monkeypatch.setenv("LOGRIVER_KAFKA_PORT", "19092")
    monkeypatch.setenv("LOGRIVER_ES_PORT", "19200")
    assert (Settings().kafka_bootstrap, Settings().es_url) == ("127.0.0.1:19092", "http://127.0.0.1:19200")
    monkeypatch.setenv("LOGRIVER_KAFKA", "kafka-0:9092")
    monkeypatch.setenv("LOGRIVER_ES_URL", "https://es:9200")
    assert (Settings().kafka_bootstrap, Settings().es_url) == ("kafka-0:9092", "https://es:9200")
