"""Key/value formats: JSON (orjson) and logfmt, and the mapping of common keys to ECS names."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from .levels import normalize_level
from .model import Parsed, put, to_int
from .stacktrace import attach_stack_trace
from .timestamps import parse_timestamp

_MESSAGE_KEYS = ("msg", "message", "log", "MESSAGE", "@message", "text")
_LEVEL_KEYS = ("level", "severity", "lvl", "loglevel", "log.level", "levelname", "level_name",
               "severity_text", "@level", "log_level")
_TIME_KEYS = ("ts", "time", "timestamp", "@timestamp", "t", "datetime", "date", "asctime", "@t")
# Known keys -> ECS path; the value is taken as a scalar.
_ECS: dict[str, tuple[str, ...]] = {
    "logger": ("log", "logger"), "logger_name": ("log", "logger"), "log.logger": ("log", "logger"),
    "loggerName": ("log", "logger"), "name": ("log", "logger"),
    "service": ("service", "name"), "service.name": ("service", "name"),
    "service_name": ("service", "name"), "app": ("service", "name"),
    "pid": ("process", "pid"), "process.pid": ("process", "pid"),
    "thread": ("process", "thread", "name"), "thread_name": ("process", "thread", "name"),
    "threadName": ("process", "thread", "name"),
    "error": ("error", "message"), "err": ("error", "message"), "error.message": ("error", "message"),
    "exception": ("error", "message"), "error.type": ("error", "type"), "error.kind": ("error", "type"),
    "stack": ("error", "stack_trace"), "stacktrace": ("error", "stack_trace"),
    "stack_trace": ("error", "stack_trace"), "error.stack_trace": ("error", "stack_trace"),
    "exc_info": ("error", "stack_trace"), "error.stack": ("error", "stack_trace"),
    "trace_id": ("trace", "id"), "traceId": ("trace", "id"), "trace.id": ("trace", "id"),
    "span_id": ("span", "id"), "spanId": ("span", "id"), "span.id": ("span", "id"),
    "host": ("host", "name"), "hostname": ("host", "name"), "host.name": ("host", "name"),
    "method": ("http", "request", "method"), "http.method": ("http", "request", "method"),
    "status": ("http", "response", "status_code"), "status_code": ("http", "response", "status_code"),
    "http.status_code": ("http", "response", "status_code"),
    "path": ("url", "path"), "url": ("url", "original"), "uri": ("url", "original"),
    "remote_addr": ("source", "address"), "client_ip": ("source", "address"),
    "user_agent": ("user_agent", "original"),
}
_INT_PATHS = {("process", "pid"), ("http", "response", "status_code")}
_INT_KEYS = frozenset(k for k, path in _ECS.items() if path in _INT_PATHS)
_MAX_VALUE_CHARS = 8192


def _scalar(value: Any) -> Any:
    """A JSON scalar; lists and objects become (bounded) JSON text."""
    if isinstance(value, str):
        return value if len(value) <= _MAX_VALUE_CHARS else value[:_MAX_VALUE_CHARS]
    if value is None or isinstance(value, (bool, int, float)):  # (a tuple: faster than a union)
        return value
    if type(value) is list and len(value) <= 64 and all(type(v) is str for v in value):
        return [v[:_MAX_VALUE_CHARS] for v in value]  # a repeated key, an array of words
    try:
        text = orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, TypeError):
        text = "..."
    return text[:_MAX_VALUE_CHARS]


def flatten(obj: dict[str, Any], max_depth: int, errors: list[str]) -> dict[str, Any]:
    """Flatten nested objects into dotted keys, down to ``max_depth`` levels (iterative)."""
    out: dict[str, Any] = {}
    stack: list[tuple[str, dict[str, Any], int]] = [("", obj, 1)]
    while stack:
        prefix, node, depth = stack.pop()
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict) and value:
                if depth >= max_depth:
                    if "json_depth_limit" not in errors:
                        errors.append("json_depth_limit")
                    out[name] = _scalar(value)
                else:
                    stack.append((name + ".", value, depth + 1))
            else:
                out[name] = value
    return out


def map_keys(kv: dict[str, Any], fmt: str, raw: str, ref: datetime, max_attributes: int,
             errors: list[str], *, message_keys: tuple[str, ...] = _MESSAGE_KEYS,
             time_keys: tuple[str, ...] = _TIME_KEYS) -> Parsed:
    """Map a flat key/value record onto a Parsed: message, level, time, ECS fields, attributes.

    ``raw`` is the message when none of ``message_keys`` holds a string.
    """
    used: set[str] = set()
    message = None
    for k in message_keys:
        v = kv.get(k)
        if isinstance(v, str):
            message = v
            used.add(k)
            break
    level = None
    for k in _LEVEL_KEYS:
        if k in kv:
            v = kv[k]
            # kept as written (ECS log.level); any short text under a level key is a level
            if type(v) is str and 0 < len(v) <= 32 or normalize_level(v) is not None:
                level = v if type(v) is str else str(v)
                used.add(k)
                break
    timestamp = None
    for k in time_keys:
        if k in kv:
            timestamp, err = parse_timestamp(kv[k], ref)
            if timestamp or err == "timestamp_out_of_range":
                used.add(k)
                if err:
                    errors.append(err)
                break
    fields: dict[str, Any] = {}
    caller = kv.get("caller")
    if isinstance(caller, str) and ":" in caller:
        file, _, line = caller.rpartition(":")
        put(fields, ("log", "origin", "file", "name"), file)
        if to_int(line) is not None:
            put(fields, ("log", "origin", "file", "line"), int(line))
        used.add("caller")
    attributes: dict[str, Any] = {}
    ecs = _ECS.get
    for k, v in kv.items():
        if k in used:
            continue
        path = ecs(k)
        if path is not None and v is not None and not isinstance(v, (dict, list)):
            if k in _INT_KEYS:
                v = v if isinstance(v, int) and not isinstance(v, bool) else to_int(str(v))
                if v is None:
                    continue
            put(fields, path, _scalar(v))
            continue
        if len(attributes) >= max_attributes:
            if "attributes_limit" not in errors:
                errors.append("attributes_limit")
            continue
        # (_scalar inlined for the usual short string)
        attributes[k] = v if type(v) is str and len(v) <= _MAX_VALUE_CHARS else _scalar(v)
    if attributes:
        fields["attributes"] = attributes
    parsed = Parsed(fmt, raw if message is None else message, timestamp, level, fields, errors)
    attach_stack_trace(parsed)
    return parsed


def parse_json(line: str, ref: datetime, max_depth: int, max_attributes: int) -> Parsed | None:
    """A JSON object line, or None when the line is not one."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    errors: list[str] = []
    for value in obj.values():
        if isinstance(value, dict) and value:
            obj = flatten(obj, max_depth, errors)
            break
    # (else already flat: its keys are those flatten would give, in the same order)
    return map_keys(obj, "json", line, ref, max_attributes, errors)


