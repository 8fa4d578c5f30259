"""A pipeline is a plain Python module in ``pipelines/`` exposing one ``Pipeline`` object.

The pipeline says what it reads, how lines are parsed, which steps enrich the events, which
windows and detectors run and where results go. ``Pipeline.structure`` turns one raw record
(see ``streams.records``) into one structured event; it never raises: a failing step flags the
event, and a record that cannot be structured at all becomes a dead letter.

The same object runs in a Faust worker (``streams.worker``) and in-process
(``streams.runner``), so a pipeline can be tried on a file before it is deployed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable

from streams import config
from streams.deadletter import DeadLetter, dead_letter
from streams.parse import Parsed, Parser
from streams.records import FLAG_INVALID_UTF8, FLAG_TRUNCATED, Record
from streams.templates import TemplateMatch, TemplateMiner

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
    template_changes: list[dict[str, Any]] = field(default_factory=list)


# Flags for which the original text is kept on the event (``event.original``).
_KEEP_ORIGINAL = {FLAG_INVALID_UTF8, FLAG_TRUNCATED, "runtime_parse_error"}


@dataclass
class Pipeline:
    name: str
    source_topic: str = config.RAW
    parser: Parser = field(default_factory=Parser)
    mine_templates: bool = True
    max_templates: int = 10_000
    steps: list[Step] = field(default_factory=list)
    # Multiline rules the collector applies after partial-line reassembly (None: built-ins).
    multiline: list[Any] | None = None
    windows: list[Any] = field(default_factory=list)
    detectors: list[Any] = field(default_factory=list)
    index_events: bool = True
    publish_structured: bool = True
    partitions: int = 4

    def new_miner(self) -> TemplateMiner | None:
        return TemplateMiner(max_templates=self.max_templates) if self.mine_templates else None

    # -- structuring -------------------------------------------------------------------
    def structure(self, records: list[Record], miner: TemplateMiner | None) -> Structured:
        out = Structured()
        for record in records:
            try:
                event = self._structure_one(record, miner, out)
            except Exception as exc:  # a bug must not stop the stream: dead-letter the record
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
        raw_message: str = record["message"]
        observed = record.get("observed")
        flags: list[str] = list(record.get("flags") or ())
        parsed: Parsed = self.parser.parse(raw_message, reference_time=_parse_time(observed))

        event: Event = {
            "@timestamp": _format_time(parsed.timestamp)
            or record.get("time")
            or observed
            or _now(),
            "message": parsed.message,
            "event": {"id": record["id"]},
            "log": {"format": parsed.format},
            "logriver": {"pipeline": self.name},
        }
        if observed:
            event["event"]["created"] = observed
        if flags and _KEEP_ORIGINAL.intersection(flags):
            event["event"]["original"] = record.get("original", raw_message)
        if parsed.level:
            event["log"]["level"] = parsed.level
        if record.get("stream"):
            event["stream"] = record["stream"]
        source = record.get("source") or {}
        if source.get("path"):
            event["log"]["file"] = {"path": source["path"]}
        if source.get("offset") is not None:
            event["log"]["offset"] = source["offset"]
        if source.get("host"):
            event["host"] = {"name": source["host"]}
        for key in ("kubernetes", "container", "service"):
            if record.get(key):
                event[key] = record[key]
        if record.get("fields"):
            _merge(event, {"attributes": record["fields"]})
        if parsed.fields:
            _merge(event, parsed.fields)
        if parsed.errors:
            flags.append("parse_error")
            event["logriver"]["errors"] = list(parsed.errors)

        if miner is not None:
            match: TemplateMatch = miner.match(parsed.message)
            log = event["log"]
            log["template"] = match.template
            log["template_id"] = match.template_id
            if match.params:
                log["template_params"] = match.params
            if match.is_new:
                event["logriver"]["template_is_new"] = True
            if match.previous_id:
                out.template_changes.append(
                    {
                        "pipeline": self.name,
                        "old_id": match.previous_id,
                        "new_id": match.template_id,
                        "template": match.template,
                        "time": event["@timestamp"],
                    }
                )

        for step in self.steps:
            try:
                result = step.fn(event)
                if result is not None:
                    event = result
            except Exception as exc:
                flags.append("step_error")
                event["logriver"].setdefault("errors", []).append(
                    f"{step.id}: {type(exc).__name__}: {exc}"[:512]
                )
        if flags:
            event["logriver"]["flags"] = sorted(set(flags))
        return event


def _merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(dst[key], value)
        else:
            dst[key] = value


def _format_time(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


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
