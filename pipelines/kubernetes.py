"""The default pipeline: container logs of a Kubernetes cluster.

Reads the raw topic the node agent fills, detects each line's format (JSON, logfmt, klog,
access logs, syslog, common text layouts), maps it to ECS-style fields, mines a template per
line, and indexes the events into Elasticsearch (``logriver-events-kubernetes-YYYY.MM.DD``)
while publishing them on ``logs.structured``.

Run it: ``logriver run kubernetes`` (Faust worker) or try it in-process:
``logriver replay FILE --pipeline kubernetes`` / ``... | logriver parse --pipeline kubernetes``.
"""

from streams.parse import Parser
from streams.pipeline import Pipeline

pipeline = Pipeline(
    name="kubernetes",
    source_topic="logs.raw",
    parser=Parser(),  # format detected per line; no header pattern
    mine_templates=True,
    max_templates=10_000,
    partitions=4,
)
