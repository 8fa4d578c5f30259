"""A pipeline is a plain Python module in ``pipelines/`` exposing one ``Pipeline`` object.

The pipeline says what it reads, how lines are parsed, which steps enrich the events, which
windows and detectors run and where results go. ``Pipeline.structure`` turns one raw record
(see ``streams.transport.records``) into one structured event; it never raises: a failing step flags the
event, and a record that cannot be structured at all becomes a dead letter.

The same object runs in a Faust worker (``streams.worker.app``) and in-process
(``streams.replay.runner``), so a pipeline can be tried on a file before it is deployed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.framing.multiline import BUILTIN_RULES, MultilineRule
from streams.ops import config
from streams.parse import Parsed, Parser
from streams.parse.levels import level_info, severity_code
from streams.templates import TemplateMiner
from streams.transport.deadletter import DeadLetter, dead_letter
from streams.transport.records import FLAG_INVALID_UTF8, FLAG_TRUNCATED, Record

Event = dict[str, Any]
StepFn = Callable[[Event], Event | None]


@dataclass(frozen=True)
class Step:
    """An enrichment step: ``fn(event)`` returns the event (changed in place or new)."""

    id: str
    fn: StepFn


@dataclass
class Structured:
    """What structuring a batch of records produced."""

    events: list[Event] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # logs.templates messages: a template's text generalized (type change), or a template
    # merged into another (type alias); see streams.templates.TemplateChange
    template_changes: list[dict[str, Any]] = field(default_factory=list)


# Flags for which the original text is kept on the event (``event.original``).
_KEEP_ORIGINAL = {FLAG_INVALID_UTF8, FLAG_TRUNCATED, "runtime_parse_error"}
# Record metadata taken over as it is (``aws``, ``cloud``: ECS fields the CloudWatch receiver
# knows, e.g. ``aws.cloudwatch.log_group``).
_COPIED = ("kubernetes", "container", "service", "aws", "cloud")


@dataclass
class Pipeline:
    name: str
    source_topic: str = config.RAW
    parser: Parser = field(default_factory=Parser)
    mine_templates: bool = True
    max_templates: int = 10_000
    steps: list[Step] = field(default_factory=list)
    # Multiline rules the collector and replay apply after partial-line reassembly (None:
    # the built-in stack-trace rules; [] merges nothing). See ``multiline_rules``.
    multiline: list[Any] | None = None
    windows: list[Any] = field(default_factory=list)
    detectors: list[Any] = field(default_factory=list)
    # Scoring: the first windows of every series are learnt, never alerted on; an alert
    # stays open through this many quiet windows (streams.anomaly.scoring, .alerts).
    warmup_windows: int = 10
    alert_gap_windows: int = 1
    index_events: bool = True
    publish_structured: bool = True
    partitions: int = 4

    def multiline_rules(self) -> tuple[MultilineRule, ...]:
        """The rules every reader of files applies (the node agent and replay alike)."""
        return BUILTIN_RULES if self.multiline is None else tuple(self.multiline)

    def new_miner(self) -> TemplateMiner | None:
        return TemplateMiner(max_templates=self.max_templates) if self.mine_templates else None

    # -- structuring -------------------------------------------------------------------
    def structure(self, records: list[Record], miner: TemplateMiner | None) -> Structured:
        out = Structured()
        for record in records:
            try:
                event = self._structure_one(record, miner, out)
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the stream: dead-letter the record
                out.dead_letters.append(
                    dead_letter(
                        "structure",
                        "internal_error",
                        record,
                        step="structure",
                        detail=f"{type(exc).__name__}: {exc}",
                        pipeline=self.name,
                        event_id=record.get("id") if isinstance(record, dict) else None,
                    )
                )
                continue
            out.events.append(event)
        return out

    def _structure_one(
        self, record: Record, miner: TemplateMiner | None, out: Structured
    ) -> Event:
        flags: list[str] | None = record.get("flags")
        flags = list(flags) if flags else None  # (no list per line until a flag is set)
        parsed: Parsed = self.parser.parse(record["message"],
                                           reference_time=_parse_time(record.get("observed")))
        event = _base_event(record, parsed, flags, self.name)
        if parsed.errors:
            flags = (flags or []) + ["parse_error"]
            event["logriver"]["errors"] = list(parsed.errors)
        if miner is not None:
            self._add_template(event, parsed.message, miner, out)
        for step in self.steps:
            try:
                result = step.fn(event)
                if result is not None:
                    event = result
            except Exception as exc:  # noqa: BLE001 - a failing step flags the event, never drops it
                flags = (flags or []) + ["step_error"]
                event["logriver"].setdefault("errors", []).append(
                    f"{step.id}: {type(exc).__name__}: {exc}"[:512]
                )
        if flags:
            event["logriver"]["flags"] = sorted(set(flags).union(event["logriver"].get("flags", ())))
        return event

    def _add_template(self, event: Event, message: str, miner: TemplateMiner,
                      out: Structured) -> None:
        template, tid, params, is_new, change = miner.match_fields(message)
        log = event["log"]
        log["template"] = template
        log["template_id"] = tid
        if params:
            log["template_params"] = params
        if is_new:
            event["logriver"]["template_is_new"] = True
        if change is not None:
            out.template_changes.append(change.record(self.name, event["@timestamp"]))


def _base_event(record: Record, parsed: Parsed, flags: list[str] | None, pipeline: str) -> Event:
    """The event of a record before templates and steps: time, message, ids, level, source,
    the record's metadata and the parsed fields."""
    get = record.get
    observed = get("observed")
    meta: dict[str, Any] = {"id": record["id"]}
    log: dict[str, Any] = {"format": parsed.format}
    event: Event = {
        "@timestamp": _format_time(parsed.timestamp) or get("time") or observed or _now(),
        "message": parsed.message,
        "event": meta,
        "log": log,
        "logriver": {"pipeline": pipeline},
    }
    if observed:
        meta["created"] = observed
    if flags and _KEEP_ORIGINAL.intersection(flags):
        meta["original"] = get("original", record["message"])
    value = parsed.level
    severity = parsed.severity
    code = None
    if value:
        log["level"] = value  # as the line wrote it (ECS)
        normalized, code = level_info(value)
        if severity is None:
            severity = normalized
        elif normalized != severity:
            code = None
    if severity:
        # The normalized severity beside it: what dashboards, windows and detectors use.
        log["severity"] = severity
        meta["severity"] = severity_code(severity) if code is None else code
    value = get("stream")
    if value:
        event["stream"] = value
    source = get("source")
    if source:
        value = source.get("path")
        if value:
            log["file"] = {"path": value}
        value = source.get("offset")
        if value is not None:
            log["offset"] = value
        value = source.get("host")
        if value:
            event["host"] = {"name": value}
    for name in _COPIED:
        value = get(name)
        if value:
            event[name] = value
    value = get("fields")
    if value:
        _merge(event, {"attributes": value})
    # _merge(event, parsed.fields), its top level inlined: most keys are new to the event.
    for key, value in parsed.fields.items():
        if isinstance(value, dict):
            current = event.get(key)
            if isinstance(current, dict):
                _merge(current, value)
                continue
        event[key] = value
    return event


