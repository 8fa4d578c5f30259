"""A generator of realistic container logs, written the way a node's runtime writes them.

Used by the demo, the integration tests and the benchmarks: several namespaces and pods,
JSON application logs, nginx access logs, klog lines from Kubernetes components, Python and
Java text layouts with a Java stack trace, and some errors, as docker json-file (default) or
CRI files under ``<root>/containers/<pod>_<namespace>_<container>-<id>.log``.
Deterministic for a given seed.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson


@dataclass(frozen=True)
class Container:
    namespace: str
    pod: str
    name: str
    kind: str  # json | nginx | klog | python | java

    @property
    def container_id(self) -> str:
        return hashlib.sha256(f"{self.namespace}/{self.pod}/{self.name}".encode()).hexdigest()

    def file_name(self) -> str:
        return f"{self.pod}_{self.namespace}_{self.name}-{self.container_id}.log"


DEFAULT_CONTAINERS = (
    Container("shop", "checkout-7d9f8b6c5-x2x4z", "checkout", "json"),
    Container("shop", "frontend-6c8d7f9b4-abcde", "nginx", "nginx"),
    Container("payments", "payments-api-5f6d8c7b9-k8s7q", "api", "java"),
    Container("payments", "ledger-0", "ledger", "python"),
    Container("kube-system", "kube-scheduler-node1", "kube-scheduler", "klog"),
    Container("monitoring", "prometheus-0", "prometheus", "json"),
)

_USERS = ["alice", "bob", "carol", "dave", "erin"]
_PATHS = ["/", "/cart", "/api/v1/items", "/api/v1/items/42", "/checkout", "/static/app.js"]


@dataclass
class Generated:
    """What was written: physical ``lines``, and the ``events`` they make once the collector
    merged stack traces (a Java error is a header line plus one multi-line trace event);
    ``by_namespace`` and ``by_level`` count events."""

    root: Path
    files: list[Path] = field(default_factory=list)
    lines: int = 0
    events: int = 0
    by_namespace: Counter = field(default_factory=Counter)
    by_level: Counter = field(default_factory=Counter)


def _message(c: Container, rng: random.Random, t: datetime, i: int) -> tuple[list[str], str]:
    """One application log entry as the lines the app prints, and its level."""
    r = rng.random()
    level = "error" if r < 0.05 else "warn" if r < 0.12 else "debug" if r < 0.2 else "info"
    if c.kind == "json":
        user = rng.choice(_USERS)
        msg = {
            "info": f"order {rng.randint(1000, 9999)} placed by {user}",
            "debug": f"cache lookup key=cart:{user} hit={rng.random() < 0.7}",
            "warn": f"slow query took {rng.randint(500, 3000)}ms",
            "error": f"payment declined for order {rng.randint(1000, 9999)}: insufficient funds",
        }[level]
        obj = {"ts": t.isoformat().replace("+00:00", "Z"), "level": level, "msg": msg,
               "logger": f"{c.name}.handler", "request_id": f"{rng.getrandbits(48):012x}"}
        return [orjson.dumps(obj).decode()], level
    if c.kind == "nginx":
        status = 500 if level == "error" else 404 if level == "warn" else 200
        level = "error" if status >= 500 else "warn" if status >= 400 else "info"
        ip = f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        stamp = t.strftime("%d/%b/%Y:%H:%M:%S +0000")
        line = (f'{ip} - - [{stamp}] "GET {rng.choice(_PATHS)} HTTP/1.1" {status} '
                f'{rng.randint(200, 20000)} "-" "Mozilla/5.0 (X11; Linux x86_64)" '
                f'{rng.randint(1, 900) / 1000:.3f}')
        return [line], level
    if c.kind == "klog":
        letter = {"info": "I", "debug": "I", "warn": "W", "error": "E"}[level]
        level = "info" if level == "debug" else level
        stamp = t.strftime("%m%d %H:%M:%S.%f")
        pod = f"{rng.choice(['web', 'api', 'db'])}-{rng.randint(0, 9)}"
        text = {"I": f'"Successfully bound pod to node" pod="default/{pod}" node="node{rng.randint(1, 3)}"',
                "W": f'"Unable to schedule pod; no fit" pod="default/{pod}"',
                "E": f'"Error scheduling pod" err="node(s) had taints" pod="default/{pod}"'}[letter]
        return [f"{letter}{stamp}       1 schedule_one.go:{rng.randint(80, 300)}] {text}"], level
    if c.kind == "python":
        stamp = t.strftime("%Y-%m-%d %H:%M:%S,") + f"{t.microsecond // 1000:03d}"
        text = {"info": f"posted entry {rng.randint(1, 10**6)} to account {rng.randint(100, 999)}",
                "debug": f"balance recomputed in {rng.randint(1, 50)} ms",
                "warn": f"retrying commit, attempt {rng.randint(2, 5)}",
                "error": f"commit failed for batch {rng.randint(1, 500)}"}[level]
        return [f"{stamp} - ledger.core - {level.upper().replace('WARN', 'WARNING')} - {text}"], level
    # java, with a stack trace on errors
    stamp = t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}"
    thread = f"http-nio-8080-exec-{rng.randint(1, 10)}"
    if level == "error":
        return [
            f"{stamp} [{thread}] ERROR c.e.payments.PaymentService - charge failed for card ending {rng.randint(1000, 9999)}",
            "java.lang.IllegalStateException: gateway timeout",
            "\tat com.example.payments.Gateway.charge(Gateway.java:87)",
            "\tat com.example.payments.PaymentService.pay(PaymentService.java:42)",
            "\tat java.base/java.lang.Thread.run(Thread.java:840)",
        ], level
    text = {"info": f"charged {rng.randint(1, 500)}.00 EUR", "debug": "token refreshed",
            "warn": f"gateway latency {rng.randint(800, 4000)} ms"}[level]
    return [f"{stamp} [{thread}] {level.upper()} c.e.payments.PaymentService - {text}"], level


TAIL_SHARE = 0.1
_TAIL_VERBS = ["loaded", "evicted", "rejected", "scheduled", "flushed", "rotated", "synced",
               "compacted", "expired", "resolved", "throttled", "migrated", "indexed", "skipped"]
_TAIL_NOUNS = ["segment", "session", "token", "lease", "snapshot", "shard", "replica", "job",
               "webhook", "certificate", "quota", "bucket", "cursor", "manifest", "plugin"]
_TAIL_WORDS = ["for", "after", "during", "because", "while", "before", "via", "from", "into"]
_TAIL_REASONS = ["backpressure", "timeout", "upgrade", "drain", "rebalance", "config change",
                 "gc pause", "retry budget", "cold start", "leader election", "disk pressure"]


def tail_template(k: int) -> str:
    """The ``k``-th long-tail template: a deterministic sentence with ``{}`` slots."""
    r = random.Random(k * 7919 + 17)
    words = [r.choice(_TAIL_VERBS), r.choice(_TAIL_NOUNS), "{}", r.choice(_TAIL_WORDS),
             r.choice(_TAIL_REASONS)]
    if r.random() < 0.5:
        words += [r.choice(["took", "size", "attempt", "shard"]) + "={}"]
    if r.random() < 0.3:
        words.insert(0, r.choice(["cache", "scheduler", "raft", "gc", "tls", "dns"]) + ":")
    return " ".join(words)


def entry_for(c: Container, rng: random.Random, t: datetime, i: int, *, tail_templates: int = 0,
              line_bytes: int | None = None) -> tuple[list[str], str]:
    """One entry as ``_message`` makes it, optionally replaced by a long-tail template
    (``tail_templates``) and padded to about ``line_bytes`` characters. With both off, the
    random stream is exactly ``_message``'s (same output for the same seed)."""
    entry, level = _message(c, rng, t, i)
    if tail_templates > 0 and len(entry) == 1 and c.kind in ("json", "python") \
            and rng.random() < TAIL_SHARE:
        k = min(int(rng.paretovariate(1.1)) - 1, tail_templates - 1)
        text = tail_template(k).format(*(rng.randint(1, 10**6) for _ in range(2)))
        if c.kind == "json":
            obj = orjson.loads(entry[0])
            obj["msg"] = text
            entry = [orjson.dumps(obj).decode()]
        else:
            head = entry[0].rsplit(" - ", 1)[0]
            entry = [f"{head} - {text}"]
    if line_bytes and len(entry) == 1 and len(entry[0]) < line_bytes:
        pad = line_bytes - len(entry[0])
        if c.kind == "json":
            obj = orjson.loads(entry[0])
            obj["payload"] = "x" * max(0, pad - 14)
            entry = [orjson.dumps(obj).decode()]
        else:
            entry = [entry[0] + " payload=" + "x" * max(0, pad - 9)]
    return entry, level


