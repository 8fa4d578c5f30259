"""The Grafana dashboard of Logriver's own metrics, as code.

``python -m streams.ops.grafana [-o deploy/grafana/logriver.json]`` writes it; a
unit test checks the file is up to date and that every panel queries a metric
``streams.ops.metrics`` exposes. Import it in Grafana (Dashboards -> Import) and pick the
Prometheus data source that scrapes the workers' and collectors' ``/metrics``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "logriver.json"
SEL = 'pipeline=~"$pipeline", role=~"$role"'

# (title, unit, [(expr, legend)], kind) per panel, in rows of two.
PANELS: list[tuple[str, str, list[tuple[str, str]], str]] = [
    ("Lines in per stage (/s)", "ops",
     [(f"sum by (stage) (rate(logriver_lines_in_total{{{SEL}}}[$__rate_interval]))", "{{stage}}")],
     "timeseries"),
    ("Lines out per stage (/s)", "ops",
     [(f"sum by (stage) (rate(logriver_lines_out_total{{{SEL}}}[$__rate_interval]))", "{{stage}}")],
     "timeseries"),
    ("Errors by stage and reason (/s)", "ops",
     [(f"sum by (stage, reason) (rate(logriver_errors_total{{{SEL}}}[$__rate_interval]))",
       "{{stage}} {{reason}}")], "timeseries"),
    ("Dead letters by stage and reason (/s)", "ops",
     [(f"sum by (stage, reason) (rate(logriver_dead_letters_total{{{SEL}}}[$__rate_interval]))",
       "{{stage}} {{reason}}")], "timeseries"),
    ("Consumer lag per partition", "short",
     [(f"max by (topic, partition) (logriver_consumer_lag{{{SEL}}})", "{{topic}}/{{partition}}")],
     "timeseries"),
    ("Consumer lag (total) and records read (/s)", "short",
     [(f"sum(logriver_consumer_lag_sum{{{SEL}}})", "lag"),
      (f"sum(rate(logriver_partition_records_in_total{{{SEL}}}[$__rate_interval]))", "records/s")],
     "timeseries"),
    ("Elasticsearch bulk latency", "s",
     [((f"histogram_quantile({q}, sum by (le) (rate(logriver_bulk_seconds_bucket{{{SEL}}}"
        f"[$__rate_interval])))"), f"p{int(q * 100)}") for q in (0.5, 0.9, 0.99)]
     + [(f"max(logriver_bulk_recent_seconds{{{SEL}, quantile=\"0.99\"}})", "p99 recent")],
     "timeseries"),
    ("Window lateness and late events", "s",
     [((f"histogram_quantile(0.99, sum by (le) (rate(logriver_window_lateness_seconds_bucket"
        f"{{{SEL}}}[$__rate_interval])))"), "lateness p99"),
      (f"max(logriver_window_lateness_recent_seconds{{{SEL}, quantile=\"0.5\"}})",
       "lateness p50 recent"),
      (f"sum(rate(logriver_late_events_total{{{SEL}}}[$__rate_interval]))", "late events/s")],
     "timeseries"),
    ("Error ratio per namespace (from the logs)", "percentunit",
     [(f"max by (namespace) (logriver_namespace_error_ratio{{{SEL}}})", "{{namespace}}")],
     "timeseries"),
    ("Events and errors per namespace (latest window)", "short",
     [(f"sum by (namespace) (logriver_namespace_events{{{SEL}}})", "{{namespace}} events"),
      (f"sum by (namespace) (logriver_namespace_errors{{{SEL}}})", "{{namespace}} errors")],
     "timeseries"),
    ("Elasticsearch / Kafka up, degraded", "short",
     [(f"min(logriver_elasticsearch_up{{{SEL}}})", "elasticsearch up"),
      (f"min(logriver_kafka_up{{{SEL}}})", "kafka up"),
      (f"max(logriver_degraded{{{SEL}}})", "degraded")], "stat"),
    ("Model versions", "none",
     [(f"max by (detector, version) (logriver_model_info{{{SEL}}})", "{{detector}} {{version}}")],
     "table"),
    ("Seconds since last progress", "s",
     [(f"time() - max by (pipeline) (logriver_last_progress_timestamp_seconds{{{SEL}}})",
       "{{pipeline}}")], "timeseries"),
    ("Process memory (RSS)", "bytes",
     [("process_resident_memory_bytes", "{{instance}}")], "timeseries"),
]


def _panel(pid: int, title: str, unit: str, targets: list[tuple[str, str]], kind: str) -> dict[str, Any]:
    x = ((pid - 1) % 2) * 12
    y = ((pid - 1) // 2) * 8
    panel: dict[str, Any] = {
        "id": pid,
        "type": kind,
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "expr": expr,
                "legendFormat": legend,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                **({"format": "table", "instant": True} if kind == "table" else {}),
            }
            for i, (expr, legend) in enumerate(targets)
        ],
    }
    return panel


def _var(name: str, metric: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": name,
        "type": "query",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "query": {"query": f"label_values({metric}, {name})", "refId": name},
        "definition": f"label_values({metric}, {name})",
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "refresh": 2,
    }


def build_dashboard() -> dict[str, Any]:
    return {
        "uid": "logriver-self",
        "title": "Logriver",
        "description": "Logriver's own metrics: workers and collectors (streams.ops.metrics).",
        "tags": ["logriver"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "label": "Prometheus", "type": "datasource",
                 "query": "prometheus", "current": {}},
                _var("pipeline", "logriver_uptime_seconds"),
                _var("role", "logriver_uptime_seconds"),
            ]
        },
        "panels": [_panel(i + 1, *p) for i, p in enumerate(PANELS)],
    }


def render() -> str:
    return json.dumps(build_dashboard(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=OUT)
    args = ap.parse_args(argv)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render())
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
