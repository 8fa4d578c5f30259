"""Logriver's own monitoring: a Prometheus ``/metrics`` endpoint and a ``/health`` check.

The hot path only bumps the plain counters of ``streams.ops.stats.WorkerStats``; ``StatsCollector``
turns them into metric families when Prometheus scrapes (a dedicated ``CollectorRegistry`` per
process, never the global one). Workers and collectors use the same server:
``start_metrics_server(stats, port=9464)``; a collector passes ``WorkerStats(role="collector")``
and its tailer and receivers as ``sources`` (their own counters are read at scrape time).

Exposed (every family carries ``pipeline`` and ``role`` labels):

- ``logriver_lines_in_total`` / ``logriver_lines_out_total`` {stage}
- ``logriver_errors_total`` / ``logriver_dead_letters_total`` {stage, reason}
- ``logriver_consumer_lag`` / ``logriver_consumer_offset`` {topic, partition},
  ``logriver_consumer_lag_sum``, ``logriver_partition_records_in_total`` {topic, partition}
- ``logriver_bulk_seconds`` histogram (and ``logriver_bulk_recent_seconds`` {quantile} over the
  last 512 bulks), ``logriver_window_lateness_seconds`` histogram (and ``..._recent_seconds``),
  ``logriver_late_events_total``
- ``logriver_model_info`` {detector, version}
- ``logriver_elasticsearch_up``, ``logriver_kafka_up``, ``logriver_degraded``,
  ``logriver_uptime_seconds``, ``logriver_last_progress_timestamp_seconds``
- log-derived, from the latest closed window per (window, namespace) in
  ``stats.recent_windows``: ``logriver_namespace_error_ratio``, ``logriver_namespace_events``,
  ``logriver_namespace_errors`` {window, namespace}, so alert rules can fire on logs
- the process collector's ``process_*`` families (memory, CPU, open files)

``/health`` answers ``stats.health()`` as JSON, HTTP 200 when ``ok`` and 503 when ``degraded``
(Elasticsearch or Kafka unreachable, consumer lag without progress).
"""

from __future__ import annotations

import bisect
import json
import logging
import selectors
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from streams.ops.stats import WorkerStats

log = logging.getLogger(__name__)

DEFAULT_PORT = 9464
BULK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LATENESS_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
QUANTILES = (0.5, 0.9, 0.99)


class HistogramDeque(deque):
    """A bounded deque of recent samples (what ``WorkerStats`` keeps) that also counts every
    sample ever appended into cumulative histogram buckets: ``append`` stays O(log buckets)."""

    def __init__(self, iterable: Iterable[float] = (), maxlen: int | None = 512,
                 buckets: tuple[float, ...] = BULK_BUCKETS) -> None:
        super().__init__((), maxlen)
        self.buckets = tuple(sorted(buckets))
        self.counts = [0] * (len(self.buckets) + 1)  # last: +Inf only
        self.sum = 0.0
        self.count = 0
        for value in iterable:
            self.append(value)

    def append(self, value: float) -> None:  # type: ignore[override]
        super().append(value)
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        out, running = [], 0
        for bound, n in zip(self.buckets, self.counts):
            running += n
            out.append((_fmt_bound(bound), running))
        out.append(("+Inf", running + self.counts[-1]))
        return out


def _fmt_bound(b: float) -> str:
    return repr(float(b))


def instrument(stats: WorkerStats) -> WorkerStats:
    """Give ``stats`` histogram-counting deques for bulk latency and window lateness (keeps
    the samples already there). Call it before the worker binds ``stats.bulk_seconds.append``;
    ``start_metrics_server`` does it."""
    if not isinstance(stats.bulk_seconds, HistogramDeque):
        stats.bulk_seconds = HistogramDeque(stats.bulk_seconds, stats.bulk_seconds.maxlen,
                                            BULK_BUCKETS)
    if not isinstance(stats.window_lateness_seconds, HistogramDeque):
        stats.window_lateness_seconds = HistogramDeque(
            stats.window_lateness_seconds, stats.window_lateness_seconds.maxlen, LATENESS_BUCKETS
        )
    return stats


def _snapshot(obj: Any) -> Any:
    """A copy of a dict/Counter/deque the event loop may be changing (the server runs in a
    thread): the C-level copies are atomic under the GIL; retry if one was not."""
    for _ in range(5):
        try:
            return dict(obj) if isinstance(obj, dict) else list(obj)
        except RuntimeError:
            continue
    return {} if isinstance(obj, dict) else []


def _quantiles(values: list[float]) -> list[tuple[float, float]]:
    if not values:
        return []
    ordered = sorted(values)
    return [(q, ordered[min(len(ordered) - 1, int(q * len(ordered)))]) for q in QUANTILES]