def generate(
    root: str | Path,
    lines: int = 2000,
    *,
    seed: int = 42,
    containers: tuple[Container, ...] = DEFAULT_CONTAINERS,
    start: datetime | None = None,
    fmt: str = "docker",
    bad_lines: bool = False,
    tail_templates: int = 0,
    line_bytes: int | None = None,
    entries_per_second: float | None = None,
) -> Generated:
    """Write about ``lines`` runtime lines over the containers. With ``bad_lines``, add one of
    each bad input (not JSON, invalid UTF-8, empty, a 1 MiB line) to the first file.

    ``tail_templates`` > 0 adds a long tail of that many rare templates (about
    ``TAIL_SHARE`` of the entries, Zipf-distributed over the tail); ``line_bytes`` pads each
    single-line entry to about that many characters. Both default to off, which writes
    exactly what earlier versions wrote for the same seed.

    Event time advances 1-400 ms between entries (about 5 entries/s over all containers), or
    ``entries_per_second`` on average when given: the density that decides how many lines a
    window holds, so how often windows close and models score per line."""
    rng = random.Random(seed)
    root = Path(root)
    out_dir = root / "containers"
    out_dir.mkdir(parents=True, exist_ok=True)
    t = start or datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    gen = Generated(root)
    handles = {c: open(out_dir / c.file_name(), "ab") for c in containers}  # noqa: SIM115
    gen.files = [out_dir / c.file_name() for c in containers]
    try:
        i = 0
        while gen.lines < lines:
            c = containers[rng.randrange(len(containers))]
            if entries_per_second is None:
                t += timedelta(milliseconds=rng.randint(1, 400))
            else:
                t += timedelta(microseconds=rng.randint(0, round(2e6 / entries_per_second)))
            entry, level = entry_for(c, rng, t, i, tail_templates=tail_templates,
                                     line_bytes=line_bytes)
            stream = "stderr" if level in ("error", "warn") else "stdout"
            for text in entry:
                handles[c].write(_frame(text.encode(), stream, t, fmt))
            n_events = 2 if len(entry) > 1 else 1  # header + merged trace
            gen.lines += len(entry)
            gen.events += n_events
            gen.by_namespace[c.namespace] += n_events
            gen.by_level[level] += n_events
            i += 1
        if bad_lines:
            c = containers[0]
            fh = handles[c]
            fh.write(b'{"log":"this is not json\n')  # not valid JSON
            fh.write(_frame(b"", "stdout", t, fmt))  # empty line
            fh.write(_frame(b"bad utf-8: \xff\xfe here", "stdout", t, fmt))
            fh.write(_frame(b"x" * (1024 * 1024), "stdout", t, fmt))
            gen.lines += 4
            gen.events += 4
            gen.by_namespace[c.namespace] += 4
    finally:
        for fh in handles.values():
            fh.close()
    return gen


def _frame(text: bytes, stream: str, t: datetime, fmt: str) -> bytes:
    stamp = t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    if fmt == "cri":
        return f"{stamp} {stream} F ".encode() + text + b"\n"
    if fmt == "plain":
        return text + b"\n"
    try:
        log = text.decode("utf-8") + "\n"
    except UnicodeDecodeError:
        return _docker_invalid(text, stream, stamp)
    return orjson.dumps({"log": log, "stream": stream, "time": stamp}, option=orjson.OPT_APPEND_NEWLINE)


def _docker_invalid(text: bytes, stream: str, stamp: str) -> bytes:
    # Docker writes invalid UTF-8 through Go's JSON encoder as U+FFFD; emulate the raw bytes a
    # broken writer could leave instead, which the collector must survive.
    return b'{"log":"' + text + b'\\n","stream":"' + stream.encode() + b'","time":"' + stamp.encode() + b'"}\n'
