"""The ``kubernetes`` pipeline with 8 partitions (scale runs of bench_e2e)."""

import dataclasses

from pipelines.kubernetes import pipeline as _base

pipeline = dataclasses.replace(_base, partitions=8)
