"""Logriver's engine. A pipeline module (``pipelines/``) imports its public API from here:
``Pipeline`` and ``Step`` (``streams.pipeline``), with the stages it configures.

The folders follow the data flow, one package per stage or concern:

- ``sources/``   collect: the node agent's file tailer, receivers for the Docker log drivers,
                 the Python logging handler, Kubernetes metadata
- ``framing/``   container framing (docker json-file, CRI, partial lines) and multiline merging
- ``transport/`` Kafka (client, topics), the raw record format, dead letters, changelog state
- ``parse/``     one line to ECS fields: format detection, layouts, timestamps, levels, dissect
- ``templates/`` online template mining: masking, clustering (the miner), identity, the store
- ``steps/``     built-in enrichment steps (redaction)
- ``sinks/``     Elasticsearch and the worker's outputs
- ``windows/``   event-time windows: specs, aggregates, the stage, the window agent, its input rows
- ``anomaly/``   detectors over closed windows
- ``worker/``    the Faust worker: app assembly and the structure agent
- ``replay/``    the same pipeline in-process, without Kafka or Elasticsearch
- ``ops/``       settings, credentials, metrics and health, log filtering, process tuning
- ``views/``     search queries, the live console, the HTML report
- ``cli/``       the ``logriver`` command; ``services/`` the local Kafka and Elasticsearch;
                 ``demo/`` the demo's generator and chain drivers

Dependencies point down this list's data flow; ``tests/unit/test_layering.py`` enforces it.
"""

from typing import Any

__all__ = ["Pipeline", "PipelineNotFound", "Step", "load_pipeline"]


def __getattr__(name: str) -> Any:
    # Lazy: a collector imports ``streams.sources`` and should not load parsing and mining.
    if name in __all__:
        from streams import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'streams' has no attribute {name!r}")
