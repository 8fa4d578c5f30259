"""docker-compose.yml cannot run here (no Docker engine): check it against the code instead."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from streams.cli import build_parser
from streams.ops.config import Settings
from streams.pipeline import load_pipeline
from streams.services import elasticsearch as es_service
from streams.services import kafka as kafka_service

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _tag(image: str) -> str:
    return image.rsplit(":", 1)[1]


def test_images_match_the_versions_the_local_services_run(compose):
    s = compose["services"]
    assert s["kafka"]["image"] == f"apache/kafka:{kafka_service.VERSION}"
    assert _tag(s["elasticsearch"]["image"]) == es_service.VERSION
    assert _tag(s["kibana"]["image"]) == es_service.VERSION


def test_kafka_runs_kraft_with_the_listener_the_apps_use(compose):
    env = compose["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    internal = env["KAFKA_ADVERTISED_LISTENERS"].split(",")[0]
    assert internal == "INTERNAL://" + compose["x-logriver"]["environment"]["LOGRIVER_KAFKA"]
    assert int(env["KAFKA_NUM_PARTITIONS"]) == load_pipeline("kubernetes").partitions


def test_ports_match_the_default_settings(compose):
    defaults = Settings(kafka_bootstrap="127.0.0.1:9092", es_url="http://127.0.0.1:9200")
    s = compose["services"]
    assert f"127.0.0.1:{defaults.kafka_bootstrap.rsplit(':', 1)[1]}:9092" in s["kafka"]["ports"]
    assert f"127.0.0.1:{defaults.es_url.rsplit(':', 1)[1]}:9200" in s["elasticsearch"]["ports"]
    assert compose["x-logriver"]["environment"]["LOGRIVER_ES_URL"] == "http://elasticsearch:9200"
    assert compose["x-logriver"]["environment"]["LOGRIVER_INDEX_PREFIX"] == "logriver"


@pytest.mark.parametrize("service", ["setup", "collector", "worker"])
def test_each_logriver_service_runs_a_real_command(compose, service):
    svc = compose["services"][service]
    assert svc["image"].startswith("logriver:") and svc["build"] == "."
    args = build_parser().parse_args(svc["command"])
    assert callable(args.func)
    if args.command == "run":
        assert load_pipeline(args.pipeline).name == "kubernetes"


def test_collector_mounts_the_node_log_root(compose):
    svc = compose["services"]["collector"]
    args = build_parser().parse_args(svc["command"])
    mounts = {v.split(":")[1] for v in svc["volumes"]}
    assert args.root in mounts and args.checkpoint_dir in mounts


def test_dockerfile_entrypoint_is_the_cli():
    text = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["logriver"]' in text
    for pkg in ("streams", "schemas", "pipelines"):
        assert f"COPY {pkg} ./{pkg}" in text