def _key_ok(key: str) -> bool:
    """A logfmt key: printable, no whitespace or quote (``tag#prod``, ``a.b/c``, ``@t`` are fine)."""
    if key in _GOOD_KEYS:
        return True
    ok = 0 < len(key) <= 128 and key.isprintable() and '"' not in key and " " not in key
    if ok:
        if len(_GOOD_KEYS) >= _MAX_GOOD_KEYS:
            _GOOD_KEYS.clear()
        _GOOD_KEYS.add(key)
    return ok


# Keys already found valid (logfmt keys repeat line after line); cleared when full.
_GOOD_KEYS: set[str] = set()
_MAX_GOOD_KEYS = 4096


def _quoted(text: str, j: int) -> tuple[str, int]:
    """The text of a quoted value starting at ``j`` (escaped quotes kept escaped) and the index
    of its closing quote (-1 when there is none)."""
    parts = []
    while True:
        q = text.find('"', j)
        if q < 0:
            return "", -1
        bs = q
        while bs > j and text[bs - 1] == "\\":
            bs -= 1
        if (q - bs) % 2 == 0:
            parts.append(text[j:q])
            return "".join(parts), q
        parts.append(text[j:q + 1])
        j = q + 1


def _unquote(value: str) -> str:
    return value.replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t") \
        .replace("\\\\", "\\")


