"""The window input: what the structuring agent sends the window agent about each event.

Compact rows (version 3) on ``logs.windows.<pipeline>``, keyed by the fields every window spec
groups by, packed per key under the broker's message limit; each row carries the event's
position in the raw topic and its source stream, and for a line of a file its position in the
file (:func:`origin_of`), so the window agent counts re-delivered input once, and a line the
node agent published twice (read again from its checkpoint after a crash: the same id at a new
raw offset) once too. Encoded by :func:`window_messages`, checked by
:func:`decode_window_input` (version 2 rows, without the file position, are still accepted).

After a buffer's rows, every window partition also gets a *progress* message (no rows):
the newest event time of each source stream in the buffer (``"progress": [[raw partition,
stream, time µs], ...]``). A window stage then knows every stream's progress, not only the
streams of its own keys, and a stream whose first rows for it come late (a namespace's
container read after others, on another raw partition) still holds its windows open
(``WindowAggregator.advance``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import orjson

from streams.transport.deadletter import DeadLetter, dead_letter
from streams.windows.aggregate import sample_of
from streams.windows.spec import _key_value, format_time_us, get_path, parse_time_us

WINDOW_INPUT_VERSION = 3
# ts, event id, the 6 sample fields, key values, partition, offset, index, stream, then (from
# version 3) the line's file stream and offset in it (see ``origin_of``; None when unknown)
ROW_FIELDS = 15
_ROW_FIELDS = {2: 13, 3: 15}


def origin_of(record: dict[str, Any]) -> list[int | None]:
    """``[file stream, offset]`` of a raw record read from a file (else ``[None, None]``):
    the stream is a 63-bit number for the file's identity and the record's stream (stdout,
    stderr), in which the node agent emits lines in the order of their offsets; a line read
    again after a crash has the same."""
    src = record.get("source")
    if isinstance(src, dict):
        identity, offset = src.get("identity"), src.get("offset")
        if isinstance(identity, str) and type(offset) is int:
            return [_file_stream(identity, str(record.get("stream"))), offset]
    return [None, None]


@lru_cache(maxsize=4096)
def _file_stream(identity: str, stream: str) -> int:
    digest = hashlib.blake2b(f"{identity}\x1f{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest) >> 1


def window_topic_name(pipeline_name: str) -> str:
    """The window topic of a pipeline (before the settings' topic prefix)."""
    return f"logs.windows.{pipeline_name}"


def decode_window_input(value: bytes) -> dict[str, Any]:
    """One window-topic message, checked before anything is applied (a poison message must
    be dead-lettered alone, not fail its whole batch). ValueError when it is not window
    input of this version."""
    msg = orjson.loads(value)
    width = _ROW_FIELDS.get(msg.get("v")) if isinstance(msg, dict) else None  # type: ignore[arg-type]
    if width is None:
        got = msg.get("v") if isinstance(msg, dict) else type(msg).__name__
        raise ValueError(f"not window input version {sorted(_ROW_FIELDS)} (got {got!r})")
    fields, texts, rows = msg.get("fields"), msg.get("texts"), msg.get("rows")
    if not (isinstance(fields, list) and all(isinstance(f, str) for f in fields)
            and isinstance(texts, dict) and all(isinstance(t, str) for t in texts.values())
            and isinstance(rows, list)):
        raise ValueError("window input without fields, texts and rows")
    aliases = msg.get("aliases")  # merged template ids (optional): merged id -> surviving id
    if aliases is not None and not (isinstance(aliases, dict) and all(
            isinstance(a, str) and isinstance(b, str) for a, b in aliases.items())):
        raise ValueError("window input aliases are not a mapping of template ids")
    progress = msg.get("progress", [])
    if not (isinstance(progress, list) and all(
            isinstance(p, list) and len(p) == 3 and all(type(x) is int for x in p)
            for p in progress)):
        raise ValueError("window input progress is malformed")
    n = len(fields)
    for row in rows:  # (explicit tests: a generator per row costs as much as the rest)
        if not (type(row) is list and len(row) == width
                and type(row[8]) is list and len(row[8]) == n
                and type(row[9]) is int and type(row[10]) is int
                and type(row[11]) is int and type(row[12]) is int
                and (row[0] is None or type(row[0]) is int)
                and (width == 13 or (row[13] is None and row[14] is None)
                     or (type(row[13]) is int and type(row[14]) is int))):
            raise ValueError("a window input row is malformed")
    return msg


def late_event(ts: int | None, eid: str, fields: tuple[str, ...], values: list[Any]) -> dict[str, Any]:
    """What a late row's dead letter holds: its time, event id and window key values (the
    event itself is in Elasticsearch and on logs.structured)."""
    return {"@timestamp": None if ts is None else format_time_us(ts), "event": {"id": eid},
            "key": dict(zip(fields, values))}


def progress_messages(events: list[dict[str, Any]], positions: dict[str, list[int]],
                      fields: tuple[str, ...], keys: list[bytes]) -> list[tuple[bytes, bytes]]:
    """One progress message per window partition (``keys``): each source stream's newest
    event time among ``events``."""
    newest: dict[tuple[int, int], int] = {}
    for ev in events:
        ts = parse_time_us(ev.get("@timestamp"))
        if ts is None:
            continue
        pos = positions[ev["event"]["id"]]
        src, stream = pos[0], pos[3]
        if ts > newest.get((src, stream), -1 << 62):
            newest[(src, stream)] = ts
    if not newest:
        return []
    value = orjson.dumps({"v": WINDOW_INPUT_VERSION, "fields": list(fields), "texts": {},
                          "rows": [], "progress": [[s, st, t] for (s, st), t in sorted(newest.items())]})
    return [(key, value) for key in keys]


def window_messages(events: list[dict[str, Any]], positions: dict[str, list[int]],
                    key_paths: list[tuple[str, ...]], fields: tuple[str, ...], limit: int,
                    *, pipeline: str) -> tuple[list[tuple[bytes, bytes]], list[DeadLetter]]:
    """The window-topic messages of a buffer's events, keyed by the partition fields
    (``key_paths``), each key's events in order, packed into messages of at most ``limit``
    bytes; and dead letters for rows larger than ``limit`` alone (a huge key value: never
    sent, never silently dropped).

    Compact window input (version 3): what the window stage counts of each event, extracted
    here once: ``{"v": 3, "fields": [key fields], "texts": {template id: text}, "rows":
    [[time µs, event id, bytes, is_error, template_is_new, template id, is_5xx, duration ms,
    [key values], raw partition, offset, index, stream, file stream, file offset], ...]}``
    (``positions``: event id -> the last six). Each template text is sent once per message,
    not once per event."""
    paths = [tuple(f.split(".")) for f in fields]
    # the partition key's fields are among the window key fields: take their values there
    part = [fields.index(".".join(p)) for p in key_paths]
    head = b'{"v":%d,"fields":' % WINDOW_INPUT_VERSION + orjson.dumps(list(fields)) + b',"texts":'
    # rows as lists, encoded per key at once (see ``_pack_key``)
    groups: dict[bytes, list[tuple[list[Any], str | None, str | None]]] = {}
    for ev in events:
        values = [_key_value(get_path(ev, p)) for p in paths]
        key = "\x1f".join([str(values[j]) for j in part]).encode()
        eid = ev["event"]["id"]
        sample = sample_of(ev)
        tid = sample[3]
        text = None
        if tid is not None:
            lg = ev.get("log")
            text = lg.get("template") if isinstance(lg, dict) else None
        row = [parse_time_us(ev.get("@timestamp")), eid, *sample, values, *positions[eid]]
        groups.setdefault(key, []).append((row, tid, text if isinstance(text, str) else None))
    items: list[tuple[bytes, bytes]] = []
    letters: list[DeadLetter] = []
    for key, rows in groups.items():
        for value in _pack_key(head, rows, limit):
            if len(value) > limit:
                letters.append(dead_letter(
                    "window", "window_input_too_large", value, pipeline=pipeline,
                    event_id=orjson.loads(value)["rows"][0][1],
                    detail=f"one event's window input is {len(value)} bytes, over the {limit} "
                           "bytes of a window-topic message"))
            else:
                items.append((key, value))
    return items, letters


def _pack_key(head: bytes, rows: list[tuple[list[Any], str | None, str | None]],
              limit: int) -> list[bytes]:
    """``pack_rows`` of one key's rows, with the rows encoded by one ``orjson.dumps`` when
    they all fit in one message (the usual case: the same bytes, at a fraction of the cost
    of encoding each row alone), else row by row."""
    body = orjson.dumps([r for r, _, _ in rows])
    texts: dict[str, str] = {}
    several = False  # a template with two texts: each message must carry its rows' own
    for _, tid, text in rows:
        if tid is not None and text is not None:
            several = several or texts.setdefault(tid, text) != text
    # pack_rows' own size estimate of a single message: it splits when this passes ``limit``
    size = len(head) + 16 + len(body) - 1 + sum(
        len(orjson.dumps(text)) + len(tid) + 4 for tid, text in texts.items())
    if size <= limit and not several:
        return [head + orjson.dumps(texts) + b',"rows":' + body + b"}"]
    dumps = orjson.dumps
    return list(pack_rows(head, [(dumps(r), tid, text) for r, tid, text in rows], limit))


def pack_rows(head: bytes, rows: list[tuple[bytes, str | None, str | None]],
               limit: int) -> Iterator[bytes]:
    """Version-2 messages of ``rows`` in order, each at most ``limit`` bytes (a row too
    large alone comes out alone), with the texts of the templates its rows use: a row whose
    template's text differs from the one in the message (its miner generalized it meanwhile)
    starts a new message, so every row is counted with the text it was emitted with."""
    empty = len(head) + 16  # the texts and rows brackets
    chunk: list[bytes] = []
    texts: dict[str, str] = {}
    size = empty

    def cost(row: bytes, tid: str | None, text: str | None) -> int:
        """Bytes ``row`` adds to the current message (its text too, if not there yet)."""
        if tid is None or text is None or tid in texts:
            return len(row) + 1
        return len(row) + 1 + len(orjson.dumps(text)) + len(tid) + 4

    for row, tid, text in rows:
        extra = cost(row, tid, text)
        changed = tid is not None and text is not None and texts.get(tid, text) != text
        if chunk and (size + extra > limit or changed):
            yield head + orjson.dumps(texts) + b',"rows":[' + b",".join(chunk) + b"]}"
            chunk, size = [], empty
            texts = {}
            extra = cost(row, tid, text)
        if tid is not None and text is not None:
            texts.setdefault(tid, text)
        chunk.append(row)
        size += extra
    if chunk:
        yield head + orjson.dumps(texts) + b',"rows":[' + b",".join(chunk) + b"]}"
