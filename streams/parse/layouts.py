"""Text layouts: klog, access and error logs of nginx/Apache, syslog (RFC 3164/5424), the
default layouts of Python logging, logback/log4j/Spring Boot, zap console, and plain text.

Each ``parse_*`` returns a Parsed or None (not this format). Every regex is anchored and
bounded (``{m,n}`` quantifiers over disjoint classes, ``.*`` only at the end), so matching is
linear in the line length.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson

from .levels import SYSLOG_SEVERITY, TEXT_LEVEL_WORDS, normalize_level
from .model import Parsed, put, to_int
from .stacktrace import attach_stack_trace
from .structured import map_keys, scan_logfmt
from .timestamps import leading_timestamp, parse_timestamp

_KLOG = re.compile(
    r"([IWEF])(\d{4} \d{2}:\d{2}:\d{2}\.\d{6}) {1,16}(\d{1,10}) ([^:\] ]{1,256}):(\d{1,7})\] ?(.*)", re.DOTALL)
_ACCESS = re.compile(
    r"([^ ]{1,256}) ([^ ]{1,256}) ([^ ]{1,256}) \[([^\]]{1,64})\] \"((?:[^\"\\]|\\.){0,8192})\" "
    r"(\d{3}) (\d{1,19}|-)(?: \"((?:[^\"\\]|\\.){0,8192})\" \"((?:[^\"\\]|\\.){0,8192})\")?(.*)", re.DOTALL)
# _ACCESS for lines without a backslash, where its escape alternatives can never match: the
# same matches, without the per-character alternation.
_ACCESS_PLAIN = re.compile(
    r"([^ ]{1,256}) ([^ ]{1,256}) ([^ ]{1,256}) \[([^\]]{1,64})\] \"([^\"\\]{0,8192})\" "
    r"(\d{3}) (\d{1,19}|-)(?: \"([^\"\\]{0,8192})\" \"([^\"\\]{0,8192})\")?(.*)", re.DOTALL)
_DURATION = re.compile(r"(?:rt=|request_time=)?(\d{1,9}\.\d{1,9})")
_APACHE_ERROR = re.compile(
    r"\[([^\]]{1,64})\] \[(?:([\w-]{1,64}):)?(\w{1,16})\](?: \[pid (\d{1,10})(?::tid (\d{1,24}))?\])?"
    r"(?: \[client ([^\]]{1,256})\])? ?(.*)", re.DOTALL)
_NGINX_ERROR = re.compile(r" \[(\w{1,10})\] (\d{1,10})#(\d{1,20}): (?:\*(\d{1,20}) )?(.*)", re.DOTALL)
_NGINX_CLIENT = re.compile(r", client: ([^ ,]{1,256})")
_SYSLOG_REST = re.compile(r" ([^ ]{1,255}) ([^ \[\]:]{1,128})(?:\[(\d{1,10})\])?: ?(.*)", re.DOTALL)
_SYSLOG_5424 = re.compile(
    r"<(\d{1,3})>(\d{1,2}) ([^ ]{1,64}) ([^ ]{1,255}) ([^ ]{1,48}) ([^ ]{1,128}) ([^ ]{1,32}) ?(.*)", re.DOTALL)
_PY_DEFAULT = re.compile(r" - ([^ ]{1,256}) - ([A-Z]{4,8}) - (.*)", re.DOTALL)
_PY_BASIC = re.compile(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL):([^:]{0,256}):(.*)", re.DOTALL)
_LOGBACK = re.compile(r" \[([^\]]{1,256})\] ([A-Z]{4,5}) {1,2}([^ ]{1,512}) - (.*)", re.DOTALL)
_LOG4J = re.compile(r" {1,2}([A-Z]{4,5}) {1,2}\[([^\]]{1,256})\] ([^ ]{1,512}): (.*)", re.DOTALL)
_SPRING = re.compile(
    r" {1,3}([A-Z]{4,5}) (\d{1,10}) --- (?:\[[^\]]{0,256}\] )?\[ {0,64}([^\]]{0,256})\] "
    r"([^ ]{1,512}) {0,256}: (.*)", re.DOTALL)
_CALLER = re.compile(r"[\w./@-]{1,256}:\d{1,7}")


def _ts(text: str, ref: datetime, errors: list[str]) -> datetime | None:
    dt, err = parse_timestamp(text, ref)
    if err and err != "timestamp_invalid":
        errors.append(err)
    return dt


def _done(parsed: Parsed) -> Parsed:
    if "\n" in parsed.message:
        attach_stack_trace(parsed)
    return parsed


def parse_klog(line: str, ref: datetime) -> Parsed | None:
    """klog/glog: ``I1125 10:00:00.123456   1 file.go:123] msg`` (structured klog too)."""
    m = _KLOG.match(line)
    if not m:
        return None
    letter, stamp, pid, file, line_no, message = m.groups()
    errors: list[str] = []
    dt = _ts(stamp, ref, errors)
    fields: dict[str, Any] = {"process": {"pid": int(pid)},
                              "log": {"origin": {"file": {"name": file, "line": int(line_no)}}}}
    if message.startswith('"'):
        # Structured klog: "msg" key="value" key2=value
        kv = scan_logfmt("msg=" + message, min_pairs=1)
        if kv is not None:
            message = kv.pop("msg")
            if kv:
                fields["attributes"] = kv if len(kv) <= 128 else dict(list(kv.items())[:128])
    return _done(Parsed("klog", message, dt, normalize_level(letter), fields, errors))


def parse_access(line: str, ref: datetime) -> Parsed | None:
    """Combined (-> nginx_access, nginx's default) or common (-> apache_access) log format."""
    m = (_ACCESS if "\\" in line else _ACCESS_PLAIN).match(line)
    if not m:
        return None
    address, _, user, stamp, request, status, size, referrer, agent, tail = m.groups()
    errors: list[str] = []
    # Built in the order (and with the nesting) ``put`` would give, field by field.
    fields: dict[str, Any] = {"source": {"address": address}}
    if user != "-":
        fields["user"] = {"name": user}
    http: dict[str, Any] = {}
    parts = request.split(" ")
    if len(parts) == 3 and parts[0].isupper():
        method, target, proto = parts
        http["request"] = {"method": method}
        fields["http"] = http
        url = fields["url"] = {"original": target, "path": target.split("?", 1)[0]}
        if target.find("?") > 0:
            url["query"] = target.split("?", 1)[1]
        if proto.startswith("HTTP/"):
            http["version"] = proto[5:]
    elif request and request != "-":
        fields["url"] = {"original": request}
    code = int(status)
    response: dict[str, Any] = {"status_code": code}
    http["response"] = response
    fields.setdefault("http", http)
    if size != "-":
        response["body"] = {"bytes": int(size)}
    if referrer is not None:
        if referrer != "-":
            http.setdefault("request", {})["referrer"] = referrer
        if agent != "-":
            fields["user_agent"] = {"original": agent}
    for token in tail.split(" ")[:16]:
        d = _DURATION.fullmatch(token)
        if d:
            fields["event"] = {"duration": int(float(d[1]) * 1e9)}
            break
    fmt = "nginx_access" if referrer is not None else "apache_access"
    message = f"{request} {status}"
    return Parsed(fmt, message, _ts(stamp, ref, errors), _status_level(code), fields, errors)


def _status_level(status: int) -> str:
    return "error" if status >= 500 else "warn" if status >= 400 else "info"


def parse_apache_error(line: str, ref: datetime) -> Parsed | None:
    """``[Wed Nov 25 10:00:00.123 2026] [core:error] [pid 1:tid 2] [client 1.2.3.4:5] msg``."""
    m = _APACHE_ERROR.match(line)
    if not m:
        return None
    level = normalize_level(m[3])
    if level is None:
        return None
    errors: list[str] = []
    fields: dict[str, Any] = {}
    if m[2]:
        put(fields, ("log", "logger"), m[2])
    if m[4]:
        put(fields, ("process", "pid"), int(m[4]))
    if m[5]:
        put(fields, ("process", "thread", "id"), int(m[5]))
    if m[6]:
        put(fields, ("source", "address"), m[6].rsplit(":", 1)[0] if m[6].count(":") == 1 else m[6])
    return _done(Parsed("apache_error", m[7], _ts(m[1], ref, errors), level, fields, errors))


def _after_timestamp(line: str, dt: datetime | None, end: int, ref: datetime,
                     errors: list[str]) -> Parsed | None:
    """Layouts that start with a timestamp: zap, python, logback/log4j/spring, nginx error, syslog."""
    rest = line[end:]
    if rest.startswith("\t"):
        return _zap(rest, dt, errors, ref)
    if not rest.startswith(" "):  # each layout below starts with a space
        return None
    # The character after the space rules layouts out: " - " python, " [" logback and nginx
    # error, a space or an upper-case letter log4j and spring.
    c = rest[1:2]
    if c == "-":
        m = _PY_DEFAULT.match(rest)
        if m:
            level = normalize_level(m[2])
            if level:
                return _done(Parsed("python", m[3], dt, level, {"log": {"logger": m[1]}}, errors))
    elif c == "[":
        m = _LOGBACK.match(rest)
        if m:
            level = normalize_level(m[2])
            if level:
                return _done(Parsed("logback", m[4], dt, level, {"log": {"logger": m[3]},
                                    "process": {"thread": {"name": m[1]}}}, errors))
        m = _NGINX_ERROR.match(rest)
        if m:
            level = normalize_level(m[1])
            if level:
                fields: dict[str, Any] = {"process": {"pid": int(m[2]), "thread": {"id": int(m[3])}}}
                if m[4]:
                    put(fields, ("http", "connection_id"), int(m[4]))
                client = _NGINX_CLIENT.search(m[5])
                if client:
                    put(fields, ("source", "address"), client[1])
                return _done(Parsed("nginx_error", m[5], dt, level, fields, errors))
    else:
        m = _LOG4J.match(rest)
        if m:
            level = normalize_level(m[1])
            if level:
                return _done(Parsed("logback", m[4], dt, level, {"log": {"logger": m[3]},
                                    "process": {"thread": {"name": m[2]}}}, errors))
        m = _SPRING.match(rest)
        if m:
            level = normalize_level(m[1])
            if level:
                return _done(Parsed("logback", m[5], dt, level, {
                    "log": {"logger": m[4]},
                    "process": {"pid": int(m[2]), "thread": {"name": m[3]}}}, errors))
    if "T" in line[:end]:
        m = _SYSLOG_REST.match(rest)
        if m:
            return _syslog_3164(m, dt, None, errors)
    return None


def _zap(rest: str, dt: datetime | None, errors: list[str], ref: datetime) -> Parsed | None:
    """zap console: ``ts<TAB>LEVEL<TAB>[logger<TAB>][caller<TAB>]msg[<TAB>{json}]``."""
    parts = rest[1:].split("\t")
    level = normalize_level(parts[0])
    if level is None or len(parts) < 2:
        return None
    parts = parts[1:]
    fields: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    if len(parts) > 1 and parts[-1].startswith("{"):
        try:
            extra = orjson.loads(parts[-1])
        except orjson.JSONDecodeError:
            extra = None
        if isinstance(extra, dict):
            parts.pop()
            sub = map_keys(extra, "zap", "", ref, 128, errors)
            fields.update(sub.fields)
            attributes = fields.pop("attributes", {})
    for i in range(min(2, len(parts) - 1)):
        if _CALLER.fullmatch(parts[i]):
            file, _, num = parts[i].rpartition(":")
            put(fields, ("log", "origin", "file", "name"), file)
            put(fields, ("log", "origin", "file", "line"), int(num))
            if i == 1:
                put(fields, ("log", "logger"), parts[0])
            parts = parts[i + 1:]
            break
    else:
        if len(parts) > 1 and " " not in parts[0]:
            put(fields, ("log", "logger"), parts[0])
            parts = parts[1:]
    if attributes:
        fields["attributes"] = attributes
    return _done(Parsed("zap", "\t".join(parts), dt, level, fields, errors))


def _syslog_3164(m: re.Match[str], dt: datetime | None, pri: int | None, errors: list[str]) -> Parsed:
    fields: dict[str, Any] = {"host": {"hostname": m[1]}, "process": {"name": m[2]}}
    if m[3]:
        put(fields, ("process", "pid"), int(m[3]))
    level = None
    if pri is not None:
        level = SYSLOG_SEVERITY[pri & 7]
        put(fields, ("log", "syslog", "priority"), pri)
    return _done(Parsed("syslog", m[4], dt, level, fields, errors))


def parse_syslog(line: str, ref: datetime) -> Parsed | None:
    """RFC 5424 (``<PRI>1 TS HOST APP PROCID MSGID SD MSG``) or RFC 3164 (``[<PRI>]Mmm dd hh:mm:ss HOST TAG[PID]: MSG``)."""
    errors: list[str] = []
    pri = None
    body = line
    if line.startswith("<"):
        close = line.find(">", 1, 5)
        if close < 0 or not line[1:close].isdigit():
            return None
        pri = int(line[1:close])
        if pri > 191:
            return None
        m5 = _SYSLOG_5424.match(line)
        if m5 and m5[2] != "0":
            return _syslog_5424(m5, pri, ref, errors)
        body = line[close + 1:]
    dt, end, err = leading_timestamp(body, ref)
    if not end:
        return None
    if err and err != "timestamp_invalid":
        errors.append(err)
    m = _SYSLOG_REST.match(body, end)
    if not m:
        return None
    return _syslog_3164(m, dt, pri, errors)


def _syslog_5424(m: re.Match[str], pri: int, ref: datetime, errors: list[str]) -> Parsed:
    fields: dict[str, Any] = {"log": {"syslog": {"priority": pri, "version": int(m[2])}}}
    dt = None if m[3] == "-" else _ts(m[3], ref, errors)
    for value, path in ((m[4], ("host", "hostname")), (m[5], ("process", "name")),
                        (m[7], ("event", "code"))):
        if value != "-":
            put(fields, path, value)
    pid = to_int(m[6])
    if pid is not None:
        put(fields, ("process", "pid"), pid)
    rest = m[8]
    attributes: dict[str, Any] = {}
    if rest.startswith("-"):
        rest = rest[1:]
    else:
        while rest.startswith("["):
            close = _sd_end(rest)
            if close < 0:
                errors.append("syslog_sd_invalid")
                break
            element = rest[1:close]
            sd_id, _, params = element.partition(" ")
            kv = scan_logfmt(params, min_pairs=1) if params else {}
            for k, v in (kv or {}).items():
                if len(attributes) < 128:
                    attributes[f"{sd_id}.{k}"] = v
            rest = rest[close + 1:]
    if attributes:
        fields["attributes"] = attributes
    message = rest.removeprefix(" ")
    message = message.removeprefix("\ufeff")
    return _done(Parsed("syslog", message, dt, SYSLOG_SEVERITY[pri & 7], fields, errors))


def _sd_end(text: str) -> int:
    """Index of the ``]`` closing the structured-data element at text[0], honouring quotes."""
    quoted = False
    i, n = 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == "]" and not quoted:
            return i
        i += 1
    return -1


def parse_python_basic(line: str) -> Parsed | None:
    """Python's ``logging.basicConfig()`` default: ``LEVEL:name:msg``."""
    m = _PY_BASIC.match(line)
    if not m:
        return None
    fields = {"log": {"logger": m[2]}} if m[2] else {}
    return _done(Parsed("python", m[3], None, normalize_level(m[1]), fields, []))


def parse_text(line: str, ref: datetime) -> Parsed:
    """Anything else: a leading timestamp when there is one, then a level word if present."""
    errors: list[str] = []
    dt, end, err = leading_timestamp(line, ref)
    if err and err != "timestamp_invalid":
        errors.append(err)
    if end:
        structured = _after_timestamp(line, dt, end, ref, errors)
        if structured is not None:
            return structured
    level, message = _level_word(line, end)
    return _done(Parsed("text", message, dt, level, {}, errors))


def _level_word(line: str, start: int) -> tuple[str | None, str]:
    """A level word among the first tokens after ``start``. The message is what follows the
    level when it comes first in upper case or brackets, else everything after the timestamp."""
    rest = line[start:].lstrip(" \t") if start else line
    tokens = rest[:200].split(" ", 4)
    for i, tok in enumerate(tokens[:4]):
        word = tok.strip("[]():|<>")
        if word.lower() in TEXT_LEVEL_WORDS and (word.isupper() or i == 0 or tok != word):
            if i == 0 and (word.isupper() or tok[0] in "[(<"):
                return normalize_level(word), rest[len(tok):].lstrip(" ")
            return normalize_level(word), rest
    return None, rest
