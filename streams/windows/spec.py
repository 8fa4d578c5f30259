"""Window declarations: size, step, lateness and the key fields of each window.

Times inside the engine are integer microseconds since the epoch (``streams.transport.events``),
so window boundaries are exact (no float rounding) and every replica computes the same windows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from streams.transport.events import US, format_time_us, get_path, parse_time_us

__all__ = ["US", "WindowSpec", "format_time_us", "get_path", "parse_time_us", "row_fields"]


@dataclass(frozen=True)
class WindowSpec:
    """A window declared by a pipeline.

    kind: ``"tumbling"`` (step = size) or ``"hopping"`` (windows start every ``step`` seconds and
    last ``size`` seconds, so one event lands in ``ceil(size / step)`` windows).
    size, step: seconds (whole microseconds).
    allowed_lateness: seconds an event may lag behind the newest event seen on its partition
    and still update its window; later ones are reported as late (never dropped silently).
    key_fields: dotted paths of the event fields that key the aggregates,
    e.g. ``("kubernetes.namespace", "log.level")``; ``()`` aggregates everything together.
    influencers: dotted paths of fields whose values are counted inside each (window, key),
    e.g. ``("kubernetes.pod.name",)`` in a window keyed by service, or ``("service.name",)``
    in one keyed by namespace: what an anomaly of the window names as having moved.
    name: stable identifier; derived from the parameters when not given (influencers do not
    change it).
    """

    kind: Literal["tumbling", "hopping"] = "tumbling"
    size: float = 60.0
    step: float | None = None
    allowed_lateness: float = 10.0
    key_fields: tuple[str, ...] = ()
    name: str = field(default="")
    influencers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("tumbling", "hopping"):
            raise ValueError(f"unknown window kind {self.kind!r}")
        if self.size <= 0 or self.allowed_lateness < 0:
            raise ValueError("size must be > 0 and allowed_lateness >= 0")
        if self.kind == "tumbling":
            if self.step not in (None, self.size):
                raise ValueError("a tumbling window has step == size")
        elif self.step is None or not 0 < self.step <= self.size:
            raise ValueError("a hopping window needs 0 < step <= size")
        object.__setattr__(self, "key_fields", tuple(self.key_fields))
        object.__setattr__(self, "influencers", tuple(self.influencers))
        if set(self.influencers) & set(self.key_fields):
            raise ValueError("a field cannot both key a window and break it down")
        if not self.name:
            step = "" if self.kind == "tumbling" else f"_{_num(self.step_seconds)}s"
            keys = "+".join(self.key_fields) or "all"
            object.__setattr__(
                self, "name", f"{self.kind}_{_num(self.size)}s{step}_by_{keys}"
            )

    @property
    def step_seconds(self) -> float:
        return self.size if self.step is None else self.step

    @property
    def size_us(self) -> int:
        return round(self.size * US)

    @property
    def step_us(self) -> int:
        return round(self.step_seconds * US)

    @property
    def lateness_us(self) -> int:
        return round(self.allowed_lateness * US)

    def window_starts(self, ts_us: int) -> list[int]:
        """Starts (µs) of every window holding ``ts_us``, oldest first."""
        step, size = self.step_us, self.size_us
        last = ts_us - ts_us % step
        starts = []
        s = last
        while s > ts_us - size:
            starts.append(s)
            s -= step
        starts.reverse()
        return starts

    def key_of(self, event: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> tuple:
        """Key tuple of an event (``paths`` are the split ``key_fields``); missing -> None."""
        return tuple(_key_value(get_path(event, p)) for p in paths)

    def split_paths(self) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(f.split(".")) for f in self.key_fields)

    def key_names(self) -> tuple[str, ...]:
        """Names of the key fields inside a document's ``key`` object: dots become underscores."""
        return tuple(f.replace(".", "_") for f in self.key_fields)


def row_fields(specs: Iterable[WindowSpec]) -> tuple[str, ...]:
    """Every field the windows of ``specs`` read from an event, each once: the key fields in
    the order the specs name them, then the influencer fields (what a window-input row
    carries)."""
    specs = list(specs)
    keys = [f for s in specs for f in s.key_fields]
    return tuple(dict.fromkeys(keys + [f for s in specs for f in s.influencers]))


def _key_value(v: Any) -> str | int | float | bool | None:
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))
