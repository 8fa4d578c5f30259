"""Docker's own log drivers against Logriver's receivers: build and run the Go program in
``tests/dockerdrivers`` (Docker's driver packages and ``logger.Copier``), describe what each
variant sends, and check what became searchable in Elasticsearch against what was sent.

Used by ``tests/integration/test_docker_drivers.py`` (and by anyone who wants to drive a
receiver the way dockerd does: ``build()``, then ``Harness(binary, dir).run(Variant(...))``).

The program is built with ``go build`` into ``~/.cache/logriver/dockerdrivers/<hash>/`` (the
hash covers go.mod, go.sum, the sources, the Go version and the flags), so a warm run costs
nothing; ``build()`` raises ``GoMissing`` where no Go toolchain is installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import secrets
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

REPO = Path(__file__).resolve().parents[1]
GO_DIR = REPO / "tests" / "dockerdrivers"
# go-systemd's journal package sends to this variable's path; the package documents it as
# overridable at build time. Relative: the program links it to the variant's socket.
LDFLAGS = "-X github.com/coreos/go-systemd/v22/journal.journalSocket=journal.socket"
LONG_SIZES = [16384, 40000, 80007, 16385]
SPLIT_AT = 16 * 1024  # logger.Copier's buffer (defaultBufSize) unless the driver has its own


class GoMissing(RuntimeError):
    """No Go toolchain: the Docker driver tests cannot run here."""


def _go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        raise GoMissing("no `go` on PATH (install Go 1.24+ to run Docker's log drivers)")
    return go


def build(cache_root: Path | None = None) -> Path:
    """The harness binary, built once per content hash."""
    go = _go()
    version = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True,
                             check=True).stdout.strip()
    h = hashlib.sha256(f"{version}\n{LDFLAGS}\n".encode())
    for p in sorted(GO_DIR.iterdir()):
        if p.suffix in (".go", ".mod", ".sum"):
            h.update(p.name.encode() + b"\0" + p.read_bytes())
    root = cache_root or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "logriver"
    out = root / "dockerdrivers" / h.hexdigest()[:16] / "dockerdrivers"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    env = {"HOME": str(Path.home()), **os.environ,  # go keeps its caches under $HOME
           "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false -mod=readonly"}
    proc = subprocess.run([go, "build", "-ldflags", LDFLAGS, "-o", str(tmp), "."],
                          cwd=GO_DIR, env=env, capture_output=True, text=True, timeout=900,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"go build failed:\n{proc.stderr[-4000:]}")
    tmp.replace(out)
    return out


# -- what a variant sends --------------------------------------------------------------------


@dataclass
class Container:
    id: str = field(default_factory=lambda: secrets.token_hex(32))
    name: str = "/shop-cart-1"
    image: str = "registry.example:5000/shop/cart:1.4.2"
    image_id: str = field(default_factory=lambda: "sha256:" + secrets.token_hex(32))
    entrypoint: str = "/app/cart"
    args: list[str] = field(default_factory=lambda: ["--port", "8080"])
    env: list[str] = field(default_factory=lambda: ["APP_ENV=prod", "REGION=eu-1"])
    labels: dict[str, str] = field(default_factory=lambda: {"com.example.team": "payments",
                                                            "com.example.tier": "web"})


@dataclass
class Variant:
    """One run of one driver with one set of ``--log-opt`` values (what dockerd passes)."""

    name: str
    driver: str
    config: dict[str, str]
    lines: int = 2000
    rate: float = 2000.0  # lines/s; 0 = burst
    long_every: int = 200
    long_sizes: list[int] = field(default_factory=lambda: list(LONG_SIZES))
    stderr_every: int = 3
    tz: str = ""
    journal_socket: str = ""
    env: dict[str, str] = field(default_factory=dict)
    container: Container = field(default_factory=Container)
    marker: str = field(default_factory=lambda: "lrv" + secrets.token_hex(5))

    def plan(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Sent:
    seq: int
    stream: str
    t_ns: int  # written to the container's pipe
    stamp_ns: int  # the time logger.Copier gave it: what the driver sends as the event time
    line: str


class Harness:
    """Runs variants one after the other, each in its own process (a driver that panics —
    fluent-logger does, on a connection closed under it — takes only its own variant down).
    Every process stays up after its variant until ``close()``: dockerd outlives its
    containers' drivers, and awslogs does not wait for its last PutLogEvents on close.

    ``results[name]``: the program's summary (``sent``, ``log_errors``, ``error``...);
    ``sent[name]``: the lines written, in order."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.results: dict[str, dict[str, Any]] = {}
        self.sent: dict[str, list[Sent]] = {}
        self._procs: list[subprocess.Popen[bytes]] = []
        workdir.mkdir(parents=True, exist_ok=True)

    def run(self, variant: Variant, timeout: float = 600.0) -> dict[str, Any]:
        d = self.workdir / variant.name
        d.mkdir(parents=True, exist_ok=True)
        (d / "plan.json").write_text(json.dumps([variant.plan()]))
        with open(d / "harness.log", "wb") as err:
            proc = subprocess.Popen(
                [str(self.binary), "-plan", str(d / "plan.json"), "-sent", str(d / "sent.jsonl"),
                 "-wait-stdin"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        self._procs.append(proc)
        lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()
        result: dict[str, Any] = {"variant": variant.name, "error": "the program died"}
        deadline = time.monotonic() + timeout
        while True:  # one summary line, then {"done": true} (b"" at exit)
            try:
                raw = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                proc.kill()
                result = {"variant": variant.name, "error": f"no result in {timeout:.0f} s"}
                break
            if not raw or json.loads(raw).get("done"):
                break
            result = json.loads(raw)
        self.results[variant.name] = result
        self.sent[variant.name] = read_sent(d / "sent.jsonl")
        return result

    def close(self) -> None:
        for proc in self._procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self._procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
        self._procs.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pump(proc: subprocess.Popen[bytes], out: queue.Queue[bytes]) -> None:
    assert proc.stdout is not None
    for raw in proc.stdout:
        out.put(raw)
    out.put(b"")


def read_sent(path: Path) -> list[Sent]:
    """The lines a variant wrote (a line cut short by a crash is left out)."""
    out: list[Sent] = []
    if path.exists():
        with open(path, "rb") as f:
            for raw in f:
                try:
                    o = json.loads(raw)
                except ValueError:
                    continue
                out.append(Sent(o["seq"], o["stream"], o["t"], o["stamp"], o["line"]))
    return out


# -- what arrived ----------------------------------------------------------------------------

_SEQ_RE = re.compile(r"seq=(\d{6})")
_PIECE_RE = re.compile(r"(\d{6}):(\d{5})")

FIELDS = ["message", "@timestamp", "container", "stream", "event.id", "log.level"]


async def fetch(es_url: str, index: str, marker: str) -> list[dict[str, Any]]:
    """Every event whose message holds ``marker`` (its ``_source`` limited to ``FIELDS``)."""
    from elasticsearch import AsyncElasticsearch
    from elasticsearch.helpers import async_scan

    async with AsyncElasticsearch(es_url, request_timeout=120) as es:
        await es.indices.refresh(index=index, allow_no_indices=True)
        return [hit["_source"] async for hit in async_scan(
            es, index=index, query={"query": {"match": {"message": marker}}},
            _source=FIELDS, size=1000)]


def seq_of(message: str, marker: str) -> tuple[int, int] | None:
    """(line sequence number, piece index) of an event: piece -1 for the head of a line (it
    carries ``seq=``), else the first ``marker:seq:piece`` token of a continuation piece."""
    m = _SEQ_RE.search(message)
    if m:
        return int(m.group(1)), -1
    i = message.find(marker + ":")
    if i >= 0:
        p = _PIECE_RE.match(message, i + len(marker) + 1)
        if p:
            return int(p.group(1)), int(p.group(2))
    return None


@dataclass
class Report:
    """What one variant delivered, line by line."""

    variant: str
    sent: int
    events: int
    once: int = 0  # lines found exactly once (whole, or every piece once)
    missing: list[int] = field(default_factory=list)  # in no event at all
    merged: list[int] = field(default_factory=list)  # inside another line's event
    duplicated: list[int] = field(default_factory=list)
    garbled: list[str] = field(default_factory=list)
    long_lines: int = 0
    long_whole: int = 0  # long lines that arrived as one event
    long_split: int = 0  # long lines that arrived as pieces rebuilding the line
    unattributed: int = 0
    max_skew_s: float = 0.0  # |@timestamp - the copier's time|, over lines found once
    max_lag_s: float = 0.0  # the copier's time - the write into the pipe (Docker's side)
    streams_known: int = 0
    streams_right: int = 0
    container: dict[str, set] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items()
               if k not in ("missing", "merged", "duplicated")}
        out["missing"] = len(self.missing)
        out["merged"] = len(self.merged)
        out["duplicated"] = len(self.duplicated)
        out["container"] = {k: sorted(v) for k, v in self.container.items()}
        return out


def _get(doc: dict[str, Any], path: str) -> Any:
    cur: Any = doc
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _epoch_ns(ts: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(ts).timestamp() * 1e9)


# A continuation piece of a long line shorter than one " marker:seq:piece" token may carry no
# token at all: it cannot be told apart from another variant's and is not looked for.
def _token_len(marker: str) -> int:
    return len(marker) + 14


def _long_line(rep: Report, s: Sent, parts: list[tuple[int, dict]], marker: str) -> bool:
    """Judge a long line's pieces; True when it arrived once (whole or rebuildable)."""
    heads = sum(1 for piece, _ in parts if piece == -1)
    if heads > 1:
        rep.duplicated.append(s.seq)
        return False
    parts.sort(key=lambda x: x[0])
    text = "".join(d.get("message") or "" for _, d in parts)
    if heads == 1 and text == s.line:
        if len(parts) == 1:
            rep.long_whole += 1
        else:
            rep.long_split += 1
        return True
    if heads == 1 and s.line.startswith(text) and len(s.line) - len(text) < _token_len(marker):
        rep.long_split += 1  # all but a tail too short to carry a token
        return True
    rep.garbled.append(f"seq {s.seq}: {len(parts)} pieces, {heads} heads, rebuild "
                       f"{len(text)} of {len(s.line)} bytes")
    return False


def analyse(variant: Variant, sent: list[Sent], docs: list[dict[str, Any]]) -> Report:
    """Match events to the lines sent: each line once (whole, or split into pieces that
    rebuild it), event time against the copier's time, stream, container fields seen."""
    rep = Report(variant.name, len(sent), len(docs))
    by_seq: dict[int, list[tuple[int, dict]]] = {}
    inside: set[int] = set()  # lines found after the first one of an event (wrongly joined)
    for d in docs:
        inside.update(int(m.group(1)) for m in list(_SEQ_RE.finditer(d.get("message") or ""))[1:])
        key = seq_of(d.get("message") or "", variant.marker)
        if key is None:
            rep.unattributed += 1
            continue
        by_seq.setdefault(key[0], []).append((key[1], d))
        for path in ("id", "name", "image.name"):
            value = _get(d.get("container") or {}, path)
            if value:
                rep.container.setdefault(path, set()).add(value)
    for s in sent:
        parts = by_seq.get(s.seq, [])
        if len(s.line) > 200:
            rep.long_lines += 1
        if not parts:
            (rep.merged if s.seq in inside else rep.missing).append(s.seq)
            continue
        if len(s.line) > 200:
            if not _long_line(rep, s, parts, variant.marker):
                continue
        elif len(parts) > 1:
            rep.duplicated.append(s.seq)
            continue
        rep.once += 1
        doc = next((d for piece, d in parts if piece == -1), parts[0][1])
        ts = doc.get("@timestamp")
        if ts and s.stamp_ns:
            rep.max_skew_s = max(rep.max_skew_s, abs(_epoch_ns(ts) - s.stamp_ns) / 1e9)
        if s.stamp_ns:
            rep.max_lag_s = max(rep.max_lag_s, (s.stamp_ns - s.t_ns) / 1e9)
        stream = doc.get("stream")
        if stream:
            rep.streams_known += 1
            rep.streams_right += stream == s.stream
    return rep
