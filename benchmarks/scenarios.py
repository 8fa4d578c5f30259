"""Seeded Kubernetes incident scenarios, written as a node's container log files.

``write(root, seed)`` writes what a node's kubelet and runtime would hold after a few hours:
``<root>/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log`` files in docker json-file or
CRI framing (chosen per container) and the ``<root>/containers/<pod>_<namespace>_<container>-
<id>.log`` symlinks to them, with the labels of every incident. Nothing is pre-structured:
the files go through the shipped pipeline (``logriver replay ROOT`` or collector -> Kafka ->
worker), which must find services, formats, templates and times by itself.

Everything varies with the seed: how many services share the main namespace (5-7) and the
others, their names, log formats (JSON, logfmt, nginx access logs with request times,
Python and Java text layouts with stack traces, klog), vocabularies, volumes (20-240 lines
per minute), replicas, seasonality; background noise (Poisson counts, rare warnings and
errors, occasional stack traces, a low-volume service, a rotated file); and when and where
the incidents happen:

- ``error_burst``: a known error template of a service jumps to 10-30 % of its lines
  (access logs: 5xx responses);
- ``new_exception``: a never-seen exception (with a stack trace where the format has them);
- ``traffic_drop``: a service's volume falls to 10-30 %;
- ``crash_loop``: every replica restarts again and again (a new container file each time:
  start-up lines, a fatal line, back-off);
- ``latency_regression``: an access-log service's request times grow 3-6x;
- ``deploy`` (must not alert): a rolling deploy, replicas replaced one by one by pods with
  new names, each with a short restart and its start-up lines.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

WINDOW = 60
KINDS = ("error_burst", "new_exception", "traffic_drop", "crash_loop", "latency_regression")
FORMATS = ("json", "logfmt", "nginx", "python", "java", "klog")
SAFE = "bcdfghjklmnpqrstvwxz2456789"
_NAMES = ["checkout", "cart", "payments", "catalog", "search", "ledger", "auth", "orders",
          "inventory", "shipping", "pricing", "profile", "notifier", "billing", "reviews",
          "recommender", "gateway", "media", "session", "quotes"]
_NAMESPACES = ["shop", "store", "retail", "commerce", "market"]
_OTHER_NS = ["platform", "data", "identity", "ops"]
_VERBS = ["processed", "loaded", "synced", "updated", "created", "validated", "scheduled",
          "cached", "fetched", "committed", "resolved", "indexed", "published", "refreshed"]
_NOUNS = ["order", "request", "batch", "session", "record", "item", "invoice", "profile",
          "token", "cart", "shipment", "document", "task", "event", "payment", "report"]
_WARN = ["slow {} took {}ms", "retrying {} attempt {}", "cache miss for {} {}",
         "deprecated field {} in {} request", "queue depth {} above {}"]
_ERR = ["failed to {} {}: timeout after {}ms", "upstream {} returned {}",
        "could not {} {}: connection reset", "{} {} rejected: quota exceeded"]
_EXC = [("java.lang.NullPointerException", 'Cannot invoke "{}.get()" because "{}" is null'),
        ("java.lang.IllegalStateException", "{} pool exhausted while {}"),
        ("KeyError", "'{}_{}'"), ("ValueError", "invalid literal for {} with base {}"),
        ("TypeError", "unsupported operand for {}: {}"),
        ("ConcurrentModificationException", "{} modified during {}")]


@dataclass(frozen=True)
class Incident:
    kind: str
    namespace: str
    service: str
    start: float  # seconds from t0
    end: float  # seconds from t0 (exclusive)
    should_alert: bool = True

    def windows(self) -> tuple[int, int]:
        return int(self.start // WINDOW), int((self.end - 1e-9) // WINDOW)


@dataclass
class Service:
    namespace: str
    name: str
    fmt: str
    rate: float  # lines per minute
    replicas: int
    statefulset: bool
    runtime: str  # docker | cri
    info: list[str]
    warn: list[str]
    errors: list[str]
    latency_ms: float
    season: tuple[float, float]  # amplitude, period (windows)
    pods: list[str] = field(default_factory=list)


@dataclass
class Scenario:
    root: Path
    seed: int
    t0: datetime
    n_windows: int
    services: list[Service]
    incidents: list[Incident]
    lines: int = 0
    files: int = 0

    def labels(self) -> dict[str, Any]:
        return {"seed": self.seed, "t0": self.t0.isoformat(), "window_seconds": WINDOW,
                "n_windows": self.n_windows, "lines": self.lines,
                "services": [f"{s.namespace}/{s.name} ({s.fmt}, {s.rate:.0f}/min)"
                             for s in self.services],
                "incidents": [i.__dict__ for i in self.incidents]}


def _suffix(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(SAFE) for _ in range(n))


def _phrase(rng: random.Random, pattern: str) -> str:
    return pattern.format(*(rng.choice(_NOUNS + _VERBS) for _ in range(pattern.count("{}"))))


def _vocabulary(rng: random.Random) -> tuple[list[str], list[str], list[str]]:
    """Templates with ``{}`` holes for the values: info, warn, error."""
    info = []
    for _ in range(rng.randint(3, 6)):
        noun, verb = rng.choice(_NOUNS), rng.choice(_VERBS)
        extra = rng.choice(["", " in {}ms", " for user {}", " items={}", " from {}", " size={}"])
        info.append(f"{verb} {noun} {{}}{extra}")
    warn = [rng.choice(_WARN).replace("{}", rng.choice(_NOUNS), 1) for _ in range(rng.randint(1, 2))]
    errors = [rng.choice(_ERR).replace("{}", rng.choice(_VERBS[:6]), 1) for _ in range(rng.randint(1, 2))]
    return list(dict.fromkeys(info)), list(dict.fromkeys(warn)), list(dict.fromkeys(errors))


def _services(rng: random.Random, volume: float = 1.0) -> list[Service]:
    names = rng.sample(_NAMES, 16)
    main = rng.choice(_NAMESPACES)
    n_main = rng.randint(5, 7)
    fmts = rng.sample(FORMATS, 4) + [rng.choice(FORMATS) for _ in range(n_main - 4)]
    if "nginx" not in fmts:
        fmts[0] = "nginx"  # a latency regression needs request times
    rng.shuffle(fmts)
    layout = [(main, fmts[i]) for i in range(n_main)]
    for ns in rng.sample(_OTHER_NS, rng.randint(1, 2)):
        layout += [(ns, rng.choice(FORMATS)) for _ in range(rng.randint(2, 3))]
    out = []
    for i, (ns, fmt) in enumerate(layout):
        info, warn, errors = _vocabulary(rng)
        low = i == len(layout) - 1  # one low-volume service
        out.append(Service(
            ns, names[i], fmt, (rng.uniform(5, 10) if low else rng.uniform(20, 240)) * volume,
            rng.randint(1, 3), rng.random() < 0.25, rng.choice(["docker", "cri"]),
            info, warn, errors, rng.uniform(15, 90),
            (rng.uniform(0.0, 0.25), rng.uniform(60, 240))))
    return out


def _plan(rng: random.Random, services: list[Service], n_windows: int, kinds: tuple[str, ...],
          deploys: int | None, first: int, volume: float) -> list[Incident]:
    """The incidents and one or two deploys, apart from each other, after ``first``."""
    main = services[0].namespace
    main_svcs = [s for s in services if s.namespace == main]
    events = list(kinds) + ["deploy"] * (rng.randint(1, 2) if deploys is None else deploys)
    rng.shuffle(events)
    slots = n_windows - first - 5
    step = slots // len(events)
    out: list[Incident] = []
    used: set[str] = set()
    for k, kind in enumerate(events):
        w0 = first + k * step + rng.randint(0, max(0, step - 8))
        start = w0 * WINDOW + rng.uniform(0, WINDOW)
        dur = {"error_burst": (2, 4), "new_exception": (1, 3), "traffic_drop": (3, 5),
               "crash_loop": (3, 6), "latency_regression": (3, 5), "deploy": (1, 2)}[kind]
        pool = [s for s in (main_svcs if rng.random() < 0.8 else services)
                if s.rate >= 20 * volume] or main_svcs
        if kind == "latency_regression":
            pool = [s for s in services if s.fmt == "nginx"]
        elif kind in ("new_exception", "error_burst"):
            pool = [s for s in pool if s.fmt != "nginx"] or pool
        fresh = [s for s in pool if s.name not in used] or pool
        svc = rng.choice(fresh)
        used.add(svc.name)
        end = start + rng.uniform(*dur) * WINDOW
        out.append(Incident(kind, svc.namespace, svc.name, start, end, kind != "deploy"))
    return out


def _pod_name(rng: random.Random, svc: Service, i: int, generation: int) -> str:
    if svc.statefulset:
        return f"{svc.name}-{i}"
    h = hashlib.blake2b(f"{svc.name}{generation}".encode(), digest_size=8).digest()
    pod_hash = "".join(SAFE[b % len(SAFE)] for b in h)[: 8 + generation % 3]
    return f"{svc.name}-{pod_hash}-{_suffix(rng, 5)}"


# -- rendering one entry in a service's format --------------------------------------------
def _fill(rng: random.Random, template: str) -> str:
    return template.format(*(_value(rng) for _ in range(template.count("{}"))))


def _value(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.5:
        return str(rng.randrange(1, 10**6))
    if r < 0.8:
        return f"{rng.getrandbits(40):010x}"
    return rng.choice(["alice", "bob", "carol", "dave", "erin", "frank"]) + str(rng.randrange(100))


def _quote(text: str) -> str:
    """A message as Go's logfmt and klog write it (``strconv.Quote``; the texts are ASCII)."""
    return orjson.dumps(text).decode()


