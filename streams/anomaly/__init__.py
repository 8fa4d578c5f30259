"""Anomaly detection over closed windows: rates, novelty, latency and scikit-learn count models.

A pipeline declares its detectors in plain Python, e.g.::

    detectors = [RateDetector(), NoveltyDetector(), LatencyDetector(),
                 IsolationForestDetector(warmup_windows=60), PCADetector()]
    scorer = DetectorSet(detectors)            # or DetectorSet.from_config([{"type": "rate"}])
    anomalies = scorer.process([cw.doc for cw in aggregator.close_ready()])

Owns the detectors; imports transport only (the window stage composes them, never the reverse).
"""

from streams.anomaly.alerts import AlertBook
from streams.anomaly.base import Detector, anomaly_doc, series_id
from streams.anomaly.detectors import DETECTOR_TYPES, DetectorSet, default_detectors
from streams.anomaly.errors import ErrorDetector
from streams.anomaly.latency import LatencyDetector
from streams.anomaly.models import CountModelDetector, IsolationForestDetector, PCADetector
from streams.anomaly.novelty import NoveltyDetector
from streams.anomaly.rate import RateDetector
from streams.anomaly.scoring import Scorer

__all__ = [
    "DETECTOR_TYPES",
    "AlertBook",
    "CountModelDetector",
    "Detector",
    "DetectorSet",
    "ErrorDetector",
    "IsolationForestDetector",
    "LatencyDetector",
    "NoveltyDetector",
    "PCADetector",
    "RateDetector",
    "Scorer",
    "anomaly_doc",
    "default_detectors",
    "series_id",
]
