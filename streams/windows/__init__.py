"""Event-time windows: declarations, mergeable aggregates, the aggregator and its batch twin.

Owns window specs, aggregates, the window stage, the window agent and its input rows; imports
anomaly, sinks and transport, never sources, parse, templates or the worker.
"""

from streams.windows.aggregate import ERROR_LEVELS, Aggregate
from streams.windows.aggregator import (
    ClosedWindow,
    LateEvent,
    WindowAggregator,
    batch_recompute,
    window_doc,
)
from streams.windows.spec import WindowSpec, format_time_us, parse_time_us

__all__ = [
    "ERROR_LEVELS",
    "Aggregate",
    "ClosedWindow",
    "LateEvent",
    "WindowAggregator",
    "WindowSpec",
    "batch_recompute",
    "format_time_us",
    "parse_time_us",
    "window_doc",
]