def _render(svc: Service, rng: random.Random, t: datetime, level: str, text: str,
            trace: list[str] | None = None) -> list[str]:
    """One entry as the lines the application prints."""
    if svc.fmt == "json":
        obj = {"ts": t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
               "level": level, "msg": text, "logger": f"{svc.name}.app"}
        if trace:
            obj["stack"] = "\n".join(trace)
        return [orjson.dumps(obj).decode()]
    if svc.fmt == "logfmt":
        ts = t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        # quoted as Go's loggers quote (strconv.Quote): inner quotes escaped
        return [f'time={ts} level={level} msg={_quote(text)} caller={svc.name}/main.go:{rng.randint(20, 400)}']
    if svc.fmt == "klog":
        letter = {"info": "I", "warn": "W", "error": "E", "fatal": "F"}[level]
        return [f'{letter}{t.strftime("%m%d %H:%M:%S.%f")}       1 {svc.name}.go:{rng.randint(20, 400)}] {_quote(text)}']
    if svc.fmt == "nginx":  # what nginx itself prints (its error log format)
        lvl = {"info": "notice", "fatal": "emerg"}.get(level, level)
        return [f"{t.strftime('%Y/%m/%d %H:%M:%S')} [{lvl}] 1#1: {text}"]
    if svc.fmt == "python":
        lvl = {"warn": "WARNING", "fatal": "CRITICAL"}.get(level, level.upper())
        head = f"{t.strftime('%Y-%m-%d %H:%M:%S')},{t.microsecond // 1000:03d} - {svc.name}.core - {lvl} - {text}"
        return [head, *trace] if trace else [head]
    # java (logback)
    stamp = f"{t.strftime('%Y-%m-%d %H:%M:%S')}.{t.microsecond // 1000:03d}"
    head = f"{stamp} [http-nio-8080-exec-{rng.randint(1, 20)}] {level.upper()} c.e.{svc.name}.Service - {text}"
    return [head, *trace] if trace else [head]


