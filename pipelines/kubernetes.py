"""The default pipeline: container logs of a Kubernetes cluster.

Reads the raw topic the node agent fills, detects each line's format (JSON, logfmt, klog,
access logs, syslog, common text layouts), maps it to ECS-style fields, mines a template per
line, and indexes the events into Elasticsearch (``logriver-events-kubernetes-YYYY.MM.DD``)
while publishing them on ``logs.structured``. Events are counted in one-minute tumbling
windows per namespace and container and five-minute hopping windows per namespace; closed
windows go to ``logs.metrics`` and the ``metrics`` index, and the detectors score them
(``logs.anomalies``, ``anomalies`` index).

Run it: ``logriver run kubernetes`` (Faust worker) or try it in-process:
``logriver replay FILE --pipeline kubernetes --anomalies out.jsonl``
or ``... | logriver parse --pipeline kubernetes``.
"""

from streams.anomaly import default_detectors
from streams.parse import Parser
from streams.pipeline import Pipeline
from streams.windows import WindowSpec

pipeline = Pipeline(
    name="kubernetes",
    source_topic="logs.raw",
    parser=Parser(),  # format detected per line; no header pattern
    mine_templates=True,
    max_templates=10_000,
    windows=[
        WindowSpec("tumbling", size=60, allowed_lateness=120,
                   key_fields=("kubernetes.namespace", "kubernetes.container.name")),
        WindowSpec("hopping", size=300, step=60, allowed_lateness=120,
                   key_fields=("kubernetes.namespace",)),
    ],
    # MAD rates, novelty, latency, IsolationForest and PCA count models (streams.anomaly).
    detectors=default_detectors(),
    partitions=4,
)