class StatsCollector(Collector):
    """Metric families from a ``WorkerStats`` (and optional sources: a ``FileTailer`` and
    receivers, whose own counters are read at scrape time)."""

    def __init__(self, stats: WorkerStats, sources: Iterable[Any] = (),
                 stall_seconds: float = 120.0) -> None:
        self.stats = stats
        self.sources = list(sources)
        self.stall_seconds = stall_seconds

    def describe(self) -> Iterable[Metric]:
        return []  # families depend on what the stats hold: register without describing

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        base = {"pipeline": s.pipeline, "role": s.role}
        names, values = list(base), list(base.values())

        def counter(name: str, doc: str, extra: list[str], data: dict[tuple, float]) -> Metric:
            fam = CounterMetricFamily(name, doc, labels=names + extra)
            for key, v in sorted(data.items(), key=lambda kv: [str(k) for k in kv[0]]):
                fam.add_metric(values + [str(k) for k in key], v)
            return fam

        def gauge(name: str, doc: str, extra: list[str] | None = None,
                  data: dict[tuple, float] | None = None, value: float | None = None) -> Metric:
            fam = GaugeMetricFamily(name, doc, labels=names + (extra or []))
            if data is not None:
                for key, v in sorted(data.items(), key=lambda kv: [str(k) for k in kv[0]]):
                    fam.add_metric(values + [str(k) for k in key], v)
            if value is not None:
                fam.add_metric(values, value)
            return fam

        lines_in = Counter(_snapshot(s.lines_in))
        lines_out = Counter(_snapshot(s.lines_out))
        errors = Counter(_snapshot(s.errors))
        skipped: Counter = Counter()
        for source in self.sources:
            _add_source(source, lines_in, lines_out, errors)
            skipped.update(_snapshot(getattr(source, "skipped", {})))

        yield counter("logriver_lines_in", "Lines (records) entering a stage.", ["stage"],
                      {(k,): v for k, v in lines_in.items()})
        yield counter("logriver_lines_out", "Lines (events) leaving a stage.", ["stage"],
                      {(k,): v for k, v in lines_out.items()})
        yield counter("logriver_errors", "Errors by stage and reason.", ["stage", "reason"],
                      {_pair(k): v for k, v in errors.items()})
        yield counter("logriver_files_skipped",
                      "Files the collector matched but does not read, by reason (compressed "
                      "rotations, files being written by the rotator).", ["reason"],
                      {(k,): v for k, v in skipped.items()})
        yield counter("logriver_dead_letters", "Dead letters by stage and reason.",
                      ["stage", "reason"],
                      {_pair(k): v for k, v in _snapshot(s.dead_letters).items()})

        parts = _snapshot(s.partitions)
        lag = {(t, str(p)): ps.lag for (t, p), ps in parts.items() if ps.lag is not None}
        yield gauge("logriver_consumer_lag", "Messages behind the end of the partition.",
                    ["topic", "partition"], lag)
        yield gauge("logriver_consumer_lag_sum", "Consumer lag over every partition.",
                    value=float(sum(lag.values())))
        yield gauge("logriver_consumer_offset", "Last offset processed.", ["topic", "partition"],
                    {(t, str(p)): ps.last_offset for (t, p), ps in parts.items()})
        yield counter("logriver_partition_records_in", "Records read per partition.",
                      ["topic", "partition"],
                      {(t, str(p)): ps.records_in for (t, p), ps in parts.items()})

        yield from self._latency("logriver_bulk_seconds", "Elasticsearch bulk request latency.",
                                 s.bulk_seconds, names, values)
        yield from self._latency("logriver_window_lateness_seconds",
                                 "How late events arrived for their window (event time).",
                                 s.window_lateness_seconds, names, values)
        yield counter("logriver_late_events", "Events later than a window's allowed lateness.",
                      [], {(): s.late_events})

        info = InfoMetricFamily("logriver_model", "Versions of the anomaly models in use.",
                                labels=names + ["detector"])
        for detector, version in sorted(_snapshot(s.model_versions).items()):
            info.add_metric(values + [detector], {"version": str(version)})
        yield info

        health = s.health(stall_seconds=self.stall_seconds)
        yield gauge("logriver_elasticsearch_up", "1 when Elasticsearch answers.",
                    value=1.0 if s.elasticsearch_ok else 0.0)
        yield gauge("logriver_kafka_up", "1 when Kafka answers.", value=1.0 if s.kafka_ok else 0.0)
        yield gauge("logriver_degraded", "1 when /health reports degraded.",
                    value=1.0 if health["status"] != "ok" else 0.0)
        yield gauge("logriver_uptime_seconds", "Seconds since the process started.",
                    value=s.uptime())
        yield gauge("logriver_last_progress_timestamp_seconds",
                    "Unix time of the last processed buffer.", value=s.last_progress)

        ratio, events, errs = namespace_error_rates(_snapshot(s.recent_windows))
        yield gauge("logriver_namespace_error_ratio",
                    "Error share of the latest closed window per namespace (from the logs).",
                    ["window", "namespace"], ratio)
        yield gauge("logriver_namespace_events",
                    "Events in the latest closed window per namespace.", ["window", "namespace"],
                    events)
        yield gauge("logriver_namespace_errors",
                    "Error events in the latest closed window per namespace.",
                    ["window", "namespace"], errs)

    @staticmethod
    def _latency(name: str, doc: str, samples: Any, names: list[str],
                 values: list[str]) -> Iterator[Metric]:
        if isinstance(samples, HistogramDeque):
            hist = HistogramMetricFamily(name, doc, labels=names)
            hist.add_metric(values, samples.cumulative(), samples.sum)
            yield hist
        recent = GaugeMetricFamily(
            name.replace("_seconds", "_recent_seconds"),
            f"{doc} Quantiles over the last samples kept.", labels=names + ["quantile"]
        )
        for q, v in _quantiles(_snapshot(samples)):
            recent.add_metric(values + [str(q)], v)
        yield recent