def _add(out: dict[str, Any], key: str, value: Any) -> None:
    """A repeated key collects its values in a list."""
    old = out.get(key, _ABSENT)
    if old is _ABSENT:
        out[key] = value
    elif isinstance(old, list):
        old.append(value)
    else:
        out[key] = [old, value]


_ABSENT = object()


def scan_logfmt(text: str, min_pairs: int = 2, max_pairs: int = 512) -> dict[str, Any] | None:
    """``key=value key2="quoted \\" value" flag`` pairs; None unless the whole text is such
    pairs. A bare key (``flag``) is ``True``; at least ``min_pairs`` real pairs, and no more
    bare keys than pairs (so a sentence with one ``=`` stays text)."""
    out: dict[str, Any] = {}
    i, n = 0, len(text)
    pairs = bare = 0
    while i < n:
        while i < n and text[i] == " ":
            i += 1
        if i >= n:
            break
        if pairs + bare >= max_pairs:
            return None
        if text[i] == '"':  # a quoted key: "zork one"=zoog
            key, q = _quoted(text, i + 1)
            if q < 0 or text[q + 1:q + 2] != "=":
                return None
            eq = q + 1
        else:
            eq = text.find("=", i)
            sp = text.find(" ", i)
            if eq < 0 or (0 <= sp < eq):  # a bare key
                end = n if sp < 0 else sp
                key = text[i:end]
                if not pairs or not _key_ok(key):
                    return None
                _add(out, key, True)
                bare += 1
                i = end
                continue
            key = text[i:eq]
            if key not in _GOOD_KEYS and not _key_ok(key):
                return None
        i = eq + 1
        if i < n and text[i] == '"':
            j = i + 1
            q = text.find('"', j)
            if q < 0:
                return None
            if q == j or text[q - 1] != "\\":  # the usual case: no escaped quote
                value = text[j:q]
            else:
                value, q = _quoted(text, j)
                if q < 0:
                    return None
            if "\\" in value:
                value = _unquote(value)
            i = q + 1
            if i < n and text[i] != " ":
                return None
        else:
            end = text.find(" ", i)
            end = n if end < 0 else end
            value = text[i:end]
            i = end
        if key in out:
            _add(out, key, value)
        else:
            out[key] = value
        pairs += 1
    if pairs < min_pairs or bare > pairs:
        return None
    return out


def scan_kv(text: str, kv: str = "=", sep: str = " ", *, standalone: bool = True,
            max_pairs: int = 512) -> tuple[dict[str, Any], int, int] | None:
    """Key/value pairs with any delimiters (``a:1, b:"x y", flag``): (pairs, number of real
    pairs, number of bare keys), or None when the text is not such pairs. Quoted keys and
    values take ``\\"`` escapes; whitespace around keys and values is dropped."""
    if not kv or not sep:
        raise ValueError("key/value and field delimiters must not be empty")
    out: dict[str, Any] = {}
    i, n, lk, ls = 0, len(text), len(kv), len(sep)
    pairs = bare = 0
    while i < n:
        while i < n and (text[i] == " " or text.startswith(sep, i)):
            i += ls if text.startswith(sep, i) else 1
        if i >= n:
            break
        if pairs + bare >= max_pairs:
            return None
        if text[i] == '"':
            key, q = _quoted(text, i + 1)
            if q < 0:
                return None
            key = _unquote(key) if "\\" in key else key
            i = q + 1
            while i < n and text[i] == " ":
                i += 1
            if not text.startswith(kv, i):
                if not standalone:
                    return None
                _add(out, key, True)
                bare += 1
                continue
        else:
            e = text.find(kv, i)
            s = text.find(sep, i)
            if e < 0 or (0 <= s < e):
                end = n if s < 0 else s
                key = text[i:end].strip()
                if not standalone or not key or " " in key:
                    return None
                _add(out, key, True)
                bare += 1
                i = end
                continue
            key = text[i:e].strip()
            if not key or " " in key:  # (a key with spaces is quoted)
                return None
            i = e
        i += lk
        while i < n and text[i] == " " and not text.startswith(sep, i):
            i += 1
        if i < n and text[i] == '"':
            value, q = _quoted(text, i + 1)
            if q < 0:
                return None
            if "\\" in value:
                value = _unquote(value)
            i = q + 1
        else:
            end = text.find(sep, i)
            end = n if end < 0 else end
            value = text[i:end].strip()
            i = end
        _add(out, key, value)
        pairs += 1
    return out, pairs, bare


