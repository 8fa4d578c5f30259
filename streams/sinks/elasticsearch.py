"""The one Elasticsearch sink every indexing stage uses.

Contract, and why (what users of Logstash, Fluent Bit and Vector report as lost or looping
documents):

- ``write(actions)`` returns only when every document was acknowledged by Elasticsearch or
  handed to the dead-letter callback. The worker acks its Kafka offsets after it returned,
  so offsets are committed only for documents that are safe.
- Documents are sent with ``create`` and a deterministic ``_id``: a replay of the same input
  answers 409 (already there), which counts as success. No duplicates, no rewrites.
- 429, 5xx and connection errors are retried with capped exponential backoff, without
  limit: when Elasticsearch is down the worker pauses here and Kafka lag grows; when it comes
  back the worker catches up by itself.
- Any other rejection (400 mapping/parse errors, 413...) is final: the document goes to the
  dead-letter callback with the reason and the original document, never retried forever,
  never dropped.
- Bulk requests are bounded in bytes and documents, with at most ``max_in_flight`` at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError, AsyncElasticsearch, TransportError

from streams.transport.deadletter import DeadLetter, dead_letter

log = logging.getLogger(__name__)

DeadLetterFn = Callable[[list[DeadLetter]], Awaitable[None]]

# What the sink reads of a bulk response: ``errors`` and each item's status and error. The
# rest (index, id, version, shards, seq_no per item) is most of the bytes the worker would
# otherwise parse for every document.
BULK_RESPONSE_FIELDS = ["errors", "items.*.status", "items.*.error"]


@dataclass(frozen=True)
class Action:
    """One document to index: target index, deterministic id, the document, and the bulk
    operation: ``create`` (default; a 409 means it is already there) or ``index`` (replace,
    for documents that are updated in place, such as template statistics). ``source``: the
    document's JSON when the caller encoded it already (the worker encodes each event once for
    Kafka and Elasticsearch)."""

    index: str
    id: str
    doc: dict[str, Any]
    op: str = "create"
    source: bytes | None = None  # ``doc`` already encoded as JSON, when the caller has it


@dataclass
class SinkStats:
    indexed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    retried_items: int = 0
    bulk_requests: int = 0
    bulk_seconds: float = 0.0
    failures_by_reason: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Encoded:
    """Documents as parallel sequences (``ElasticsearchSink.write_encoded``)."""

    indexes: Sequence[str]
    ids: Sequence[str]
    sources: Sequence[bytes]
    docs: Sequence[dict[str, Any]]
    op: str


class _EncodedSlice(Sequence[Action]):
    """Documents ``start`` to ``stop`` of an ``_Encoded``, seen as Actions (built only when
    read: after a failed bulk item)."""

    __slots__ = ("enc", "start", "stop")

    def __init__(self, enc: _Encoded, start: int, stop: int) -> None:
        self.enc, self.start, self.stop = enc, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> Action:  # type: ignore[override]
        if not 0 <= i < self.stop - self.start:
            raise IndexError(i)
        e, j = self.enc, self.start + i
        return Action(e.indexes[j], e.ids[j], e.docs[j], e.op, e.sources[j])


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


class ElasticsearchSink:
    def __init__(
        self,
        client: AsyncElasticsearch,
        *,
        dead_letter_fn: DeadLetterFn,
        stage: str = "index",
        pipeline: str | None = None,
        max_bulk_bytes: int = 5 * 1024 * 1024,
        max_bulk_docs: int = 2000,
        max_in_flight: int = 2,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
        request_timeout: float = 60.0,
        on_health: Callable[[bool], None] | None = None,
        on_bulk: Callable[[float], None] | None = None,
    ) -> None:
        self.client = client
        self.dead_letter_fn = dead_letter_fn
        self.stage = stage
        self.pipeline = pipeline
        self.max_bulk_bytes = max_bulk_bytes
        self.max_bulk_docs = max_bulk_docs
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.request_timeout = request_timeout
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self.stats = SinkStats()
        self.healthy = True  # False while Elasticsearch is unreachable or rejecting with 5xx
        self.on_health = on_health
        self.on_bulk = on_bulk

    async def write(self, actions: Iterable[Action]) -> None:
        await self._write(self._chunks(actions))

    async def write_encoded(self, indexes: Sequence[str], ids: Sequence[str],
                            sources: Sequence[bytes], docs: Sequence[dict[str, Any]],
                            op: str = "create") -> None:
        """``write`` for documents the caller encoded already (the worker's events: each
        encoded once for Kafka and Elasticsearch), given as parallel sequences: the bulk
        body is built as bytes, with no object per document; an ``Action`` is made only
        for a document to retry or dead-letter."""
        await self._write(self._encoded_chunks(_Encoded(indexes, ids, sources, docs, op)))

    async def _write(self, chunks: Iterable[tuple[Sequence[Action], list[bytes]]]) -> None:
        # Each bulk request starts as soon as its chunk is serialized, so the next chunks are
        # serialized while Elasticsearch indexes the first (bounded by ``max_in_flight``).
        tasks: list[asyncio.Task[None]] = []
        try:
            for chunk in chunks:
                tasks.append(asyncio.ensure_future(self._send_chunk(chunk)))
                await asyncio.sleep(0)  # let it put its request on the wire
            if len(tasks) == 1:
                await tasks[0]
            elif tasks:
                await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise

    def _chunks(self, actions: Iterable[Action]) -> Iterable[tuple[list[Action], list[bytes]]]:
        """Chunks bounded in bytes and documents: the actions and, in parallel, each one's two
        bulk lines. Hot path: parallel lists (no tuple per document: fewer objects for the
        garbage collector to track while large buffers of events are alive), and the action
        line's prefix cached per op and index (the index repeats across documents)."""
        acts: list[Action] = []
        lines: list[bytes] = []
        size = 0
        prefixes: dict[str, dict[str, bytes]] = {}
        dumps = orjson.dumps
        options = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
        max_bytes, max_docs = self.max_bulk_bytes, self.max_bulk_docs
        for action in actions:
            by_index = prefixes.get(action.op)
            if by_index is None:
                by_index = prefixes[action.op] = {}
            prefix = by_index.get(action.index)
            if prefix is None:
                prefix = by_index[action.index] = (
                    b'{"' + action.op.encode() + b'":{"_index":' + dumps(action.index) + b',"_id":'
                )
            source = action.source
            if source is None:
                line = b"".join((prefix, dumps(action.id), b"}}\n", dumps(action.doc, option=options)))
            else:
                line = b"".join((prefix, dumps(action.id), b"}}\n", source, b"\n"))
            if acts and (size + len(line) > max_bytes or len(acts) >= max_docs):
                yield acts, lines
                acts, lines, size = [], [], 0
            acts.append(action)
            lines.append(line)
            size += len(line)
        if acts:
            yield acts, lines

    def _encoded_chunks(self, enc: _Encoded) -> Iterable[tuple[Sequence[Action], list[bytes]]]:
        """Chunks of already encoded documents, bounded as ``_chunks``' (the same bytes)."""
        lines: list[bytes] = []
        size = first = 0
        prefixes: dict[str, bytes] = {}
        dumps = orjson.dumps
        head = b'{"' + enc.op.encode() + b'":{"_index":'
        max_bytes, max_docs = self.max_bulk_bytes, self.max_bulk_docs
        for i, (index, doc_id, source) in enumerate(zip(enc.indexes, enc.ids, enc.sources, strict=True)):
            prefix = prefixes.get(index)
            if prefix is None:
                prefix = prefixes[index] = head + dumps(index) + b',"_id":'
            line = b"".join((prefix, dumps(doc_id), b"}}\n", source, b"\n"))
            if lines and (size + len(line) > max_bytes or len(lines) >= max_docs):
                yield _EncodedSlice(enc, first, i), lines
                lines, size, first = [], 0, i
            lines.append(line)
            size += len(line)
        if lines:
            yield _EncodedSlice(enc, first, first + len(lines)), lines

    async def _send_chunk(self, chunk: tuple[Sequence[Action], list[bytes]]) -> None:
        pending, pending_lines = chunk
        attempt = 0
        while pending:
            if attempt:
                delay = min(self.backoff_max, self.backoff_initial * 2 ** (attempt - 1))
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
            attempt += 1
            async with self._in_flight:
                body = await self._bulk(b"".join(pending_lines))
            if body is None:  # whole request failed in a retryable way
                continue
            items = body["items"]
            if body.get("errors") is False and len(items) == len(pending):
                # Elasticsearch read every item: none failed (a 409 would set ``errors``).
                self.stats.indexed += len(pending)
                return
            retry: list[Action] = []  # (an encoded chunk's documents become Actions here)
            retry_lines: list[bytes] = []
            rejected: list[DeadLetter] = []
            for action, line, item in zip(pending, pending_lines, items, strict=True):
                result = next(iter(item.values()))
                status = int(result.get("status", 0))
                if 200 <= status < 300:
                    self.stats.indexed += 1
                elif status == 409:
                    self.stats.duplicates += 1
                elif _retryable(status):
                    retry.append(action)
                    retry_lines.append(line)
                else:
                    error = result.get("error") or {}
                    reason = (error.get("type") if isinstance(error, dict) else None) or f"http_{status}"
                    detail = error.get("reason") if isinstance(error, dict) else str(error)
                    caused = error.get("caused_by") if isinstance(error, dict) else None
                    if isinstance(caused, dict) and caused.get("reason"):
                        detail = f"{detail}; caused by: {caused.get('type')}: {caused['reason']}"
                    rejected.append(
                        dead_letter(
                            self.stage,
                            reason,
                            action.doc,
                            step=f"elasticsearch:{action.index}",
                            detail=detail,
                            pipeline=self.pipeline,
                            event_id=action.id,
                        )
                    )
                    self.stats.failures_by_reason[reason] = self.stats.failures_by_reason.get(reason, 0) + 1
            if rejected:
                await self.dead_letter_fn(rejected)
                self.stats.dead_lettered += len(rejected)
            if retry:
                self.stats.retried_items += len(retry)
                log.warning("elasticsearch: %d of %d documents to retry (429/5xx)", len(retry), len(pending))
            pending, pending_lines = retry, retry_lines

    async def _bulk(self, body: bytes) -> dict[str, Any] | None:
        """POST one bulk body. Returns the response body, or None when the whole request must be
        retried (connection error, 429, 5xx). Raises on non-retryable request errors."""
        started = time.perf_counter()
        try:
            resp = await self.client.options(request_timeout=self.request_timeout).bulk(
                operations=body, refresh=False, filter_path=BULK_RESPONSE_FIELDS
            )
        except (TransportConnectionError, ConnectionTimeout) as exc:
            self._unhealthy(f"unreachable: {exc}")
            return None
        except ApiError as exc:
            if _retryable(exc.meta.status):
                self._unhealthy(f"HTTP {exc.meta.status}")
                return None
            raise
        except TransportError as exc:
            self._unhealthy(f"transport error: {exc}")
            return None
        elapsed = time.perf_counter() - started
        self.stats.bulk_requests += 1
        self.stats.bulk_seconds += elapsed
        if self.on_bulk:
            self.on_bulk(elapsed)
        if not self.healthy:
            log.warning("elasticsearch: reachable again")
            self._set_health(True)
        return resp.body

    def _unhealthy(self, why: str) -> None:
        if self.healthy:
            log.warning("elasticsearch %s; pausing and retrying with backoff", why)
            self._set_health(False)

    def _set_health(self, ok: bool) -> None:
        self.healthy = ok
        if self.on_health:
            self.on_health(ok)
