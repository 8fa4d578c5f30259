"""How the structure agent takes its input: buffers of Kafka messages, cut into slices
bounded in bytes so the worker's memory does not grow with a backlog."""

from __future__ import annotations

from typing import Any

TAKE_MAX = 500  # messages per buffer
TAKE_WITHIN = 0.25  # seconds to wait for a buffer to fill
# Raw bytes structured at once: a buffer of up to TAKE_MAX messages of up to 900 KiB (a
# collector catching up sends full ones) is processed in slices of about this much (events,
# their JSON and the bulk bodies take about 20x the raw bytes).
SLICE_BYTES = 4 * 1024 * 1024


def slices(fevents: list[Any], limit: int) -> list[list[Any]]:
    """``fevents`` (Faust events) in order, cut into runs of at most ``limit`` bytes of
    message values (a larger message alone)."""
    out: list[list[Any]] = []
    run: list[Any] = []
    size = 0
    for fe in fevents:
        n = len(fe.value or b"")
        if run and size + n > limit:
            out.append(run)
            run, size = [], 0
        run.append(fe)
        size += n
    if run:
        out.append(run)
    return out