def _access(svc: Service, rng: random.Random, t: datetime, latency: float, p5xx: float) -> tuple[str, list[str]]:
    r = rng.random()
    status = 500 if r < p5xx else 404 if r < p5xx + 0.02 else 200
    method = "POST" if rng.random() < 0.2 else "GET"
    path = rng.choice(["/api/v1/{}/{}", "/api/v2/{}", "/{}/{}", "/health"]).format(
        rng.choice(_NOUNS), rng.randrange(10**5))
    ms = latency * math.exp(rng.gauss(0, 0.4))
    ip = f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    line = (f'{ip} - - [{t.strftime("%d/%b/%Y:%H:%M:%S +0000")}] "{method} {path} HTTP/1.1" '
            f'{status} {rng.randrange(200, 20000)} "-" "Mozilla/5.0" {ms / 1000:.3f}')
    return ("error" if status >= 500 else "info"), [line]


def _trace(svc: Service, rng: random.Random, exc: str, msg: str) -> list[str]:
    if svc.fmt == "python":
        return ["Traceback (most recent call last):",
                f'  File "/app/{svc.name}/handlers.py", line {rng.randint(10, 300)}, in handle',
                "    result = process(request)",
                f'  File "/app/{svc.name}/core.py", line {rng.randint(10, 300)}, in process',
                "    return table[key]", f"{exc}: {msg}"]
    return [f"{exc}: {msg}",
            f"\tat com.example.{svc.name}.Service.handle(Service.java:{rng.randint(10, 300)})",
            f"\tat com.example.{svc.name}.Controller.post(Controller.java:{rng.randint(10, 300)})",
            "\tat java.base/java.lang.Thread.run(Thread.java:840)"]