def _pair(key: Any) -> tuple[str, str]:
    if isinstance(key, tuple) and len(key) == 2:
        return (str(key[0]), str(key[1]))
    return (str(key), "?")


def _add_source(source: Any, lines_in: Counter, lines_out: Counter, errors: Counter) -> None:
    """Counters a tailer (``lines_published``, ``truncated_lines``, ``publish_failures``), a
    receiver (``received``, ``published``, ``errors`` by reason, ``kernel_drops()``) or the
    publisher (``rejected`` by reason: records dead-lettered before sending) keeps on itself."""
    if hasattr(source, "lines_published"):  # FileTailer
        lines_out["collect"] += source.lines_published
        if getattr(source, "truncated_lines", 0):
            errors[("collect", "truncated")] += source.truncated_lines
        if getattr(source, "publish_failures", 0):
            errors[("collect", "publish_failed")] += source.publish_failures
        if getattr(source, "copies_missing", 0):
            errors[("collect", "truncated_without_copy")] += source.copies_missing
        return
    if hasattr(source, "received"):  # Receiver
        stage = f"receive_{getattr(source, 'source_type', 'receiver')}"
        lines_in[stage] += source.received
        lines_out[stage] += getattr(source, "published", 0)
        for reason, n in _snapshot(getattr(source, "errors", {})).items():
            errors[(stage, reason)] += n
        drops = getattr(source, "kernel_drops", None)  # UDP receive buffer overflows
        if callable(drops):
            errors[(stage, "kernel_drop")] += drops()
    rejected = getattr(source, "rejected", None)  # KafkaPublisher: records dead-lettered
    if isinstance(rejected, dict):
        for reason, n in _snapshot(rejected).items():
            errors[("publish", reason)] += n


def namespace_error_rates(
    windows: list[dict[str, Any]],
) -> tuple[dict[tuple, float], dict[tuple, float], dict[tuple, float]]:
    """Per (window name, namespace): error ratio, events and errors of the latest closed
    window (summed over the other key fields, e.g. containers, of that window)."""
    latest: dict[tuple[str, str], str] = {}
    sums: dict[tuple[str, str, str], list[float]] = {}
    for doc in windows:
        if not isinstance(doc, dict):
            continue
        ns = (doc.get("key") or {}).get("kubernetes_namespace")
        win = doc.get("window") or {}
        end = win.get("end")
        if ns is None or end is None:
            continue
        name = str(win.get("name") or f"{win.get('kind', '')}{win.get('size_seconds', '')}")
        k = (name, str(ns))
        if k not in latest or str(end) > latest[k]:
            latest[k] = str(end)
        acc = sums.setdefault((name, str(ns), str(end)), [0.0, 0.0])
        acc[0] += float(doc.get("count") or 0)
        acc[1] += float(doc.get("error_count") or 0)
    ratio, events, errs = {}, {}, {}
    for (name, ns), end in latest.items():
        count, errors = sums[(name, ns, end)]
        events[(name, ns)] = count
        errs[(name, ns)] = errors
        ratio[(name, ns)] = errors / count if count else 0.0
    return ratio, events, errs


