"""The kubernetes pipeline with eager detectors (one warm-up window), so that a short
integration run also publishes alerts for the topic contract test."""

import dataclasses

from pipelines.kubernetes import pipeline as kubernetes
from streams.anomaly import NoveltyDetector, RateDetector

pipeline = dataclasses.replace(
    kubernetes,
    detectors=[NoveltyDetector(warmup_windows=1, min_new_count=1),
               RateDetector(min_history=2, spike_fields=("count", "error_count"))],
    warmup_windows=1,
)
