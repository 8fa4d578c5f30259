"""Docker's own log drivers, end to end: the Go program in tests/dockerdrivers runs Docker's
driver packages fed by dockerd's ``logger.Copier`` (see tests/docker_drivers.py) against one
``logriver collect --no-tail`` with every receiver, and one worker (``logriver run
kubernetes``) indexes into Elasticsearch. Each variant sends 2,000 lines (plain, JSON and
logfmt, a tenth of a percent of them over 16 KiB, a third on stderr), paced at 2,000 lines/s
or in a burst; then, from what is searchable:

- every line once: whole, or (drivers that do not mark Docker's partial lines) as the pieces
  Docker split it into, each once;
- lines over 16 KiB whole where the driver marks partials (fluentd, journald);
- ``container.id`` / ``container.name`` / ``container.image.name`` where the driver sends them;
- ``stream`` (stdout/stderr) where the driver tells it;
- paced variants: ``@timestamp`` within 1 s of the time dockerd's copier read the line (the
  time every driver sends; the Go program records it for every line).

The default run is a subset chosen to cover every driver, transport and format family once
(about 30 s of sending); ``LOGRIVER_DOCKER_DRIVERS=full`` runs the whole matrix (every format
and compression option, both modes for each; a comma-separated list of name prefixes picks
variants, full-matrix ones included). Skips where Go is absent (the build is cached
under ~/.cache/logriver/dockerdrivers). journald needs root and systemd-journald: a private
journal namespace is started (``systemd-journald NAME``), Docker's driver sends to its socket,
and the collector follows it with ``--journald --journald-namespace NAME``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker_drivers as dd
import pytest

from streams.demo.chain import WorkerProcess, remove_run
from streams.ops.config import Settings

# The first build of the Go program (modules from the Go proxy) takes minutes on 2 cores.
pytestmark = pytest.mark.timeout(1800)

# "full": the whole matrix; a comma-separated list of name prefixes: those variants only.
SELECT = os.environ.get("LOGRIVER_DOCKER_DRIVERS", "")
FULL = SELECT == "full"
JOURNALD = "/lib/systemd/systemd-journald"
A = "127.0.0.1"


@dataclass
class Spec:
    """A variant as declared here (ports filled in when the chain is up) and what to expect."""

    name: str
    driver: str
    config: dict[str, str]
    rate: float = 2000.0
    tz: str = ""  # dockerd's time zone (default ZONE, the collector host's)
    full_only: bool = False
    partials: bool = False  # the driver marks Docker's partial lines: long lines must be whole
    container: tuple[str, ...] = ()  # container fields the driver sends
    stream: bool = False  # the driver tells stdout from stderr
    lossy: bool = False  # UDP in a burst: delivery is not promised
    lines: int = 2000
    stderr_every: int = 3  # every n-th line on stderr (0: stdout only)
    env: dict[str, str] = field(default_factory=dict)


ZONE = "America/New_York"
ATTRS = {"labels": "com.example.team", "env": "APP_ENV"}
TAG = "{{.ImageName}}/{{.Name}}/{{.ID}}"  # the tag Docker's syslog docs recommend
HEC_TOKEN = "5f3c1e2a-8b7d-4c6e-9f0a-1b2c3d4e5f60"
HEC_ACK_TOKEN = "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"  # indexer acknowledgement on
SPLUNK = {"splunk-url": "http://@splunk", "splunk-token": HEC_TOKEN}
AWS_KEY, AWS_SECRET = "AKIDLOGRIVERDRIVERS1", "dGVzdC1zZWNyZXQtb2YtbG9ncml2ZXItZHJpdmVycw"
AWSLOGS = {"awslogs-region": "eu-west-1", "awslogs-endpoint": "http://@cloudwatch",
           "awslogs-group": "/docker/logriver", "awslogs-create-group": "true"}
# dockerd's environment for awslogs: the credentials, and no instance metadata lookups
AWS_ENV = {"AWS_ACCESS_KEY_ID": AWS_KEY, "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
SPECS = [
    Spec("journald", "journald", {}, partials=True, container=("id", "name", "image.name"),
         stream=True),
    Spec("syslog-udp-rfc5424", "syslog", {"syslog-address": "udp://@syslog_udp",
                                          "syslog-format": "rfc5424"}, container=("id",)),
    Spec("syslog-tcp-rfc3164-tag", "syslog", {"syslog-address": "tcp://@syslog_tcp",
                                              "syslog-format": "rfc3164", "tag": TAG},
         container=("id", "name", "image.name")),
    Spec("syslog-tcp-unix-burst", "syslog", {"syslog-address": "tcp://@syslog_tcp"}, rate=0,
         container=("id",)),
    Spec("gelf-udp-gzip", "gelf", {"gelf-address": "udp://@gelf_udp",
                                   "gelf-compression-type": "gzip", **ATTRS},
         container=("id", "name", "image.name"), stream=True),
    Spec("gelf-tcp-burst", "gelf", {"gelf-address": "tcp://@gelf_tcp"}, rate=0,
         container=("id", "name", "image.name"), stream=True),
    Spec("fluentd", "fluentd", {"fluentd-address": "@fluentd",
                                "fluentd-sub-second-precision": "true", **ATTRS},
         partials=True, container=("id", "name"), stream=True),
    Spec("fluentd-nonblocking-burst", "fluentd", {"fluentd-address": "@fluentd",
                                                  "mode": "non-blocking",
                                                  "max-buffer-size": "64m"}, rate=0,
         partials=True, container=("id", "name"), stream=True),
    Spec("splunk-inline-gzip", "splunk", {**SPLUNK, "splunk-gzip": "true", **ATTRS},
         container=("id",), stream=True),
    Spec("splunk-json-tag", "splunk", {**SPLUNK, "splunk-format": "json", "tag": TAG},
         container=("id", "name", "image.name"), stream=True),
    Spec("splunk-raw-tag", "splunk", {**SPLUNK, "splunk-format": "raw", "tag": TAG},
         container=("id", "name", "image.name")),
    # the goal's 10,000 events, in a burst, with indexer acknowledgement
    Spec("splunk-ack-burst-10k", "splunk", {**SPLUNK, "splunk-token": HEC_ACK_TOKEN,
                                            "splunk-index-acknowledgment": "true"},
         rate=0, lines=10_000, container=("id",), stream=True),
    # awslogs: the stream is named after the container's full id; lines up to 256 KiB whole
    # (the driver's buffer size), so long lines must arrive whole
    Spec("awslogs", "awslogs", dict(AWSLOGS), env=AWS_ENV, partials=True, container=("id",)),
    Spec("awslogs-burst-10k", "awslogs", dict(AWSLOGS), env=AWS_ENV, rate=0, lines=10_000,
         partials=True, container=("id",)),
    # the full matrix
    Spec("syslog-udp-rfc3164", "syslog", {"syslog-address": "udp://@syslog_udp",
                                          "syslog-format": "rfc3164"}, full_only=True,
         container=("id",)),
    Spec("syslog-udp-unix", "syslog", {"syslog-address": "udp://@syslog_udp"}, full_only=True,
         container=("id",)),
    Spec("syslog-tcp-rfc5424micro-tag", "syslog", {"syslog-address": "tcp://@syslog_tcp",
                                                   "syslog-format": "rfc5424micro", "tag": TAG},
         full_only=True, container=("id", "name", "image.name")),
    # a UDP burst overflows the socket: delivery is not promised, counting every drop is
    Spec("syslog-udp-rfc5424-burst", "syslog", {"syslog-address": "udp://@syslog_udp",
                                                "syslog-format": "rfc5424"}, rate=0, lossy=True),
    Spec("gelf-udp-zlib", "gelf", {"gelf-address": "udp://@gelf_udp",
                                   "gelf-compression-type": "zlib"}, full_only=True,
         container=("id", "name", "image.name"), stream=True),
    Spec("gelf-udp-none", "gelf", {"gelf-address": "udp://@gelf_udp",
                                   "gelf-compression-type": "none"}, full_only=True,
         container=("id", "name", "image.name"), stream=True),
    Spec("gelf-udp-none-burst", "gelf", {"gelf-address": "udp://@gelf_udp",
                                         "gelf-compression-type": "none"}, rate=0,
         full_only=True, lossy=True),
    Spec("gelf-tcp", "gelf", {"gelf-address": "tcp://@gelf_tcp", **ATTRS}, full_only=True,
         container=("id", "name", "image.name"), stream=True),
    # stdout only: fluent-logger-golang 1.9 (Docker 28.5) reads acks without holding its
    # connection lock, so the copier's stdout and stderr goroutines take each other's acks;
    # the driver then closes, resends and loops (and can panic in fwd.Reader). Nothing a
    # receiver can answer fixes that; a container writing both streams hits it with any server.
    Spec("fluentd-request-ack", "fluentd", {"fluentd-address": "@fluentd",
                                            "fluentd-request-ack": "true"}, full_only=True,
         partials=True, container=("id", "name"), stderr_every=0),
    # Docker sets ForceStopAsyncSend with fluentd-async: what is still queued when the
    # container stops is discarded ("Discarding queued events..."), paced or not: no promise.
    Spec("fluentd-async", "fluentd", {"fluentd-address": "@fluentd", "fluentd-async": "true"},
         full_only=True, lossy=True),
    Spec("fluentd-async-burst", "fluentd", {"fluentd-address": "@fluentd",
                                            "fluentd-async": "true"}, rate=0, full_only=True,
         lossy=True),
    Spec("splunk-raw-gzip9", "splunk", {**SPLUNK, "splunk-format": "raw", "splunk-gzip": "true",
                                        "splunk-gzip-level": "9"}, full_only=True),
    Spec("splunk-inline-nonblocking-burst", "splunk", {**SPLUNK, "mode": "non-blocking"},
         rate=0, full_only=True, container=("id",), stream=True),
    Spec("awslogs-stream-nonblocking-burst", "awslogs",
         {**AWSLOGS, "awslogs-stream": "shop-cart", "mode": "non-blocking"}, env=AWS_ENV,
         rate=0, full_only=True, partials=True),
    Spec("awslogs-emf-flush1", "awslogs", {**AWSLOGS, "awslogs-format": "json/emf",
                                          "awslogs-force-flush-interval-seconds": "1"},
         env=AWS_ENV, full_only=True, partials=True, container=("id",)),
    Spec("journald-burst", "journald", {"tag": TAG}, rate=0, full_only=True, partials=True,
         container=("id", "name", "image.name"), stream=True),
]
ACTIVE = [s for s in SPECS if FULL or (
    any(s.name.startswith(p) for p in SELECT.split(",")) if SELECT else not s.full_only)]


def _udp(s: Spec) -> bool:
    return any(v.startswith("udp://") for v in s.config.values())


# What the receivers cannot do with what a driver sends. Strict: a check that starts passing
# fails until its entry is removed; not strict only where the outcome depends on timing.
GELF_JOIN = ("GELF has no partial marker: a message of exactly 16 KiB is joined with the next "
             "ones of the same millisecond (README), which at 2,000 lines/s can be the next line")
KNOWN: dict[tuple[str, str], tuple[str, bool]] = {
    (s.name, "delivered"): (GELF_JOIN, False) for s in SPECS if s.driver == "gelf"}


def _params(check: str, applies, names: list[str] | None = None) -> list[Any]:
    out = []
    for name in names if names is not None else [s.name for s in ACTIVE if applies(s)]:
        known = KNOWN.get((name, check))
        marks = [pytest.mark.xfail(strict=known[1], reason=known[0])] if known else []
        out.append(pytest.param(name, id=name, marks=marks))
    return out


def _free(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((A, 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"collector exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex((A, port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {port}")


class Journal:
    """A private journal namespace (``systemd-journald NAME``): its socket takes Docker's
    journald driver, ``journalctl --namespace NAME`` reads it back. Root only. A namespace's
    journald exits when idle for 30 s; a stream connection held open keeps it up."""

    def __init__(self) -> None:
        self.name = f"lrtest{uuid.uuid4().hex[:8]}"
        self.socket = f"/run/systemd/journal.{self.name}/socket"
        self.proc: subprocess.Popen | None = None
        self._keepalive: socket.socket | None = None

    @staticmethod
    def why_not() -> str | None:
        if os.geteuid() != 0:
            return "journald: needs root to run a journal namespace"
        if not Path(JOURNALD).exists() or shutil.which("journalctl") is None:
            return "journald: systemd-journald / journalctl not installed"
        return None

    def start(self) -> None:
        self.proc = subprocess.Popen([JOURNALD, self.name], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        stdout = f"/run/systemd/journal.{self.name}/stdout"
        while not (Path(self.socket).exists() and Path(stdout).exists()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("systemd-journald did not open its sockets")
            time.sleep(0.1)
        self._keepalive = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._keepalive.connect(stdout)  # identifier, unit, priority, 4 flags
        self._keepalive.sendall(b"logriver-test\n\n6\n0\n0\n0\n0\n")

    def stop(self) -> None:
        if self._keepalive is not None:
            self._keepalive.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        shutil.rmtree(f"/run/systemd/journal.{self.name}", ignore_errors=True)
        for d in Path("/var/log/journal").glob(f"*.{self.name}"):
            shutil.rmtree(d, ignore_errors=True)
        for d in Path("/run/log/journal").glob(f"*.{self.name}"):
            shutil.rmtree(d, ignore_errors=True)


@dataclass
class Outcome:
    variant: dd.Variant
    spec: Spec
    result: dict[str, Any]
    report: dd.Report


def _errors(port: int) -> dict[tuple[str, str], float]:
    """The collector's ``logriver_errors_total`` by (stage, reason)."""
    from urllib.request import urlopen

    from prometheus_client.parser import text_string_to_metric_families

    with urlopen(f"http://{A}:{port}/metrics", timeout=30) as r:
        text = r.read().decode()
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "logriver_errors_total":
                key = (sample.labels["stage"], sample.labels["reason"])
                out[key] = out.get(key, 0.0) + sample.value
    return out