# -- one service's timeline -----------------------------------------------------------------
@dataclass
class _Container:
    ns: str
    pod: str
    name: str
    restart: int
    runtime: str
    uid: str
    entries: list[tuple[float, str, list[str]]] = field(default_factory=list)  # (t, stream, lines)


class _Writer:
    """Collects every container's entries, then writes the kubelet layout."""

    def __init__(self, root: Path, t0: datetime, rng: random.Random) -> None:
        self.root, self.t0, self.rng = root, t0, rng
        self.containers: list[_Container] = []
        self.uids: dict[str, str] = {}

    def container(self, svc: Service, pod: str, restart: int = 0, *,
                  new_pod: bool = False) -> _Container:
        """A container of ``pod`` (``new_pod``: a pod recreated under the same name, as a
        StatefulSet's rolling update does; else the pod's uid is kept across restarts)."""
        if new_pod or pod not in self.uids:
            self.uids[pod] = f"{self.rng.getrandbits(128):032x}"
        uid = self.uids[pod]
        uid = f"{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:]}"
        c = _Container(svc.namespace, pod, svc.name, restart, svc.runtime, uid)
        self.containers.append(c)
        return c

    def write(self) -> tuple[int, int]:
        lines = 0
        (self.root / "containers").mkdir(parents=True, exist_ok=True)
        for c in self.containers:
            c.entries.sort(key=lambda e: e[0])
            d = self.root / "pods" / f"{c.ns}_{c.pod}_{c.uid}" / c.name
            d.mkdir(parents=True, exist_ok=True)
            path = d / f"{c.restart}.log"
            with path.open("wb") as fh:
                for t, stream, texts in c.entries:
                    when = self.t0 + timedelta(seconds=t)
                    for text in texts:
                        fh.write(_frame(text, stream, when, c.runtime))
                        lines += 1
            cid = hashlib.sha256(f"{c.uid}/{c.name}/{c.restart}".encode()).hexdigest()
            link = self.root / "containers" / f"{c.pod}_{c.ns}_{c.name}-{cid}.log"
            os.symlink(os.path.relpath(path, link.parent), link)
        return lines, len(self.containers)


def _frame(text: str, stream: str, t: datetime, runtime: str) -> bytes:
    stamp = t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    if runtime == "cri":
        return f"{stamp} {stream} F {text}\n".encode()
    return orjson.dumps({"log": text + "\n", "stream": stream, "time": stamp},
                        option=orjson.OPT_APPEND_NEWLINE)


def _active(incidents: list[Incident], svc: Service, kind: str, t: float) -> Incident | None:
    for inc in incidents:
        if inc.kind == kind and inc.service == svc.name and inc.namespace == svc.namespace \
                and inc.start <= t < inc.end:
            return inc
    return None


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    k, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _entry(svc: Service, rng: random.Random, when: datetime, mods: dict[str, Any]) -> tuple[str, list[str]]:
    """(level, lines) of one normal entry, under the incident modifiers ``mods``."""
    if svc.fmt == "nginx":
        return _access(svc, rng, when, svc.latency_ms * mods.get("latency", 1.0),
                       mods.get("p5xx", 0.003))
    r = rng.random()
    if r < mods.get("p_error", 0.004):
        level, text = "error", _fill(rng, svc.errors[0] if mods.get("p_error") else rng.choice(svc.errors))
        trace = None
        if svc.fmt in ("java", "python") and rng.random() < 0.3:
            exc, msg = _EXC[zlib.crc32(svc.name.encode()) % len(_EXC)]
            trace = _trace(svc, rng, exc, _phrase(random.Random(svc.name), msg))
        return level, _render(svc, rng, when, level, text, trace)
    if r < 0.03:
        return "warn", _render(svc, rng, when, "warn", _fill(rng, rng.choice(svc.warn)))
    return "info", _render(svc, rng, when, "info", _fill(rng, rng.choice(svc.info)))


