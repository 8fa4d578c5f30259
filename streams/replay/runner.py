"""Run a pipeline in-process, without Kafka or Elasticsearch.

This is the embedded default for trying a pipeline on a file (``logriver replay``) or on
stdin (``logriver parse``), and what pipeline tests use: the same ``Pipeline`` object, the
same runtime decoding and tailer as in production, in-memory sinks.
"""

from __future__ import annotations

import collections
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.framing.runtime import decode_line
from streams.pipeline import Event, Pipeline
from streams.sources.checkpoints import CheckpointStore
from streams.sources.files import FileTailer
from streams.transport.deadletter import DeadLetter
from streams.transport.records import Record, add_flag, decode_text, event_id, now_rfc3339
from streams.windows.stage import WindowStage


@dataclass
class Summary:
    lines: int = 0
    events: int = 0
    dead_letters: int = 0
    template_changes: int = 0
    seconds: float = 0.0
    by_level: collections.Counter = field(default_factory=collections.Counter)
    by_format: collections.Counter = field(default_factory=collections.Counter)
    by_namespace: collections.Counter = field(default_factory=collections.Counter)
    templates: collections.Counter = field(default_factory=collections.Counter)
    template_text: dict[str, str] = field(default_factory=dict)
    # merged template id -> the id it counts under (templates are counted resolved)
    aliases: dict[str, str] = field(default_factory=dict)
    dead_letter_reasons: collections.Counter = field(default_factory=collections.Counter)
    windows_closed: int = 0
    # alert id -> its latest document (an alert is published again each time it changes)
    alerts: dict[str, Event] = field(default_factory=dict)

    @property
    def anomalies(self) -> int:
        """Distinct alerts."""
        return len(self.alerts)

    @property
    def anomalies_by_detector(self) -> collections.Counter:
        return collections.Counter(a.get("detector", "?") for a in self.alerts.values())

    def add(self, events: list[Event], dead_letters: list[DeadLetter]) -> None:
        self.events += len(events)
        self.dead_letters += len(dead_letters)
        for ev in events:
            lg = ev.get("log", {})
            self.by_level[lg.get("severity") or lg.get("level", "-")] += 1
            self.by_format[lg.get("format", "-")] += 1
            self.by_namespace[ev.get("kubernetes", {}).get("namespace", "-")] += 1
            tid = lg.get("template_id")
            if tid:
                self.templates[tid] += 1
                self.template_text[tid] = lg.get("template", "")  # (the latest text)
        for dl in dead_letters:
            self.dead_letter_reasons[f"{dl['stage']}:{dl['reason']}"] += 1

    def resolved_templates(self) -> collections.Counter:
        """Events per template id, merged ids counted under the id they were merged into."""
        if not self.aliases:
            return self.templates
        out: collections.Counter = collections.Counter()
        for tid, c in self.templates.items():
            seen = 0
            while tid in self.aliases and seen < 64:
                tid, seen = self.aliases[tid], seen + 1
            out[tid] += c
        return out

    def as_dict(self) -> dict[str, Any]:
        templates = self.resolved_templates()
        return {
            "lines": self.lines,
            "events": self.events,
            "dead_letters": self.dead_letters,
            "template_changes": self.template_changes,
            "seconds": round(self.seconds, 3),
            "lines_per_second": round(self.lines / self.seconds) if self.seconds else None,
            "by_level": dict(self.by_level.most_common()),
            "by_format": dict(self.by_format.most_common()),
            "by_namespace": dict(self.by_namespace.most_common()),
            "distinct_templates": len(templates),
            "top_templates": [
                {"id": t, "count": c, "template": self.template_text.get(t, "")}
                for t, c in templates.most_common(10)
            ],
            "dead_letter_reasons": dict(self.dead_letter_reasons),
            "windows_closed": self.windows_closed,
            "anomalies": self.anomalies,
            "anomalies_by_detector": dict(self.anomalies_by_detector),
        }