async def _settle(settings: Settings, want: int, timeout: float = 300.0) -> int:
    """Wait until at least ``want`` events are searchable and the count holds still."""
    from streams.demo.chain import count_events

    deadline = time.monotonic() + timeout
    last, still = -1, 0
    while time.monotonic() < deadline:
        n = await count_events(settings)
        still = still + 1 if n == last else 0
        if n >= want and still >= 2:
            return n
        last = n
        await asyncio.sleep(2.0)
    return last


@pytest.fixture(scope="module")
def harness() -> Path:
    try:
        return dd.build()
    except dd.GoMissing as exc:
        pytest.skip(f"Docker driver tests skipped: {exc}")


@pytest.fixture(scope="module")
def outcomes(services, harness, tmp_path_factory) -> dict[str, Outcome]:
    tmp = tmp_path_factory.mktemp("drivers")
    run = uuid.uuid4().hex[:10]
    settings = Settings(kafka_bootstrap=services["kafka"].address,
                        es_url=services["elasticsearch"].address,
                        topic_prefix=f"t{run}.", index_prefix=f"lrtest-{run}",
                        state_dir=tmp / "state")
    ports = {"syslog_udp": _free(socket.SOCK_DGRAM), "syslog_tcp": _free(),
             "gelf_udp": _free(socket.SOCK_DGRAM), "gelf_tcp": _free(), "fluentd": _free(),
             "splunk": _free(), "cloudwatch": _free(), "metrics": _free()}
    aws = tmp / "aws-credentials"
    aws.write_text(f"[docker]\naws_access_key_id = {AWS_KEY}\naws_secret_access_key = {AWS_SECRET}\n")
    tokens = tmp / "hec-tokens"
    tokens.write_text(f"{HEC_TOKEN}\n{HEC_ACK_TOKEN} ack\n")
    specs = list(ACTIVE)
    journal = None
    if Journal.why_not() is None and any(s.driver == "journald" for s in specs):
        journal = Journal()
        journal.start()
    else:
        specs = [s for s in specs if s.driver != "journald"]
    cmd = [sys.executable, "-m", "streams", "collect", "--no-tail", "--root", str(tmp),
           "--checkpoint-dir", str(tmp / "cp"), "--kafka", settings.kafka_bootstrap,
           "--topic-prefix", settings.topic_prefix, "--metrics-port", str(ports["metrics"]),
           "--syslog-udp", str(ports["syslog_udp"]), "--syslog-tcp", str(ports["syslog_tcp"]),
           "--gelf-udp", str(ports["gelf_udp"]), "--gelf-tcp", str(ports["gelf_tcp"]),
           "--fluentd", str(ports["fluentd"]), "--splunk-hec", str(ports["splunk"]),
           "--splunk-hec-tokens-file", str(tokens), "--docker-tag", TAG, "--docker-tag", "{{.ID}}",
           "--cloudwatch", str(ports["cloudwatch"]), "--cloudwatch-credentials-file", str(aws)]
    if journal is not None:
        cmd += ["--journald", "--journald-namespace", journal.name]
    # dockerd and the collector share the host's time zone, not UTC: RFC 3164 and Docker's
    # unix syslog format write local time without a zone, read back in the collector's zone
    collector = subprocess.Popen(cmd, env={**os.environ, "TZ": ZONE}, stdout=subprocess.DEVNULL,
                                 stderr=open(tmp / "collector.log", "wb"))  # noqa: SIM115
    worker = WorkerProcess("kubernetes", settings, log_path=tmp / "worker.log").start()
    try:
        _wait_port(ports["fluentd"], collector)
        _wait_port(ports["splunk"], collector)
        _wait_port(ports["cloudwatch"], collector)
        addr = {k: f"{A}:{v}" for k, v in ports.items()}
        variants = []
        for s in specs:
            config = {k: re.sub(r"@(\w+)", lambda m: addr[m.group(1)], x)
                      for k, x in s.config.items()}
            v = dd.Variant(s.name, s.driver, config,
                           lines=s.lines, rate=s.rate, tz=s.tz or ZONE,
                           env=dict(s.env),
                           stderr_every=s.stderr_every)
            if s.driver == "journald":
                v.journal_socket = journal.socket
            variants.append(v)
        with dd.Harness(harness, tmp / "harness") as h:
            for v in variants:
                h.run(v)
            want = sum(len(h.sent[s.name]) for s in specs if not s.lossy)
            asyncio.run(_settle(settings, want))
            errors = _errors(ports["metrics"])
            print(f"collector errors: {errors}")
        index = f"{settings.index_prefix}-events-kubernetes*"
        out = {}
        for s, v in zip(specs, variants, strict=True):
            docs = asyncio.run(dd.fetch(settings.es_url, index, v.marker))
            rep = dd.analyse(v, h.sent[v.name], docs)
            print(f"{s.name}: {h.results[v.name]} {rep.summary()}")
            out[s.name] = Outcome(v, s, h.results[v.name], rep)
        out["_errors"] = errors  # type: ignore[assignment]
        yield out
    finally:
        collector.terminate()
        try:
            collector.wait(60)
        except subprocess.TimeoutExpired:
            collector.kill()
        worker.stop()
        if journal is not None:
            journal.stop()
        for problem in asyncio.run(remove_run(settings)):
            print(f"teardown: {problem}")


