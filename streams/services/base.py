"""Shared pieces of the service manager: settings, errors, status, processes, ports, tools."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Progress = Callable[[str], None]

MIN_JAVA = 17
SERVICES = ("kafka", "elasticsearch")
SERVICE_TAG = "LOGRIVER_SERVICE"  # env var set on every process we launch (see ``owns``)
_SIZE_RE = re.compile(r"^[1-9][0-9]*[mMgG]$")


class ServiceError(Exception):
    """A local service could not be fetched, started, checked or stopped (one-line reason)."""


@dataclass
class ServiceStatus:
    """What ``status``/``up`` report about one service."""

    name: str
    running: bool
    pid: int | None
    address: str
    version: str
    home: str
    logfile: str
    detail: str = ""


def stderr_progress(message: str) -> None:
    """Default progress sink: one line on stderr."""
    print(f"logriver services: {message}", file=sys.stderr, flush=True)


def default_home() -> Path:
    """``$LOGRIVER_HOME``, else /var/cache/logriver as root (reachable by the ES user), else
    ~/.cache/logriver."""
    env = os.environ.get("LOGRIVER_HOME")
    if env:
        return Path(env).expanduser().absolute()
    if os.geteuid() == 0:
        return Path("/var/cache/logriver")
    return Path.home() / ".cache" / "logriver"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ServiceError(f"{name}={raw!r} is not a port number") from None


@dataclass
class Settings:
    """Where things live, which ports and heaps to use. Keyword args win over env vars."""

    home: Path = field(default_factory=default_home)
    kafka_port: int = field(default_factory=lambda: _env_int("LOGRIVER_KAFKA_PORT", 9092))
    kafka_controller_port: int | None = None
    es_port: int = field(default_factory=lambda: _env_int("LOGRIVER_ES_PORT", 9200))
    es_transport_port: int | None = None
    kafka_heap: str = field(default_factory=lambda: os.environ.get("LOGRIVER_KAFKA_HEAP") or "512m")
    es_heap: str = field(default_factory=lambda: os.environ.get("LOGRIVER_ES_HEAP") or "512m")
    es_user: str = field(default_factory=lambda: os.environ.get("LOGRIVER_ES_USER") or "logriver")

    def __post_init__(self) -> None:
        self.home = Path(self.home).expanduser().absolute()
        if self.kafka_controller_port is None:
            self.kafka_controller_port = _env_int(
                "LOGRIVER_KAFKA_CONTROLLER_PORT", self.kafka_port + 1
            )
        if self.es_transport_port is None:
            self.es_transport_port = _env_int("LOGRIVER_ES_TRANSPORT_PORT", self.es_port + 100)
        for name in ("kafka_port", "kafka_controller_port", "es_port", "es_transport_port"):
            port = getattr(self, name)
            if not 1 <= port <= 65535:
                raise ServiceError(f"{name}={port} is not a valid TCP port")
        for name in ("kafka_heap", "es_heap"):
            if not _SIZE_RE.match(getattr(self, name)):
                raise ServiceError(
                    f"{name}={getattr(self, name)!r}: use a JVM size such as 512m or 1g"
                )

    def dist(self, name: str) -> Path:
        return self.home / "dist" / name

    def run(self, service: str) -> Path:
        return self.home / "run" / service


# ---------------------------------------------------------------- recorded state (pid file)


def state_file(run_dir: Path) -> Path:
    """The pid file of a service: JSON with pid, address, version, log paths, ownership marker."""
    return run_dir / "service.json"


def write_state(run_dir: Path, state: dict[str, Any]) -> None:
    path = state_file(run_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)


def read_state(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads(state_file(run_dir).read_text())
    except (FileNotFoundError, ValueError):
        return None


def remove_state(run_dir: Path) -> None:
    state_file(run_dir).unlink(missing_ok=True)


# ---------------------------------------------------------------- processes


def cmdline(pid: int) -> str:
    """The command line of ``pid`` joined by spaces, "" when gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def is_alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie (a zombie is reaped here when it is ours)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return False
    return True


def owns(pid: int | None, marker: str) -> bool:
    """True when ``pid`` is alive and is one of our service processes: a java whose command
    line holds ``marker`` (our config path), or any process whose environment holds
    ``LOGRIVER_SERVICE=<marker>`` (set at launch; covers wrapper scripts before they exec java
    and the children they spawn). A recycled pid, or an editor open on the config, never matches."""
    if not pid or not is_alive(pid):
        return False
    command = cmdline(pid)
    if Path(command.split(" ", 1)[0]).name == "java" and marker in command:
        return True
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"{SERVICE_TAG}={marker}".encode() in environ


def pids_with_marker(marker: str) -> list[int]:
    """Every live process of ours for ``marker`` (see ``owns``)."""
    me = os.getpid()
    return [
        int(e.name)
        for e in Path("/proc").iterdir()
        if e.name.isdigit() and int(e.name) != me and owns(int(e.name), marker)
    ]


