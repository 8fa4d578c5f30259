"""Dead letters: anything that cannot be processed becomes data, never a silent drop.

A dead letter carries the stage and step at fault, a short reason code, a human detail, and
the original bytes (as text when valid UTF-8, else base64) with where they came from.
Schema: ``schemas/deadletter.schema.json``.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from streams.transport.records import now_rfc3339

DeadLetter = dict[str, Any]


def dead_letter(
    stage: str,
    reason: str,
    original: bytes | str | dict[str, Any] | None,
    *,
    step: str | None = None,
    detail: str | None = None,
    pipeline: str | None = None,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    event_id: str | None = None,
) -> DeadLetter:
    if isinstance(original, dict):
        original = orjson.dumps(original, option=orjson.OPT_NON_STR_KEYS)
    dl: DeadLetter = {"time": now_rfc3339(), "stage": stage, "reason": reason}
    if step:
        dl["step"] = step
    if detail:
        dl["detail"] = detail[:4096]
    if pipeline:
        dl["pipeline"] = pipeline
    if original is not None:
        if isinstance(original, str):
            dl["original"], dl["original_encoding"] = original, "utf-8"
        else:
            try:
                dl["original"], dl["original_encoding"] = original.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                dl["original"] = base64.b64encode(original).decode("ascii")
                dl["original_encoding"] = "base64"
    if topic is not None:
        dl["source"] = {"topic": topic, "partition": partition, "offset": offset}
    if event_id:
        dl["event_id"] = event_id
    return dl