def _outcome(outcomes: dict[str, Outcome], name: str) -> Outcome:
    if name not in outcomes:
        pytest.skip(Journal.why_not() or f"{name} did not run")
    return outcomes[name]


@pytest.mark.parametrize("name", _params("delivered", lambda s: not s.lossy))
def test_every_line_searchable_once(outcomes, name):
    o = _outcome(outcomes, name)
    rep = o.report
    assert not o.result.get("error"), o.result
    assert o.result["log_errors"] == 0, o.result
    assert rep.sent == o.variant.lines
    assert (rep.missing[:10], rep.merged[:10], rep.duplicated[:10], rep.garbled[:5]) == (
        [], [], [], [])
    assert rep.once == rep.sent


@pytest.mark.parametrize("name", _params("long", lambda s: s.partials))
def test_long_lines_arrive_whole(outcomes, name):
    rep = _outcome(outcomes, name).report
    assert rep.long_lines > 0
    assert rep.long_whole == rep.long_lines, rep.summary()


@pytest.mark.parametrize("name", _params("container", lambda s: bool(s.container)))
def test_container_fields(outcomes, name):
    o = _outcome(outcomes, name)
    c = o.variant.container
    expected = {"id": {c.id, c.id[:12]}, "name": {c.name.lstrip("/")}, "image.name": {c.image}}
    for path in o.spec.container:
        seen = o.report.container.get(path, set())
        assert seen and seen <= expected[path], (path, seen)


