"""service.name from Kubernetes metadata: labels, then the pod's owner, then the container."""

from __future__ import annotations

import pytest

from streams.steps.service import kubernetes_service, owner_name, set_service


@pytest.mark.parametrize(("pod", "owner"), [
    ("checkout-7d9f8b6c5-x2x4z", "checkout"),      # Deployment (ReplicaSet hash + suffix)
    ("payments-api-5f6d8c7b9-k8s7q", "payments-api"),
    ("nginx-deployment-1771418926-7o5ns", "nginx-deployment"),  # old decimal hash
    ("ledger-0", "ledger"),                         # StatefulSet
    ("kafka-broker-12", "kafka-broker"),
    ("fluent-bit-x7k2p", "fluent-bit"),             # DaemonSet / Job
    ("backup-28439520-wq7bd", "backup"),            # CronJob
    ("kube-scheduler-node1", "kube-scheduler-node1"),  # static pod: its own name
    ("web-proxy", "web-proxy"),                     # a word is not a suffix
    ("api", "api"),
])
def test_owner_from_pod_name(pod: str, owner: str) -> None:
    assert owner_name(pod) == owner


def test_labels_win_then_owner_then_container() -> None:
    k8s = {"pod": {"name": "checkout-7d9f8b6c5-x2x4z"}, "container": {"name": "app"},
           "labels": {"app_kubernetes_io/name": "checkout-svc", "app": "shop"}}
    assert kubernetes_service(k8s) == "checkout-svc"
    del k8s["labels"]["app_kubernetes_io/name"]
    assert kubernetes_service(k8s) == "shop"
    del k8s["labels"]
    assert kubernetes_service(k8s) == "checkout"
    del k8s["pod"]
    assert kubernetes_service(k8s) == "app"
    assert kubernetes_service({}) is None and kubernetes_service(None) is None


def test_a_rolling_deploy_keeps_the_service() -> None:
    pods = ["cart-6c8d7f9b4-abcde", "cart-6c8d7f9b4-qwzx2", "cart-8f5d4c7bb-m2n4p"]
    assert {owner_name(p) for p in pods} == {"cart"}


def test_step_sets_service_and_keeps_a_declared_one() -> None:
    ev = {"kubernetes": {"pod": {"name": "ledger-0"}}, "service": {"name": "ledger-api"}}
    record_service = ev["service"]
    out = set_service(ev)
    assert out["service"]["name"] == "ledger"
    assert out["attributes"]["service"] == "ledger-api"  # what the application declared
    assert record_service == {"name": "ledger-api"}  # the record's dict is not changed
    plain = {"message": "no metadata"}
    assert set_service(plain) == {"message": "no metadata"}
