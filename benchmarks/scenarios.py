"""Seeded generator of multi-service Kubernetes logs with injected incidents.

Produces structured events shaped like the pipeline's output (``@timestamp``, ``message``,
``log``, ``kubernetes``, ``service``, ``http``, ``event``, ``logriver``), in arrival order
(event time plus a few seconds of jitter, so events arrive out of order within the allowed
lateness). Services write JSON application logs (``message`` is the JSON's ``msg``) or nginx
access logs with a request time. Template ids come from ``streams.templates.TemplateMiner``
when it is importable (``use_miner=True``), else from the generator's own template texts.

Incidents (window indices, inclusive): an error burst, a never-seen exception, a crash loop,
a traffic drop, a latency regression, and a normal deploy that must not alert.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

WINDOW_SECONDS = 60
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Incident:
    name: str
    namespace: str
    service: str
    start: int  # first window index
    end: int  # last window index (inclusive)
    should_alert: bool = True


@dataclass
class Scenario:
    events: list[dict[str, Any]]
    incidents: list[Incident]
    n_windows: int
    window_seconds: int = WINDOW_SECONDS
    t0: datetime = T0
    template_source: str = "generator"
    stats: dict[str, int] = field(default_factory=dict)

    def window_of(self, ts: str) -> int:
        dt = datetime.fromisoformat(ts)
        return int((dt - self.t0).total_seconds() // self.window_seconds)


# (template with {} holes, level, filler) per service: steady app log lines.
Line = tuple[str, str, Callable[[random.Random], tuple]]


def _id(r: random.Random) -> tuple:
    return (r.randrange(10**5, 10**6),)


APP: dict[str, list[tuple[float, str, str, Callable[[random.Random], tuple]]]] = {
    # service: [(share of its volume, template, level, args)]
    "cart": [
        (0.55, "served cart {} items={}", "info", lambda r: (r.randrange(10**6), r.randrange(1, 9))),
        (0.30, "added item sku-{} to cart {}", "info", lambda r: (r.randrange(9999), r.randrange(10**6))),
        (0.148, "cache hit ratio {}", "debug", lambda r: (round(r.uniform(0.8, 0.99), 2),)),
        (0.002, "redis timeout after {}ms", "error", lambda r: (r.randrange(500, 900),)),
    ],
    "checkout": [
        (0.50, "order {} placed total={}", "info", lambda r: (r.randrange(10**6), r.randrange(5, 500))),
        (0.45, "payment authorized for order {}", "info", _id),
        (0.047, "coupon {} expired", "warn", lambda r: (r.choice(["SPRING", "VIP", "WELCOME"]) + str(r.randrange(99)),)),
        (0.003, "payment gateway timeout after {}ms", "error", lambda r: (r.randrange(3000, 5000),)),
    ],
    "payments": [
        (0.90, "charge ch_{} succeeded amount={}", "info", lambda r: (r.randrange(10**8), r.randrange(5, 500))),
        (0.09, "card declined for customer {}", "warn", _id),
        (0.01, "fraud check failed: upstream {} timeout", "error", lambda r: (r.choice(["riskd", "scorer"]) + "-" + str(r.randrange(3)),)),
    ],
    "auth-api": [
        (0.85, "token issued for user {}", "info", _id),
        (0.149, "login failed for user {}", "warn", _id),
        (0.001, "ldap bind failed after {}ms", "error", lambda r: (r.randrange(1000, 3000),)),
    ],
    "ingest-worker": [
        (0.60, "processed batch {} rows={} in {}ms", "info", lambda r: (r.randrange(10**6), r.randrange(100, 5000), r.randrange(5, 900))),
        (0.398, "committed offset {} partition {}", "info", lambda r: (r.randrange(10**9), r.randrange(12))),
        (0.002, "schema mismatch in record {}", "error", _id),
    ],
}
STARTUP = [("Starting {} service version {}", "info"), ("Listening on port {}", "info"),
           ("Connecting to {} at {}:{}", "info")]
# namespace, service, kind ("app" | "access"), base lines per minute, median latency ms
SERVICES = [
    ("shop", "frontend", "access", 300, 40.0),
    ("shop", "cart", "app", 120, 0.0),
    ("shop", "checkout", "app", 80, 0.0),
    ("shop", "payments", "app", 60, 0.0),
    ("auth", "auth-api", "access", 150, 25.0),
    ("auth", "auth-api", "app", 40, 0.0),
    ("data", "ingest-worker", "app", 100, 0.0),
    ("platform", "ingress-nginx", "access", 200, 15.0),
]
PATHS = ["/api/products/{}", "/api/cart/{}", "/api/orders/{}", "/static/app.{}.js", "/login", "/token"]
INCIDENTS = [
    Incident("error_burst", "shop", "payments", 50, 51),
    Incident("new_exception", "shop", "checkout", 62, 62),
    Incident("crash_loop", "shop", "cart", 74, 77),
    Incident("traffic_drop", "shop", "frontend", 88, 90),
    Incident("latency_regression", "auth", "auth-api", 100, 102),
    Incident("normal_deploy", "shop", "checkout", 110, 111, should_alert=False),
]
NPE = ('java.lang.NullPointerException: Cannot invoke "Coupon.discount()" because "coupon" is '
       "null at OrderService.applyCoupon(OrderService.java:{})")
CRASH = "panic: dial tcp {}:6379: connect: connection refused"


def _active(name: str, w: int) -> bool:
    return any(i.name == name and i.start <= w <= i.end for i in INCIDENTS)


class _Emitter:
    def __init__(self, rng: random.Random, miner: Any) -> None:
        self.rng = rng
        self.miner = miner
        self.seen: set[str] = set()
        self.out: list[tuple[float, int, dict[str, Any]]] = []

    def emit(self, t: float, ns: str, svc: str, pod: str, template: str, level: str,
             args: tuple, http: dict | None = None, duration_ns: int | None = None,
             message: str | None = None) -> None:
        msg = message if message is not None else template.format(*args)
        if self.miner is not None:
            m = self.miner.match(msg)
            tid, text, is_new = m.template_id, m.template, m.is_new
        else:
            text = template.replace("{}", "<*>")
            tid = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
            is_new = tid not in self.seen
            self.seen.add(tid)
        ts = (T0 + timedelta(seconds=t)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        ev: dict[str, Any] = {
            "@timestamp": ts,
            "message": msg,
            "log": {"level": level, "template_id": tid, "template": text},
            "kubernetes": {"namespace": ns, "pod": {"name": pod}, "container": {"name": svc}},
            "service": {"name": svc},
            "event": {"id": f"{len(self.out):08d}"},
            "logriver": {"template_is_new": is_new},
        }
        if http is not None:
            ev["http"] = http
        if duration_ns is not None:
            ev["event"]["duration"] = duration_ns
        arrival = t + self.rng.uniform(0, 3.0)
        self.out.append((arrival, len(self.out), ev))


def _pod(svc: str, gen: int) -> str:
    return f"{svc}-{hashlib.md5(f'{svc}{gen}'.encode()).hexdigest()[:9]}-{gen:05d}"


def generate(n_windows: int = 120, seed: int = 7, use_miner: bool = True) -> Scenario:
    """Build the scenario: ``n_windows`` minutes of logs with the incidents of ``INCIDENTS``."""
    rng = random.Random(seed)
    miner = None
    if use_miner:
        try:
            from streams.templates import TemplateMiner
            miner = TemplateMiner()
        except ImportError:
            miner = None
    em = _Emitter(rng, miner)
    pods = {s[1]: _pod(s[1], 0) for s in SERVICES}
    for i, (ns, svc, _, _, _) in enumerate(SERVICES):  # every service starts at t=0
        for j, (tpl, lvl) in enumerate(STARTUP):
            em.emit(0.01 * i + 0.001 * j, ns, svc, pods[svc], tpl, lvl,
                    _startup_args(rng, tpl, svc))
    for w in range(n_windows):
        base_t = w * WINDOW_SECONDS
        season = 1.0 + 0.2 * math.sin(2 * math.pi * w / 90)
        for ns, svc, kind, per_min, lat in SERVICES:
            rate = per_min * season
            if svc == "frontend" and _active("traffic_drop", w):
                rate *= 0.15
            if svc == "cart" and _active("crash_loop", w):
                rate *= 0.05
            if svc == "checkout" and w == 110:
                rate *= 0.75  # rolling restart: a brief dip
            n = _poisson(rng, rate)
            for _ in range(n):
                t = base_t + rng.uniform(0, WINDOW_SECONDS)
                if kind == "access":
                    slow = 4.0 if svc == "auth-api" and _active("latency_regression", w) else 1.0
                    _access(em, rng, t, ns, svc, pods[svc], lat * slow)
                else:
                    _, tpl, lvl, fill = _pick(rng, APP[svc])
                    em.emit(t, ns, svc, pods[svc], tpl, lvl, fill(rng))
        _incidents(em, rng, w, base_t, pods)
    em.out.sort(key=lambda x: (x[0], x[1]))
    events = [e for _, _, e in em.out]
    return Scenario(events, list(INCIDENTS), n_windows,
                    template_source="TemplateMiner" if miner is not None else "generator",
                    stats={"events": len(events)})


def _startup_args(rng: random.Random, tpl: str, svc: str) -> tuple:
    if tpl.startswith("Starting"):
        return (svc, f"1.{rng.randrange(9)}.{rng.randrange(9)}")
    if tpl.startswith("Listening"):
        return (rng.choice([8080, 8443, 9000]),)
    return ("redis", "10.0.0.12", 6379)


def _pick(rng: random.Random, options: list) -> tuple:
    x = rng.random()
    acc = 0.0
    for opt in options:
        acc += opt[0]
        if x < acc:
            return opt
    return options[-1]


def _poisson(rng: random.Random, lam: float) -> int:
    return max(0, round(rng.gauss(lam, math.sqrt(lam)))) if lam > 30 else _small_poisson(rng, lam)


def _small_poisson(rng: random.Random, lam: float) -> int:
    k, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _access(em: _Emitter, rng: random.Random, t: float, ns: str, svc: str, pod: str,
            median_ms: float) -> None:
    method = "POST" if rng.random() < 0.2 else "GET"
    path = rng.choice(PATHS).format(rng.randrange(10**5))
    r = rng.random()
    status = 500 if r < 0.004 else 404 if r < 0.02 else 304 if r < 0.08 else 200
    size = rng.randrange(200, 20000)
    ms = median_ms * math.exp(rng.gauss(0, 0.5))
    ip = f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(256)}"
    stamp = (T0 + timedelta(seconds=t)).strftime("%d/%b/%Y:%H:%M:%S +0000")
    msg = (f'{ip} - - [{stamp}] "{method} {path} HTTP/1.1" {status} {size} "-" '
           f'"Mozilla/5.0" {ms / 1000:.3f}')
    template = f'<*> - - [<*> +0000] "{method} <*> HTTP/1.1" {status} <*> "-" "Mozilla/5.0" <*>'
    em.emit(t, ns, svc, pod, template, "error" if status >= 500 else "info", (),
            http={"request": {"method": method}, "response": {"status_code": status,
                                                            "body": {"bytes": size}}},
            duration_ns=int(ms * 1e6), message=msg)


def _incidents(em: _Emitter, rng: random.Random, w: int, base_t: float, pods: dict) -> None:
    if _active("error_burst", w):
        for _ in range(_poisson(rng, 60)):
            em.emit(base_t + rng.uniform(0, 60), "shop", "payments", pods["payments"],
                    "fraud check failed: upstream {} timeout", "error",
                    (rng.choice(["riskd", "scorer"]) + "-" + str(rng.randrange(3)),))
    if _active("new_exception", w):
        for _ in range(12):
            em.emit(base_t + rng.uniform(0, 60), "shop", "checkout", pods["checkout"],
                    NPE, "error", (rng.choice([212, 213]),))
    if _active("crash_loop", w):
        for k in range(2):  # a restart every ~30 s, each a short life ending in a panic
            t = base_t + 30 * k + rng.uniform(0, 5)
            pod = _pod("cart", 1)
            for j, (tpl, lvl) in enumerate(STARTUP):
                em.emit(t + 0.1 * j, "shop", "cart", pod, tpl, lvl, _startup_args(rng, tpl, "cart"))
            em.emit(t + 1.0, "shop", "cart", pod, CRASH, "fatal", ("10.0.0.12",))
            em.emit(t + 1.1, "shop", "cart", pod, "back-off restarting failed container", "warn", ())
    if w in (110, 111):  # normal rolling deploy of checkout
        for k in range(2):
            t = base_t + 10 + 20 * k + rng.uniform(0, 3)
            old, new = _pod("checkout", 10 * w + k), _pod("checkout", 10 * w + k + 1)
            em.emit(t, "shop", "checkout", old, "Received SIGTERM, draining connections", "info", ())
            for j, (tpl, lvl) in enumerate(STARTUP):
                em.emit(t + 2 + 0.1 * j, "shop", "checkout", new, tpl, lvl,
                        _startup_args(rng, tpl, "checkout"))
            em.emit(t + 3, "shop", "checkout", new, "Loaded feature flags: new-cart-ui=on", "info", ())
            em.emit(t + 3.1, "shop", "checkout", new,
                    "Applied database migration add_coupon_index", "info", ())
        pods["checkout"] = _pod("checkout", 10 * w + 2)
