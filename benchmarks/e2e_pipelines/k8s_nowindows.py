"""The ``kubernetes`` pipeline without windows and detectors: structuring + indexing only
(bench_e2e subtracts its worker CPU from the full pipeline's to get windows + scoring)."""

import dataclasses

from pipelines.kubernetes import pipeline as _base

pipeline = dataclasses.replace(_base, windows=[], detectors=[])
