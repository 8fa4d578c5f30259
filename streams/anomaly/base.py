"""What every detector shares: the anomaly document, series identity, severity, state."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from streams.transport.records import event_id

Doc = dict[str, Any]


def series_id(doc: Doc) -> str:
    """Identity of a metrics series: window name plus its key values."""
    key = doc.get("key") or {}
    return doc["window"]["name"] + "|" + "|".join(f"{k}={key[k]}" for k in sorted(key))


def config_version(kind: str, params: dict[str, Any]) -> str:
    """Version of a parameter-only model: kind + hash of its parameters (stable across runs)."""
    digest = hashlib.sha256(orjson.dumps(params, option=orjson.OPT_SORT_KEYS)).hexdigest()[:10]
    return f"{kind}-{digest}"


def severity_of(score: float, threshold: float) -> str:
    """``critical`` at >= 3x the threshold, ``major`` at >= 1.5x, else ``minor``."""
    ratio = score / threshold if threshold > 0 else float("inf")
    return "critical" if ratio >= 3 else "major" if ratio >= 1.5 else "minor"


def anomaly_doc(
    window: Doc,
    detector: str,
    score: float,
    threshold: float,
    version: str,
    summary: str,
    items: list[dict[str, Any]],
    severity: str | None = None,
) -> Doc:
    """An anomaly event for one closed (window, key).

    ``items``: what drove it, each ``{"name", "expected", "observed"}`` (template items also
    carry ``"kind": "template"`` and the template text when known).
    """
    win = window["window"]
    pipeline = (window.get("logriver") or {}).get("pipeline", "default")
    return {
        "@timestamp": win["start"],
        "window": {"start": win["start"], "end": win["end"], "name": win["name"]},
        "key": dict(window.get("key") or {}),
        "detector": detector,
        "score": round(float(score), 6),
        "threshold": round(float(threshold), 6),
        "model": {"version": version},
        "severity": severity or severity_of(score, threshold),
        "explanation": {"summary": summary, "items": items},
        "logriver": {"pipeline": pipeline, "doc_type": "anomaly"},
        "event": {"id": event_id("anomaly", pipeline, detector, series_id(window), win["start"])},
    }


def template_counts(doc: Doc, field: str = "template_counts") -> dict[str, int]:
    return {t["id"]: t["count"] for t in doc.get(field) or ()}


def template_texts(doc: Doc) -> dict[str, str]:
    return {t["id"]: t["template"] for t in doc.get("template_counts") or () if t.get("template")}


class Detector:
    """Base of all detectors.

    ``process_window(docs)`` receives every metrics document of one window start (all keys,
    including zero-count documents that :class:`~streams.anomaly.DetectorSet` synthesizes for
    series that fell silent, marked ``logriver.synthetic``) and returns anomaly documents.
    ``windows`` restricts a detector to window names (None: all).
    """

    kind = "detector"

    def __init__(self, name: str | None = None, windows: tuple[str, ...] | None = None) -> None:
        self.name = name or self.kind
        self.windows = tuple(windows) if windows is not None else None

    def accepts(self, doc: Doc) -> bool:
        return self.windows is None or doc["window"]["name"] in self.windows

    def process_window(self, docs: list[Doc]) -> list[Doc]:
        raise NotImplementedError

    def snapshot(self) -> dict[str, Any]:
        raise NotImplementedError

    def restore(self, state: dict[str, Any]) -> None:
        raise NotImplementedError