def build_registry(stats: WorkerStats, sources: Iterable[Any] = (), *,
                   stall_seconds: float = 120.0, process: bool = True) -> CollectorRegistry:
    """A dedicated registry holding the stats collector (and the process collector)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(stats, sources, stall_seconds))
    if process:
        ProcessCollector(registry=registry)
    return registry


# Connections the server holds at once (beyond: the oldest is closed), how long one may take to
# send its request, and the largest request read.
MAX_HTTP_CONNECTIONS = 256
REQUEST_TIMEOUT = 5.0
MAX_REQUEST_BYTES = 16 * 1024

Responder = Callable[[str], tuple[int, bytes, str]]
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error",
            503: "Service Unavailable"}


class SelectorHTTPServer:
    """A tiny HTTP/1.0 GET server on one thread (``selectors``): every connection costs a
    socket, not a thread; at most ``MAX_HTTP_CONNECTIONS`` are held (the oldest is closed to
    admit a new one) and one that has not sent its request within ``REQUEST_TIMEOUT`` seconds
    is closed. ``respond(path)`` gives (status, body, content type)."""

    def __init__(self, address: tuple[str, int], respond: Responder) -> None:
        self.respond = respond
        self.socket = socket.create_server(address, backlog=128)
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.socket, selectors.EVENT_READ)
        self._conns: dict[socket.socket, tuple[bytearray, float]] = {}
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self.dropped = 0  # connections closed before a request: idle, too many, too large

    def serve_forever(self) -> None:
        try:
            while not self._stop.is_set():
                for key, _ in self._selector.select(timeout=0.25):
                    if key.fileobj is self.socket:
                        self._accept()
                    else:
                        self._read(key.fileobj)  # type: ignore[arg-type]
                now = time.monotonic()
                for conn in [c for c, (_, t) in self._conns.items() if t < now]:
                    self._drop(conn)
        finally:
            self._stopped.set()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if len(self._conns) >= MAX_HTTP_CONNECTIONS:
                self._drop(next(iter(self._conns)))
            conn.setblocking(False)
            self._conns[conn] = (bytearray(), time.monotonic() + REQUEST_TIMEOUT)
            self._selector.register(conn, selectors.EVENT_READ)

    def _read(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        buf = self._conns[conn][0]
        buf += data
        if b"\r\n\r\n" not in buf and b"\n\n" not in buf:
            if len(buf) > MAX_REQUEST_BYTES:
                self._drop(conn)
            return
        self._selector.unregister(conn)
        del self._conns[conn]
        parts = bytes(buf).split(b"\r\n", 1)[0].split()
        if len(parts) >= 2 and parts[0] == b"GET":
            code, body, ctype = self.respond(parts[1].decode("latin-1"))
        else:
            code, body, ctype = 400, b"GET only\n", "text/plain"
        head = (f"HTTP/1.0 {code} {_REASONS.get(code, '')}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        try:
            conn.settimeout(REQUEST_TIMEOUT)
            conn.sendall(head + body)
        except OSError:
            pass
        finally:
            conn.close()

    def _drop(self, conn: socket.socket) -> None:
        self.dropped += 1
        self._conns.pop(conn, None)
        try:
            self._selector.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()

    def shutdown(self) -> None:
        self._stop.set()
        self._stopped.wait(5)

    def server_close(self) -> None:
        for conn in list(self._conns):
            self._drop(conn)
        self._selector.close()
        self.socket.close()


class MetricsServer:
    """``/metrics`` and ``/health`` on a daemon thread; ``port`` is the bound one."""

    def __init__(self, httpd: SelectorHTTPServer, thread: threading.Thread,
                 registry: CollectorRegistry) -> None:
        self.httpd = httpd
        self.thread = thread
        self.registry = registry
        self.host, self.port = httpd.server_address[:2]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(
    stats: WorkerStats,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    sources: Iterable[Any] = (),
    stall_seconds: float = 120.0,
    registry: CollectorRegistry | None = None,
) -> MetricsServer:
    """Serve ``/metrics`` (Prometheus text format) and ``/health`` (JSON, 503 when degraded)
    on ``host:port`` (port 0: any free port; loopback unless told otherwise)."""
    instrument(stats)
    reg = registry or build_registry(stats, sources, stall_seconds=stall_seconds)

    def respond(target: str) -> tuple[int, bytes, str]:
        path = target.split("?", 1)[0]
        if path == "/metrics":
            try:
                return 200, generate_latest(reg), CONTENT_TYPE_LATEST
            except Exception as exc:  # never take the process down for a scrape
                log.exception("metrics: collect failed")
                return (500, f"collect failed: {type(exc).__name__}\n".encode(),
                        "text/plain; charset=utf-8")
        if path in ("/health", "/healthz"):
            health = stats.health(stall_seconds=stall_seconds)
            health["role"] = stats.role
            code = 200 if health["status"] == "ok" else 503
            return code, json.dumps(health).encode(), "application/json"
        return 404, b"not found: try /metrics or /health\n", "text/plain"

    httpd = SelectorHTTPServer((host, port), respond)
    thread = threading.Thread(target=httpd.serve_forever, name="logriver-metrics", daemon=True)
    thread.start()
    server = MetricsServer(httpd, thread, reg)
    log.info("metrics: serving %s/metrics and /health", server.url)
    return server
