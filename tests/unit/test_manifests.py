"""The Kubernetes manifests load, and agree with the code: images, commands, mounts, RBAC."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "kubernetes"
AGENT_COMMAND = [
    "logriver",
    "collect",
    "--root",
    "/var/log",
    "--checkpoint-dir",
    "/var/lib/logriver",
    "--host",
    "$(NODE_NAME)",
    "--k8s-api",
    "--metrics-port",
    "9464",
    "--metrics-host",
    "0.0.0.0",
]
WORKER_COMMAND = ["logriver", "run", "kubernetes", "--metrics-port", "9464", "--metrics-host", "0.0.0.0"]


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def one(kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_every_file_is_listed_in_the_kustomization() -> None:
    kust = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    files = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kust["resources"]) == files
    for d in documents():
        assert d["kind"] in {"Namespace", "ClusterRole", "ClusterRoleBinding"} or (
            d["metadata"]["namespace"] == "logriver"
        )


def test_images_match_the_package_version() -> None:
    for kind, name in (("DaemonSet", "logriver-agent"), ("Deployment", "logriver-worker")):
        [c] = one(kind, name)["spec"]["template"]["spec"]["containers"]
        assert c["image"] == f"ghcr.io/logriver/logriver:{version()}"
        assert c["resources"]["limits"]["memory"] and c["resources"]["limits"]["cpu"]
        assert c["resources"]["requests"]["memory"]


def test_agent_command_and_mounts() -> None:
    ds = one("DaemonSet", "logriver-agent")
    spec = ds["spec"]["template"]["spec"]
    [c] = spec["containers"]
    assert c["command"] == AGENT_COMMAND
    assert (
        ds["spec"]["selector"]["matchLabels"].items()
        <= ds["spec"]["template"]["metadata"]["labels"].items()
    )
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    # symlinks /var/log/containers -> /var/log/pods -> /var/lib/docker/containers must resolve
    for path in ("/var/log/containers", "/var/log/pods", "/var/lib/docker/containers"):
        m = mounts[path]
        assert m.get("readOnly") is True
        assert volumes[m["name"]]["hostPath"]["path"] == path
    checkpoint = mounts["/var/lib/logriver"]
    assert not checkpoint.get("readOnly")
    assert volumes[checkpoint["name"]]["hostPath"]["path"] == "/var/lib/logriver"
    root = AGENT_COMMAND[AGENT_COMMAND.index("--root") + 1]
    assert all(p.startswith(root + "/") for p in ("/var/log/containers", "/var/log/pods"))
    env = {e["name"]: e for e in c["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"


def test_agent_rbac_reads_pods_and_namespaces() -> None:
    sa = one("DaemonSet", "logriver-agent")["spec"]["template"]["spec"]["serviceAccountName"]
    binding = one("ClusterRoleBinding", "logriver-agent")
    assert {"kind": "ServiceAccount", "name": sa, "namespace": "logriver"} in binding["subjects"]
    role = one("ClusterRole", binding["roleRef"]["name"])
    [rule] = role["rules"]
    assert set(rule["resources"]) == {"pods", "namespaces"}
    assert set(rule["verbs"]) == {"get", "list", "watch"}  # read-only


def test_worker_command() -> None:
    dep = one("Deployment", "logriver-worker")
    [c] = dep["spec"]["template"]["spec"]["containers"]
    assert c["command"] == WORKER_COMMAND
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "logriver-worker"


@pytest.mark.parametrize("command", [AGENT_COMMAND, WORKER_COMMAND], ids=["collect", "run"])
def test_commands_parse_with_the_cli(command: list[str]) -> None:
    from streams.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    if command[1] not in sub.choices:  # type: ignore[operator]
        pytest.skip(f"`logriver {command[1]}` is not registered yet")
    args = parser.parse_args(command[1:])
    assert callable(args.func)


def test_metrics_port_is_exposed_where_the_command_serves_it() -> None:
    for kind, name in (("DaemonSet", "logriver-agent"), ("Deployment", "logriver-worker")):
        [c] = one(kind, name)["spec"]["template"]["spec"]["containers"]
        cmd = c["command"]
        port = int(cmd[cmd.index("--metrics-port") + 1])
        assert {"name": "metrics", "containerPort": port} in c["ports"]
        assert cmd[cmd.index("--metrics-host") + 1] == "0.0.0.0"  # reachable by Prometheus
