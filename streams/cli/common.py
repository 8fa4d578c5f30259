"""Arguments and helpers shared by commands."""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING

from streams.cli import CliError
from streams.ops.config import Settings

if TYPE_CHECKING:  # imported when a pipeline is loaded: the collector needs none by default
    from streams.pipeline import Pipeline


def add_connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kafka", help="Kafka bootstrap servers (env LOGRIVER_KAFKA, default 127.0.0.1:$LOGRIVER_KAFKA_PORT or 9092)")
    p.add_argument("--es-url", help="Elasticsearch URL (env LOGRIVER_ES_URL, default http://127.0.0.1:$LOGRIVER_ES_PORT or 9200)")
    p.add_argument("--topic-prefix", help="prefix for topic names (env LOGRIVER_TOPIC_PREFIX)")
    p.add_argument("--index-prefix", help="prefix for index names (env LOGRIVER_INDEX_PREFIX, default logriver)")


def settings_from(args: argparse.Namespace) -> Settings:
    s = Settings()
    overrides = {
        "kafka_bootstrap": getattr(args, "kafka", None),
        "es_url": getattr(args, "es_url", None),
        "topic_prefix": getattr(args, "topic_prefix", None),
        "index_prefix": getattr(args, "index_prefix", None),
    }
    return dataclasses.replace(s, **{k: v for k, v in overrides.items() if v is not None})


def load_or_fail(spec: str) -> Pipeline:
    from streams.pipeline import PipelineNotFound, load_pipeline

    try:
        return load_pipeline(spec)
    except PipelineNotFound as exc:
        raise CliError(str(exc)) from None
