"""Elasticsearch (the integ-test zip from Maven Central: server + transport + x-pack core and
security), one node on 127.0.0.1, run as an unprivileged user when we are root."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from .base import SERVICE_TAG, Java, ServiceError, Settings, run_mvn

NAME = "elasticsearch"
VERSION = "8.19.21"
ARTIFACT = f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{VERSION}:zip"
CLUSTER = "logriver"
# Health checks go straight to 127.0.0.1, whatever http_proxy says.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# Files of the distribution's config dir copied into ours (elasticsearch.yml and jvm.options
# are written by us).
_CONFIG_COPIES = ("log4j2.properties", "roles.yml", "role_mapping.yml", "users", "users_roles")


def render_yml(settings: Settings, data_dir: Path, logs_dir: Path) -> str:
    """elasticsearch.yml: one node, loopback only, no security, no ML, no disk watermarks.
    Loopback + single-node discovery means the production bootstrap checks (vm.max_map_count,
    file descriptors) are not enforced."""
    conf = {
        "cluster.name": CLUSTER,
        "node.name": "logriver-1",
        "path.data": str(data_dir),
        "path.logs": str(logs_dir),
        "network.host": "127.0.0.1",
        "http.port": settings.es_port,
        "transport.port": settings.es_transport_port,
        "discovery.type": "single-node",
        "xpack.security.enabled": False,
        "xpack.ml.enabled": False,
        "action.destructive_requires_name": False,
        "cluster.routing.allocation.disk.threshold_enabled": False,
    }
    return "".join(f"{k}: {json.dumps(v)}\n" for k, v in conf.items())


def render_jvm_options(template: str, logs_dir: Path) -> str:
    """The distribution's jvm.options with GC logs, error files and heap dumps kept in
    ``logs_dir`` and bounded (2 x 16 MB of GC log instead of 32 x 64 MB)."""
    out = []
    for line in template.splitlines():
        if line.startswith("-Xlog:gc"):
            line = (
                f"-Xlog:gc*:file={logs_dir}/gc.log:utctime,level,pid,tags:filecount=2,filesize=16m"
            )
        elif line.startswith("-XX:ErrorFile="):
            line = f"-XX:ErrorFile={logs_dir}/hs_err_pid%p.log"
        elif line.startswith("-XX:HeapDumpPath="):
            continue
        out.append(line)
    out.append(f"-XX:HeapDumpPath={logs_dir}")
    return "\n".join(out) + "\n"


def extract(archive: Path, dest: Path) -> None:
    """Unzip keeping the Unix permission bits (zipfile alone drops the executable bit)."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            path = Path(zf.extract(info, dest))
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                path.chmod(mode | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


def _make_world_readable(root: Path) -> None:
    """u+rwX, go+rX on a tree, so the unprivileged ES user can read the distribution."""
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            mode = os.stat(path).st_mode
            os.chmod(path, (mode | 0o644) | (0o111 if mode & 0o100 else 0))


class Elasticsearch:
    """Paths, fetching, configuration and the command line of the Elasticsearch node."""

    name = NAME
    version = VERSION
    env_hint = "LOGRIVER_ES_PORT / LOGRIVER_ES_TRANSPORT_PORT"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dist = settings.dist(f"elasticsearch-{VERSION}")
        self.run_dir = settings.run(NAME)
        self.config_dir = self.run_dir / "config"
        self.data = self.run_dir / "data"
        self.logs = self.run_dir / "logs"
        self.tmp = self.run_dir / "tmp"
        self.logfile = self.logs / f"{CLUSTER}.log"
        self.outfile = self.run_dir / "elasticsearch.out"

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.settings.es_port}"

    @property
    def marker(self) -> str:
        """A string only our ES processes' command lines contain (-Des.path.conf=...)."""
        return str(self.config_dir)

    def ports(self) -> dict[str, int]:
        return {
            "Elasticsearch HTTP": self.settings.es_port,
            "Elasticsearch transport": self.settings.es_transport_port,  # type: ignore[dict-item]
        }

    def fetched(self) -> bool:
        return (self.dist / ".complete").exists()

    def fetch(self, mvn: str) -> None:
        """Download the zip with mvn, unzip into dist/elasticsearch-<ver> (atomic rename)."""
        tmp = self.dist.with_name(f"{self.dist.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            run_mvn(
                mvn,
                ["dependency:copy", f"-Dartifact={ARTIFACT}", "-DoutputDirectory=."],
                tmp,
                f"Elasticsearch {VERSION}",
            )
            archive = tmp / f"elasticsearch-{VERSION}.zip"
            if not archive.exists():
                raise ServiceError(f"mvn finished but {archive.name} is missing")
            try:
                extract(archive, tmp)
            except (zipfile.BadZipFile, OSError) as exc:
                raise ServiceError(f"unzipping {archive.name} failed: {exc}") from None
            unpacked = tmp / f"elasticsearch-{VERSION}"
            if not (unpacked / "bin" / "elasticsearch").exists():
                raise ServiceError(
                    f"{archive.name} holds no elasticsearch-{VERSION}/bin/elasticsearch"
                )
            _make_world_readable(unpacked)
            (unpacked / ".complete").touch()
            shutil.rmtree(self.dist, ignore_errors=True)
            unpacked.rename(self.dist)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def run_user(self) -> pwd.struct_passwd | None:
        """The unprivileged account to run as when we are root (created on first use)."""
        if os.geteuid() != 0:
            return None
        user = self.settings.es_user
        try:
            return pwd.getpwnam(user)
        except KeyError:
            pass
        if not shutil.which("useradd"):
            raise ServiceError(
                f"Elasticsearch refuses to run as root and useradd is missing: create a user "
                f"{user!r} or run logriver as a normal user"
            )
        proc = subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                user,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 and "already exists" not in proc.stderr:
            raise ServiceError(f"useradd {user} failed: {proc.stderr.strip()}")
        return pwd.getpwnam(user)

    def prepare(self, java: Java) -> None:
        """Write config (ports may have changed), create folders, hand them to the ES user."""
        for path in (self.config_dir, self.data, self.logs, self.tmp):
            path.mkdir(parents=True, exist_ok=True)
        src = self.dist / "config"
        for name in _CONFIG_COPIES:
            if (src / name).exists() and not (self.config_dir / name).exists():
                shutil.copy(src / name, self.config_dir / name)
        (self.config_dir / "jvm.options").write_text(
            render_jvm_options((src / "jvm.options").read_text(), self.logs)
        )
        (self.config_dir / "elasticsearch.yml").write_text(
            render_yml(self.settings, self.data, self.logs)
        )
        user = self.run_user()
        if user is not None:
            moved = "set LOGRIVER_HOME to a folder outside it (e.g. /var/cache/logriver)"
            _reach(self.run_dir / "config", moved)
            _reach(self.dist / "bin" / "elasticsearch", moved)
            _reach(Path(java.home) / "bin" / "java", "use a JDK installed outside it (JAVA_HOME)")
            for dirpath, _dirs, files in os.walk(self.run_dir):
                os.chown(dirpath, user.pw_uid, user.pw_gid)
                for name in files:
                    os.chown(os.path.join(dirpath, name), user.pw_uid, user.pw_gid)

    def start(self, java: Java) -> subprocess.Popen:
        """Launch bin/elasticsearch (-q: logs go to files only) in its own session."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k
            not in ("JAVA_HOME", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JAVA_OPTS", "ES_JAVA_OPTS")
        }
        heap = self.settings.es_heap
        env.update(
            ES_JAVA_HOME=java.home,
            ES_PATH_CONF=str(self.config_dir),
            ES_TMPDIR=str(self.tmp),
            ES_JAVA_OPTS=f"-Xms{heap} -Xmx{heap}",
            **{SERVICE_TAG: self.marker},
        )
        user = self.run_user()
        extra: dict = {}
        if user is not None:
            env.update(HOME=str(self.run_dir), USER=user.pw_name, LOGNAME=user.pw_name)
            extra = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        with open(self.outfile, "wb") as out:
            if user is not None:
                os.chown(self.outfile, user.pw_uid, user.pw_gid)
            return subprocess.Popen(
                [str(self.dist / "bin" / "elasticsearch"), "-q"],
                cwd=self.run_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
                **extra,
            )

    def probe(self, timeout: float = 5.0) -> str | None:
        """``GET /_cluster/health``; returns "cluster health <status>" once yellow or green."""
        url = f"{self.address}/_cluster/health?timeout={max(1, int(timeout))}s"
        try:
            with _NO_PROXY.open(url, timeout=timeout) as resp:
                health = json.load(resp).get("status")
        except (urllib.error.URLError, OSError, ValueError):
            return None
        return f"cluster health {health}" if health in ("yellow", "green") else None


def _reach(path: Path, hint: str) -> None:
    """Make sure every parent of ``path`` is traversable by others (o+x), else explain."""
    for parent in reversed(path.parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            raise ServiceError(
                f"{parent} is not reachable by the Elasticsearch user "
                f"(mode {oct(mode & 0o777)}): {hint}"
            )