class LocalRun:
    """One in-process run of a pipeline: keeps its template miners and, when the pipeline
    declares windows, its window + scoring stage across batches.

    As in the worker, templates are mined per raw partition: a record published under key K
    (the collector's container stream) is mined by the miner of the partition Kafka's default
    partitioner gives K among ``pipeline.partitions`` (the raw topic's partitions), so a
    replay names templates as the live path does. Records without a key share one miner."""

    def __init__(self, pipeline: Pipeline, *, windows: bool = True) -> None:
        self.pipeline = pipeline
        self.miner = pipeline.new_miner()
        self.miners: dict[int, Any] = {}  # raw partition -> miner (records with a key)
        self.partition_of: dict[bytes, int] = {}
        self.aliases: dict[str, str] = {}  # merged templates not yet told to the windows
        self.windows = (
            WindowStage(pipeline.name, pipeline.windows, pipeline.detectors,
                        warmup_windows=pipeline.warmup_windows,
                        alert_gap=pipeline.alert_gap_windows)
            if windows and pipeline.windows else None
        )
        self.summary = Summary()
        self.on_events: list[Callable[[list[Event], list[DeadLetter]], None]] = []
        self.on_windows: list[Callable[[list[Event], list[Event]], None]] = []

    def miner_for(self, key: bytes | None) -> Any:
        """The template miner of the raw partition ``key`` is published to."""
        if key is None or self.miner is None:
            return self.miner
        partition = self.partition_of.get(key)
        if partition is None:
            from streams.transport.partitioner import partitions_for_keys

            [partition] = partitions_for_keys([key], list(range(self.pipeline.partitions)))
            self.partition_of[key] = partition
        miner = self.miners.get(partition)
        if miner is None:
            miner = self.miners[partition] = self.pipeline.new_miner()
        return miner

    def process(self, records: list[Record],
                key: bytes | None = None) -> tuple[list[Event], list[DeadLetter]]:
        """Structure records published under ``key``, then count them in the windows."""
        events, letters = self.structure(records, key)
        return events, letters + self.count(events)

    def structure(self, records: list[Record],
                  key: bytes | None = None) -> tuple[list[Event], list[DeadLetter]]:
        """Structure records (mined by ``key``'s miner), without counting them in windows."""
        result = self.pipeline.structure(records, self.miner_for(key))
        aliases = {c["alias_id"]: c["template_id"] for c in result.template_changes
                   if c["type"] == "alias"}
        if aliases:  # merged templates: counted under the survivor from the next count on
            self.summary.aliases.update(aliases)
            self.aliases.update(aliases)
        self.summary.lines += len(records)
        self.summary.template_changes += len(result.template_changes)
        self._report(result.events, result.dead_letters)
        return result.events, result.dead_letters

    def count(self, events: list[Event]) -> list[DeadLetter]:
        """Count structured events in the windows (in the order given), close and score
        what the watermark allows; returns the late events' dead letters."""
        if self.windows is None:
            return []
        if self.aliases:
            self.windows.alias(self.aliases)
            self.aliases = {}
        letters = self.windows.add(events)
        if letters:
            self._report([], letters)
        self._windows_out(*self.windows.close())
        return letters

    def _report(self, events: list[Event], letters: list[DeadLetter]) -> None:
        self.summary.add(events, letters)
        for fn in self.on_events:
            fn(events, letters)

    def finish(self) -> None:
        """End of input: close every open window."""
        if self.windows is not None:
            self._windows_out(*self.windows.flush())

    def _windows_out(self, metrics: list[Event], anomalies: list[Event]) -> None:
        if not metrics and not anomalies:
            return
        self.summary.windows_closed += len(metrics)
        for a in anomalies:
            self.summary.alerts[a["event"]["id"]] = a
        for fn in self.on_windows:
            fn(metrics, anomalies)

    # The Publisher protocol, so a FileTailer can feed a local run directly.
    async def publish(self, key: bytes, records: list[Record]) -> None:
        self.process(records, key)


def stdin_record(line: bytes, number: int, fmt: str | None = None, source: str = "stdin") -> Record:
    """A raw record for one input line given on stdin (runtime framing decoded, no assembly)."""
    decoded = decode_line(line, fmt)
    rec: Record = {
        "id": event_id(source, number),
        "message": decoded.message,
        "time": decoded.time,
        "observed": now_rfc3339(),
        "stream": decoded.stream,
        "source": {"type": "stdin", "offset": number},
    }
    for flag in decoded.flags:
        add_flag(rec, flag)
    if decoded.flags:
        rec["original"] = decode_text(line)[0]
    return rec


def replay_file(
    path: str | Path,
    pipeline: Pipeline,
    *,
    fmt: str | None = None,
    progress: Callable[[int], None] | None = None,
    on_events: Callable[[list[Event], list[DeadLetter]], None] | None = None,
    on_windows: Callable[[list[Event], list[Event]], None] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Summary:
    """Process one file with the production tailer and the pipeline, in-process."""
    import asyncio

    run = LocalRun(pipeline)
    if on_events:
        run.on_events.append(on_events)
    if on_windows:
        run.on_windows.append(on_windows)
    path = Path(path)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tailer = FileTailer(
            [str(path)], run, CheckpointStore(Path(tmp) / "checkpoints.json"),
            fmt=fmt, extra_metadata=metadata, poll_interval=0.0, release_after=0.0,
            multiline=pipeline.multiline_rules(),  # the rules the node agent applies
        )

        async def go() -> None:
            while True:
                n = await tailer.poll_once()
                if progress:
                    progress(sum(tf.offset for tf in tailer.files.values()))
                if n == 0 and all(
                    tf.offset >= path.stat().st_size for tf in tailer.files.values()
                ) and tailer.files:
                    break
                if n == 0 and not tailer.files:
                    break
            await tailer.flush_pending(unterminated=True)  # the file is complete

        asyncio.run(go())
        tailer.close()
    run.finish()
    run.summary.seconds = time.perf_counter() - started
    return run.summary


def structure_lines(pipeline: Pipeline, lines: Iterable[bytes], fmt: str | None = None) -> list[Event]:
    """Structure raw lines one by one (as ``logriver parse`` does). For tests and notebooks."""
    run = LocalRun(pipeline, windows=False)
    out: list[Event] = []
    for i, line in enumerate(lines):
        events, dls = run.process([stdin_record(line, i, fmt)])
        out.extend(events or dls)
    return out