def terminate(pids: list[int], pgid: int | None, timeout: float) -> list[int]:
    """SIGTERM the process group (or the pids), wait up to ``timeout``, then SIGKILL what is
    left. Returns the pids that had to be killed."""

    def send(sig: int) -> None:
        if pgid:
            try:
                os.killpg(pgid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    send(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(is_alive(p) for p in pids) and not group_members(pgid):
            return []
        time.sleep(0.1)
    left = [p for p in pids if is_alive(p)] + group_members(pgid)
    send(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (any(is_alive(p) for p in pids) or group_members(pgid)):
        time.sleep(0.05)
    return sorted(set(left))


def group_members(pgid: int | None) -> list[int]:
    """Live pids in process group ``pgid``."""
    if not pgid:
        return []
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


# ---------------------------------------------------------------- ports


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when binding ``host:port`` fails because something already listens there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def port_owner(port: int) -> str:
    """Best effort "pid N (command)" of the process listening on ``port``, or ""."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                inodes.add(cols[9])
    if not inodes:
        return ""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                command = " ".join(cmdline(int(entry.name)).split())
                return f"pid {entry.name} ({command[:80]})"
    return ""


def check_ports_free(service: str, ports: dict[str, int], env_hint: str) -> None:
    """Raise ServiceError naming the first port in ``ports`` that something else holds."""
    for label, port in ports.items():
        if port_in_use(port):
            owner = port_owner(port)
            who = f" by {owner}" if owner else ""
            raise ServiceError(
                f"cannot start {service}: {label} port 127.0.0.1:{port} is already in use{who}; "
                f"stop that process or choose another port ({env_hint})"
            )


# ---------------------------------------------------------------- tools


@dataclass
class Java:
    """A Java runtime: its ``java`` binary, its home and major version."""

    binary: str
    home: str
    major: int


def find_java() -> Java:
    """The Java from $JAVA_HOME, else from PATH; raise ServiceError when missing or too old."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(os.path.join(os.environ["JAVA_HOME"], "bin", "java"))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(on_path)
    binary = next((c for c in candidates if os.access(c, os.X_OK)), None)
    if binary is None:
        raise ServiceError(
            f"java not found (no $JAVA_HOME/bin/java, no java on PATH): install a JDK {MIN_JAVA}+ "
            "(e.g. apt-get install openjdk-17-jdk-headless) or set JAVA_HOME"
        )
    try:
        out = subprocess.run(
            [binary, "-XshowSettings:properties", "-version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(f"cannot run {binary}: {exc}") from None
    props = dict(re.findall(r"^\s*(java\.[\w.]+) = (.*)$", out, re.MULTILINE))
    spec = props.get("java.specification.version", "")
    major = int(spec.split(".")[-1]) if re.fullmatch(r"(1\.)?\d+", spec) else 0
    if major < MIN_JAVA:
        raise ServiceError(
            f"{binary} is Java {spec or 'of unknown version'}; Kafka 4 and Elasticsearch 8 need "
            f"Java {MIN_JAVA}+: install a newer JDK or point JAVA_HOME at one"
        )
    home = props.get("java.home") or str(Path(os.path.realpath(binary)).parent.parent)
    return Java(binary=binary, home=home, major=major)


def find_mvn() -> str:
    """The ``mvn`` binary; raise ServiceError when missing."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError(
            "mvn not found on PATH: install Maven (e.g. apt-get install maven); it fetches "
            "Kafka and Elasticsearch from Maven Central"
        )
    return mvn


def run_mvn(mvn: str, args: list[str], cwd: Path, what: str) -> None:
    """Run Maven in batch mode; raise ServiceError quoting its first error line on failure."""
    try:
        proc = subprocess.run(
            [mvn, "-q", "-B", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ServiceError(f"downloading {what} with mvn timed out after 30 min") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        errors = [ln for ln in lines if "ERROR" in ln] or lines or ["(no output)"]
        reason = re.sub(r"\x1b\[[0-9;]*m", "", errors[0]).strip()
        raise ServiceError(
            f"downloading {what} with mvn failed (exit {proc.returncode}): {reason[:300]} "
            "- check network access to Maven Central (or ~/.m2/settings.xml mirrors)"
        )


def file_size(path: Path) -> int:
    """Size of ``path`` in bytes, 0 when missing."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def tail(path: Path, lines: int = 20, start: int = 0, width: int = 400) -> list[str]:
    """The last ``lines`` lines of ``path`` written after byte ``start`` (from the beginning
    if the file is now shorter: rotated or truncated), each cut to ``width`` characters."""
    try:
        with open(path, "rb") as fh:
            if start <= fh.seek(0, os.SEEK_END):
                fh.seek(start)
            else:
                fh.seek(0)
            last = deque(fh, maxlen=lines)
    except OSError:
        return []
    out = []
    for raw in last:
        line = raw.decode(errors="replace").rstrip("\r\n")
        out.append(line if len(line) <= width else line[:width] + " ...")
    return out
