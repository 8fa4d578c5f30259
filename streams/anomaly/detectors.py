"""DetectorSet: runs a pipeline's detectors over closed-window documents, window by window."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from typing import Any

from threadpoolctl import threadpool_limits

from streams.anomaly.base import Detector, Doc, series_id
from streams.anomaly.errors import ErrorDetector
from streams.anomaly.latency import LatencyDetector
from streams.anomaly.models import IsolationForestDetector, PCADetector
from streams.anomaly.novelty import NoveltyDetector
from streams.anomaly.rate import RateDetector
from streams.transport.events import format_time_us, parse_time_us

DETECTOR_TYPES: dict[str, type[Detector]] = {
    "rate": RateDetector,
    "errors": ErrorDetector,
    "novelty": NoveltyDetector,
    "latency": LatencyDetector,
    "isolation_forest": IsolationForestDetector,
    "pca": PCADetector,
}

_ZERO_FIELDS = ("count", "error_count", "bytes", "http_5xx", "distinct_templates", "new_templates")


@cache
def limit_blas_threads() -> None:
    """Run BLAS (numpy, scikit-learn) on one thread in this process, once.

    A worker's parallelism is its partitions; the models are small (hundreds of rows and
    features), and OpenBLAS threads spinning beside Kafka, Elasticsearch and the other worker
    on the same cores made each fit and covariance 10-20x slower (measured: PCA training
    37 ms -> 1.8 ms per fit on 2 busy cores). ``LOGRIVER_BLAS_THREADS`` overrides the count.
    """
    threadpool_limits(int(os.environ.get("LOGRIVER_BLAS_THREADS") or 1), user_api="blas")


def default_detectors(windows: tuple[str, ...] | None = None) -> list[Detector]:
    """The default set: MAD rates (volume), error ratios, novelty, latency and the PCA
    count model.

    IsolationForest (``IsolationForestDetector``) is not in it: on the incident scenarios it
    found nothing the others missed and raised the only false alarms, on BGL nothing, and
    its retraining (scikit-learn's per-tree set-up) was most of the worker's CPU on a
    backfill (``benchmarks/results/anomaly.md``). Add it to a pipeline's detectors to use it.
    """
    return [
        RateDetector(windows=windows),
        ErrorDetector(windows=windows),
        NoveltyDetector(windows=windows),
        LatencyDetector(windows=windows),
        PCADetector(windows=windows),
    ]


def _synthetic(last: Doc, start_us: int, size_us: int) -> Doc:
    """A zero-count document for a series that produced nothing in window ``start_us``."""
    doc = {k: v for k, v in last.items() if k not in _ZERO_FIELDS}
    start, end = format_time_us(start_us), format_time_us(start_us + size_us)
    doc.update({f: 0 for f in _ZERO_FIELDS})
    doc.update({
        "@timestamp": start, "window": {**last["window"], "start": start, "end": end},
        "error_ratio": 0.0, "latency_ms": None, "template_counts": [],
        "error_template_counts": [], "breakdown": [], "templates_truncated": False,
        "logriver": {**(last.get("logriver") or {}), "synthetic": True},
    })
    return doc


class DetectorSet:
    """Detectors of one pipeline plus the series bookkeeping they share.

    ``process(docs)`` takes closed-window metrics documents (all keys of a window should come
    in the same call, as :meth:`WindowAggregator.close_ready` returns them), feeds the
    detectors one (window name, start) at a time in time order, and returns their anomaly
    documents. With ``fill_missing``, a series seen in the last ``expire_after`` windows but
    absent from a window gets a zero-count document (``logriver.synthetic``), so lost
    traffic and crash loops are seen as drops rather than as silence.
    """

    def __init__(self, detectors: Sequence[Detector], fill_missing: bool = True,
                 expire_after: int = 30) -> None:
        names = [d.name for d in detectors]
        if len(set(names)) != len(names):
            raise ValueError(f"detector names must be unique: {names}")
        self.detectors = list(detectors)
        limit_blas_threads()
        self.fill_missing = fill_missing
        self.expire_after = expire_after
        self.last_start: dict[str, int] = {}  # window name -> last processed start (µs)
        self.series: dict[str, dict[str, tuple[int, Doc]]] = {}  # window -> sid -> (start, doc)

    @classmethod
    def from_config(cls, config: Sequence[Detector | Mapping[str, Any]], **kw: Any) -> DetectorSet:
        """Build from detector instances (each copied) or mappings ``{"type": "rate", **params}``.

        Types: ``rate``, ``errors``, ``novelty``, ``latency``, ``isolation_forest``, ``pca``.
        """
        dets = []
        for c in config:
            if isinstance(c, Detector):
                # a copy: the pipeline module holds one instance, while every window stage
                # (one per partition, one per run) needs detectors with their own state
                dets.append(copy.deepcopy(c))
                continue
            params = dict(c)
            kind = params.pop("type")
            if kind not in DETECTOR_TYPES:
                raise ValueError(f"unknown detector type {kind!r}; known: {sorted(DETECTOR_TYPES)}")
            dets.append(DETECTOR_TYPES[kind](**params))
        return cls(dets, **kw)

    def process(self, docs: Sequence[Doc]) -> list[Doc]:
        """Anomaly documents raised by the detectors over ``docs``."""
        return [f for *_, found in self.windows(docs) for f in found]

    def windows(self, docs: Sequence[Doc]) -> Iterator[tuple[str, int, int, list[Doc], list[Doc]]]:
        """Score ``docs`` one (window name, start) at a time, in the order their windows end
        (the order in which they become final), with synthetic zero documents for series
        that fell silent; yields (window name, start µs, end µs, the window's documents,
        findings)."""
        groups: dict[tuple[int, str, int], list[Doc]] = {}
        for d in docs:
            w = d["window"]
            start = parse_time_us(w["start"])
            groups.setdefault((start + round(w["size_seconds"] * 1e6), w["name"], start),
                              []).append(d)
        for _, name, start in sorted(groups):
            batch = groups[(_, name, start)]
            w = batch[0]["window"]
            step, size = round(w["step_seconds"] * 1e6), round(w["size_seconds"] * 1e6)
            last = self.last_start.get(name)
            if self.fill_missing and last is not None and start > last:
                gap = range(max(last + step, start - self.expire_after * step), start, step)
                for s in gap:
                    yield (name, s, s + size, *self._run(name, s, step, size, []))
            yield (name, start, start + size, *self._run(name, start, step, size, batch))

    def _run(self, name: str, start: int, step: int, size: int,
             batch: list[Doc]) -> tuple[list[Doc], list[Doc]]:
        series = self.series.setdefault(name, {})
        last = self.last_start.get(name)
        if last is None or start > last:
            self.last_start[name] = start
            if self.fill_missing:
                present = {series_id(d) for d in batch}
                for sid, (seen, doc) in sorted(series.items()):
                    if seen < start - self.expire_after * step:
                        del series[sid]
                    elif sid not in present:
                        batch = batch + [_synthetic(doc, start, size)]
        for d in batch:
            if not (d.get("logriver") or {}).get("synthetic"):
                series[series_id(d)] = (start, d)
        out: list[Doc] = []
        for det in self.detectors:
            out.extend(det.process_window(batch))
        return batch, out

    def snapshot(self) -> dict[str, Any]:
        return {
            "last_start": dict(self.last_start),
            "series": {n: {s: [st, d] for s, (st, d) in ss.items()} for n, ss in self.series.items()},
            "detectors": {d.name: d.snapshot() for d in self.detectors},
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.last_start = dict(state["last_start"])
        self.series = {n: {s: (st, d) for s, (st, d) in ss.items()}
                       for n, ss in state["series"].items()}
        for d in self.detectors:
            d.restore(state["detectors"][d.name])