@pytest.mark.parametrize("name", _params("stream", lambda s: s.stream))
def test_stdout_and_stderr_kept(outcomes, name):
    rep = _outcome(outcomes, name).report
    assert rep.streams_known == rep.once > 0
    assert rep.streams_right == rep.streams_known


@pytest.mark.parametrize("name", _params("time", lambda s: s.rate > 0))
def test_event_time_is_the_time_docker_read_the_line(outcomes, name):
    rep = _outcome(outcomes, name).report
    assert rep.once > 0
    assert rep.max_skew_s < 1.0, rep.summary()


UDP_LOSSY = sorted({s.driver for s in ACTIVE if s.lossy and _udp(s)})


@pytest.mark.parametrize("driver", _params("drops", None, UDP_LOSSY))
def test_udp_losses_are_counted(outcomes, driver):
    """What UDP lost is in /metrics: every line missing from a UDP variant of this receiver
    (a datagram, or a chunk of one, dropped; not a line joined into another) is matched by a
    counted error."""
    missing = sum(len(o.report.missing) for name, o in outcomes.items()
                  if name != "_errors" and o.spec.driver == driver and _udp(o.spec))
    counted = sum(n for (stage, _), n in outcomes["_errors"].items()
                  if stage == f"receive_{driver}")
    assert missing <= counted, (missing, counted)