def parse_logfmt(line: str, ref: datetime, max_attributes: int) -> Parsed | None:
    """A logfmt line (logrus text output included), or None."""
    kv = scan_logfmt(line) if _separator(line) is None else _scan_delimited(line)
    if kv is None:
        return None
    fmt = "logrus" if next(iter(kv)) == "time" and "level" in kv and "msg" in kv else "logfmt"
    return map_keys(kv, fmt, line, ref, max_attributes, [])


def _separator(line: str) -> str | None:
    """The field delimiter of a ``k=v`` line when it is not a space (``a=1, b=2``, ``a=1;b=2``,
    ``a=1,b=2``), judged from the first pair; None for plain logfmt."""
    eq = line.find("=", 0, 256)
    if eq < 0:
        return None
    sp = line.find(" ", eq, 1024)
    if line[eq + 1:eq + 2] != '"' and sp > 0 and line[sp - 1] not in ",;" \
            and line.find(",", eq, sp) < 0 and line.find(";", eq, sp) < 0:
        return None  # the usual logfmt: the first value ends at a space
    j = eq + 1
    if line[j:j + 1] == '"':
        q = line.find('"', j + 1)
        while q > 0 and line[q - 1] == "\\":
            q = line.find('"', q + 1)
        if q < 0:
            return None
        c = line[q + 1:q + 2]
    else:
        ends = [k for k in (line.find(" ", j, j + 1024), line.find(",", j, j + 1024),
                            line.find(";", j, j + 1024)) if k >= 0]
        if not ends:
            return None
        c = line[min(ends)]
    if c in ",;":
        nxt = line.find("=", eq + 1)
        return None if nxt < 0 else c
    return None


def _scan_delimited(line: str) -> dict[str, Any] | None:
    sep = _separator(line) or " "
    got = scan_kv(line, "=", sep)
    if got is None:
        return None
    kv, pairs, bare = got
    return kv if pairs >= 2 and bare <= pairs else None


def parse_colon_kv(line: str, ref: datetime, max_attributes: int,
                   delimited: bool = True) -> Parsed | None:
    """``key:value`` pairs separated by commas or semicolons (``env:prod,service:api,beta``),
    or by spaces when every token is such a pair (``level:info user:bob``); None otherwise, so
    text like ``Error: x, y`` or ``user:bob logged in`` stays text."""
    if delimited:
        comma = line.find(",", 0, 512)
        semi = line.find(";", 0, 512)
        sep = "," if semi < 0 or 0 <= comma < semi else ";"
        got = scan_kv(line, ":", sep)
    else:
        got = scan_kv(line, ":", " ", standalone=False)
    if got is None:
        return None
    kv, pairs, bare = got
    if pairs < 2 or bare > pairs or (not delimited and any(v == "" for v in kv.values())):
        return None
    return map_keys(kv, "logfmt", line, ref, max_attributes, [])