def merge_fields(dst: dict[str, Any], src: dict[str, Any]) -> None:
    """Merge nested ``src`` into ``dst``: objects are merged key by key, other values replace."""
    _merge(dst, src)


def _merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for key, value in src.items():
        if isinstance(value, dict):
            current = dst.get(key)
            if isinstance(current, dict):
                _merge(current, value)
                continue
        dst[key] = value


def format_time(ts: datetime | None) -> str | None:
    """``ts`` as the event's ``@timestamp`` text (UTC, milliseconds, ``Z``)."""
    return _format_time(ts)


def _format_time(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    if ts.tzinfo is not UTC:
        ts = ts.astimezone(UTC)
    # Same text as isoformat(timespec="milliseconds") with "Z", at half the cost (and faster
    # than an f-string with format specifiers); microseconds when the line gave them (klog,
    # glog, RFC 5424, Apache: Elasticsearch keeps them in _source).
    us = ts.microsecond
    if us % 1000:
        return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031
            ts.year, ts.month, ts.day, ts.hour, ts.minute, ts.second, us)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031
        ts.year, ts.month, ts.day, ts.hour, ts.minute, ts.second, us // 1000)


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    if type(value) is str and len(value) <= 64:
        # A collector stamps ``observed`` once per read: the same text comes many times over.
        hit = _TIMES.get(value, _MISSING)
        if hit is _MISSING:
            if len(_TIMES) >= _MAX_TIMES:
                _TIMES.clear()
            hit = _TIMES[value] = _fromisoformat(value)
        return hit  # type: ignore[return-value]
    return _fromisoformat(value)


def _fromisoformat(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))  # noqa: FURB162
    except ValueError:
        return None


_TIMES: dict[str, datetime | None] = {}
_MAX_TIMES = 256
_MISSING = object()


def _now() -> str:
    return _format_time(datetime.now(UTC)) or ""


# -- loading -----------------------------------------------------------------------------
class PipelineNotFound(LookupError):
    pass


def load_pipeline(spec: str) -> Pipeline:
    """Load a pipeline by name (``kubernetes`` -> ``pipelines.kubernetes``), by path
    (``pipelines/kubernetes.py``) or as ``module:attribute``."""
    attr = None
    if ":" in spec and not spec.endswith(".py"):
        spec, attr = spec.split(":", 1)
    if spec.endswith(".py") or "/" in spec:
        path = Path(spec)
        if not path.is_file():
            raise PipelineNotFound(f"no pipeline file at {path}")
        mod_name = f"logriver_pipeline_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(mod_name, path)
        assert module_spec and module_spec.loader
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[mod_name] = module
        module_spec.loader.exec_module(module)
    else:
        name = spec if "." in spec else f"pipelines.{spec}"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name not in (name, name.rsplit(".", 1)[0]):
                raise
            raise PipelineNotFound(
                f"no pipeline named {spec!r} (looked for module {name})"
            ) from None
    if attr:
        obj = getattr(module, attr, None)
        if not isinstance(obj, Pipeline):
            raise PipelineNotFound(f"{module.__name__}:{attr} is not a Pipeline")
        return obj
    found = [v for v in vars(module).values() if isinstance(v, Pipeline)]
    if isinstance(getattr(module, "pipeline", None), Pipeline):
        return module.pipeline
    if len(found) == 1:
        return found[0]
    raise PipelineNotFound(
        f"{module.__name__} must expose one Pipeline object (as `pipeline`), found {len(found)}"
    )
