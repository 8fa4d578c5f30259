"""The service an event belongs to, from its Kubernetes metadata: what windows and detectors
group by, so five services in one namespace are five series.

``service.name`` is, in order (as OpenTelemetry infers ``service.name`` on Kubernetes):

1. the pod label ``app.kubernetes.io/name`` (de-dotted by the collector:
   ``app_kubernetes_io/name``), else the label ``app``;
2. the pod's owner: its name without what the controller appended, e.g. a Deployment's
   ``checkout-7d9f8b6c5-x2x4z`` -> ``checkout`` (ReplicaSet pod-template hash + random
   suffix), a StatefulSet's ``ledger-0`` -> ``ledger``, a DaemonSet's or Job's
   ``fluent-bit-x7k2p`` -> ``fluent-bit``, a CronJob's ``backup-28439520-wq7bd`` -> ``backup``;
   a pod name that matches none of these (a static pod) is its own owner;
3. the container name, when the record names no pod.

The owner comes from the name alone (the node agent works without API access): a
controller's suffix uses Kubernetes' safe alphabet (consonants and the digits 2, 4-9), so
words rarely look like one. A rolling deploy (new pod names) or a restart keeps the service.

An event without Kubernetes metadata keeps what it has. When the application declared
another ``service.name`` in its own fields, the Kubernetes identity wins (it is what the
windows need to be stable) and the declared name is kept as ``attributes.service``.
"""

from __future__ import annotations

import re
from typing import Any

from streams.pipeline import Event, Step

_SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
# Deployment: <name>-<pod-template hash: safe alphabet, or decimal in old clusters>-<5>
_DEPLOYMENT = re.compile(rf"^(?P<owner>.+?)-(?:{_SAFE}{{6,10}}|[0-9]{{6,10}})-[a-z0-9]{{5}}$")
# CronJob: <name>-<scheduled minute (8+ digits)>-<5>
_CRONJOB = re.compile(rf"^(?P<owner>.+?)-[0-9]{{8,}}-{_SAFE}{{5}}$")
# DaemonSet, Job, bare ReplicaSet: <name>-<5 safe characters>
_SUFFIXED = re.compile(rf"^(?P<owner>.+?)-{_SAFE}{{5}}$")
# StatefulSet: <name>-<ordinal>
_ORDINAL = re.compile(r"^(?P<owner>.+?)-(?:0|[1-9][0-9]{0,4})$")
_LABELS = ("app_kubernetes_io/name", "app.kubernetes.io/name", "app")


def owner_name(pod: str) -> str:
    """The controller that owns a pod, from the pod's name (the name itself if none fits)."""
    for pattern in (_CRONJOB, _DEPLOYMENT, _SUFFIXED, _ORDINAL):
        m = pattern.match(pod)
        if m and _has_letter_or_digit(m["owner"]):
            return m["owner"]
    return pod


def _has_letter_or_digit(name: str) -> bool:
    return any(ch.isalnum() for ch in name)


def kubernetes_service(k8s: Any) -> str | None:
    """The service name of Kubernetes metadata (``event["kubernetes"]``), None without any."""
    if not isinstance(k8s, dict):
        return None
    labels = k8s.get("labels")
    if isinstance(labels, dict):
        for key in _LABELS:
            value = labels.get(key)
            if isinstance(value, str) and value:
                return value
    pod = k8s.get("pod")
    name = pod.get("name") if isinstance(pod, dict) else None
    if isinstance(name, str) and name:
        return owner_name(name)
    container = k8s.get("container")
    name = container.get("name") if isinstance(container, dict) else None
    return name if isinstance(name, str) and name else None


def set_service(event: Event) -> Event:
    """The step's function: set ``service.name`` from the event's Kubernetes metadata."""
    name = kubernetes_service(event.get("kubernetes"))
    if name is None:
        return event
    service = event.get("service")
    if not isinstance(service, dict):
        event["service"] = {"name": name}
        return event
    declared = service.get("name")
    if declared is not None and declared != name:
        attributes = event.get("attributes")
        attributes = dict(attributes) if isinstance(attributes, dict) else {}
        attributes.setdefault("service", declared)
        event["attributes"] = attributes
    event["service"] = {**service, "name": name}  # (the record's dict may be shared)
    return event


def service_step() -> Step:
    """``Step("service", ...)``: add it to a pipeline's steps to window per service."""
    return Step("service", set_service)