def _startup(svc: Service, rng: random.Random, c: _Container, t: float, t0: datetime) -> float:
    """Start-up lines of a new container from ``t``; returns when it serves."""
    version = f"{rng.randint(1, 3)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
    texts = [("info", f"starting {svc.name} version {version}"),
             ("info", f"loaded configuration from /etc/{svc.name}/config.yaml"),
             ("info", f"connected to {rng.choice(['postgres', 'redis', 'kafka'])} at 10.0.{rng.randint(0, 9)}.{rng.randint(2, 250)}:{rng.choice([5432, 6379, 9092])}"),
             ("info", f"listening on :{rng.choice([8080, 8443, 9000])}")]
    for k, (level, text) in enumerate(texts):
        when = t0 + timedelta(seconds=t + 0.2 * k)
        c.entries.append((t + 0.2 * k, "stdout", _render(svc, rng, when, level, text)))
    return t + 0.2 * len(texts)


# -- replicas over time: deploys and crash loops ----------------------------------------------
@dataclass
class _Life:
    container: _Container
    start: float
    stop: float


def _lives(w: _Writer, svc: Service, rng: random.Random, incidents: list[Incident],
           horizon: float) -> list[list[_Life]]:
    """Per replica, its containers one after the other (deploys, crash-loop restarts)."""
    out = []
    for i in range(svc.replicas):
        c = w.container(svc, _pod_name(rng, svc, i, 0))
        lives = [_Life(c, _startup(svc, rng, c, rng.uniform(0, 2), w.t0), horizon)]
        for inc in sorted(incidents, key=lambda x: x.start):
            if inc.service != svc.name or inc.namespace != svc.namespace:
                continue
            if inc.kind == "deploy":
                _deploy(w, svc, rng, lives, inc.start + 20 * i + rng.uniform(0, 5), horizon)
            elif inc.kind == "crash_loop":
                _crash_loop(w, svc, rng, lives, inc, horizon)
        out.append(lives)
    return out


def _deploy(w: _Writer, svc: Service, rng: random.Random, lives: list[_Life], t: float,
            horizon: float) -> None:
    old = lives[-1]
    old.stop = t
    when = w.t0 + timedelta(seconds=t)
    old.container.entries.append((t, "stdout", _render(svc, rng, when, "info",
                                                       "received SIGTERM, shutting down gracefully")))
    pod = old.container.pod if svc.statefulset else _pod_name(rng, svc, len(lives), len(lives) + 1)
    c = w.container(svc, pod, new_pod=True)
    lives.append(_Life(c, _startup(svc, rng, c, t + rng.uniform(1, 6), w.t0), horizon))


def _crash_loop(w: _Writer, svc: Service, rng: random.Random, lives: list[_Life],
                inc: Incident, horizon: float) -> None:
    cur = lives[-1]
    t = inc.start + rng.uniform(0, 10)
    cur.stop = t
    reason = rng.choice(["panic: runtime error: invalid memory address or nil pointer dereference",
                         f"fatal: cannot connect to {rng.choice(['postgres', 'redis'])}: connection refused",
                         "out of memory: heap limit exceeded"])
    cur.container.entries.append((t, "stderr", _render(svc, rng, w.t0 + timedelta(seconds=t),
                                                       "fatal", reason)))
    restart, backoff = cur.container.restart, 10.0
    while True:
        t += backoff
        backoff = min(backoff * 2, 80.0)
        restart += 1
        c = w.container(svc, cur.container.pod, restart)
        up = _startup(svc, rng, c, t, w.t0)
        if t >= inc.end:  # recovered: this one stays up
            lives.append(_Life(c, up, horizon))
            return
        t = up + rng.uniform(0.5, 3)
        c.entries.append((t, "stderr", _render(svc, rng, w.t0 + timedelta(seconds=t), "fatal", reason)))


