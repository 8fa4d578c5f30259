"""The default pipeline: container logs of a Kubernetes cluster.

Reads the raw topic the node agent fills, detects each line's format (JSON, logfmt, klog,
access logs, syslog, common text layouts), maps it to ECS-style fields, mines a template per
line, names the service each line belongs to (``service.name`` from the pod's
``app.kubernetes.io/name`` or ``app`` label, else its owner: ``checkout-7d9f8b6c5-x2x4z`` ->
``checkout``; see ``streams.steps.service``), and indexes the events into Elasticsearch
(``logriver-events-kubernetes-YYYY.MM.DD``) while publishing them on ``logs.structured``.

Events are counted in one-minute tumbling windows per namespace and service (with the pods
and containers behind each count) and five-minute hopping windows per namespace (with the
services behind each count); closed windows go to ``logs.metrics`` and the ``metrics``
index. The detectors score the per-service windows: five services in one namespace are five
series, and every alert names its service, the pods and the templates that moved
(``logs.anomalies``, ``anomalies`` index; one alert per incident, updated as it goes on).

Run it: ``logriver run kubernetes`` (Faust worker) or try it in-process:
``logriver replay /var/log --pipeline kubernetes --anomalies out.jsonl`` (a node's log tree,
a file or a glob) or ``... | logriver parse --pipeline kubernetes``.
"""

from streams.anomaly import default_detectors
from streams.parse import Parser
from streams.pipeline import Pipeline
from streams.steps.service import service_step
from streams.windows import WindowSpec

PER_SERVICE = WindowSpec("tumbling", size=60, allowed_lateness=120,
                         key_fields=("kubernetes.namespace", "service.name"),
                         influencers=("kubernetes.pod.name", "kubernetes.container.name"))
PER_NAMESPACE = WindowSpec("hopping", size=300, step=60, allowed_lateness=120,
                           key_fields=("kubernetes.namespace",), influencers=("service.name",))

pipeline = Pipeline(
    name="kubernetes",
    source_topic="logs.raw",
    parser=Parser(),  # format detected per line; no header pattern
    mine_templates=True,
    max_templates=10_000,
    steps=[service_step()],
    windows=[PER_SERVICE, PER_NAMESPACE],
    # MAD rates, novelty, latency and PCA count models (streams.anomaly), per service.
    detectors=default_detectors(windows=(PER_SERVICE.name,)),
    warmup_windows=10,
    alert_gap_windows=1,
    partitions=4,
)