def _traffic(w: _Writer, svc: Service, rng: random.Random, incidents: list[Incident],
             lives: list[list[_Life]], n_windows: int) -> None:
    amp, period = svc.season
    phase = rng.uniform(0, 2 * math.pi)
    exc, msg = _EXC[(zlib.crc32(svc.name.encode()) + 1 + rng.randrange(len(_EXC) - 1)) % len(_EXC)]
    new_exc = (exc, _phrase(rng, msg))  # one exception, raised again and again
    for win in range(n_windows):
        base = win * WINDOW
        mid = base + WINDOW / 2
        rate = svc.rate * (1 + amp * math.sin(2 * math.pi * win / period + phase))
        mods: dict[str, Any] = {}
        if _active(incidents, svc, "traffic_drop", mid):
            rate *= rng.uniform(0.1, 0.3)
        if _active(incidents, svc, "error_burst", mid):
            mods["p_error" if svc.fmt != "nginx" else "p5xx"] = rng.uniform(0.1, 0.3)
        if _active(incidents, svc, "latency_regression", mid):
            mods["latency"] = rng.uniform(3, 6)
        for _ in range(_poisson(rng, rate / WINDOW * WINDOW)):
            t = base + rng.uniform(0, WINDOW)
            _emit(svc, rng, lives, t, w.t0, mods, incidents)
        if _active(incidents, svc, "new_exception", mid):
            for _ in range(rng.randint(5, 20)):
                t = base + rng.uniform(0, WINDOW)
                _emit(svc, rng, lives, t, w.t0, {"exception": new_exc}, incidents)


def _emit(svc: Service, rng: random.Random, lives: list[list[_Life]], t: float, t0: datetime,
          mods: dict[str, Any], incidents: list[Incident]) -> None:
    serving = [life for replica in lives for life in replica if life.start <= t < life.stop]
    if not serving:
        return  # nothing serves: the request is lost
    c = rng.choice(serving).container
    when = t0 + timedelta(seconds=t)
    if "exception" in mods:
        exc, msg = mods["exception"]
        trace = _trace(svc, rng, exc, msg) if svc.fmt in ("java", "python", "json") else None
        text = f"unhandled {exc}: {msg}" if trace is None or svc.fmt == "json" else \
            f"request failed: {exc}"
        c.entries.append((t, "stderr", _render(svc, rng, when, "error", text, trace)))
        return
    level, lines = _entry(svc, rng, when, mods)
    c.entries.append((t, "stderr" if level in ("error", "warn", "fatal") else "stdout", lines))


def write(root: str | Path, seed: int, n_windows: int = 180, t0: datetime | None = None, *,
          kinds: tuple[str, ...] = KINDS, deploys: int | None = None, first: int = 20,
          volume: float = 1.0) -> Scenario:
    """Write the scenario of ``seed`` under ``root`` (a node's /var/log): ``n_windows``
    minutes, the incidents ``kinds`` (one each) and ``deploys`` (default one or two) from
    window ``first`` on, service volumes scaled by ``volume``."""
    rng = random.Random(seed)
    root = Path(root)
    start = datetime(2026, 3, 2, 6, 0, tzinfo=UTC) + timedelta(days=rng.randrange(200),
                                                              minutes=rng.randrange(60))
    t0 = t0 or start
    services = _services(rng, volume)
    incidents = _plan(rng, services, n_windows, kinds, deploys, first, volume)
    writer = _Writer(root, t0, rng)
    horizon = n_windows * WINDOW
    for svc in services:
        lives = _lives(writer, svc, rng, incidents, horizon)
        _traffic(writer, svc, rng, incidents, lives, n_windows)
    lines, files = writer.write()
    sc = Scenario(root, seed, t0, n_windows, services, incidents, lines, files)
    (root / "labels.json").write_bytes(orjson.dumps(sc.labels(), option=orjson.OPT_INDENT_2))
    return sc
