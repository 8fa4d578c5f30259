"""Text layouts: klog/glog, access and error logs of nginx/Apache (ingress-nginx's upstream-info
too), syslog (RFC 3164 and its common variants, RFC 5424 with structured data), the default
layouts of Python logging, logback/log4j/Spring Boot, zap console, and plain text.

Each ``parse_*`` returns a Parsed or None (not this format). Every regex is anchored and
bounded (``{m,n}`` quantifiers over disjoint classes, ``.*`` only at the end), so matching is
linear in the line length. Levels are kept as written (``Parsed.level``); a normalized
``Parsed.severity`` is set only where the format gives one without a level word.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from .levels import SYSLOG_FACILITY_NAMES, SYSLOG_SEVERITY_NAMES, TEXT_LEVEL_WORDS, normalize_level
from .model import Parsed, put, to_int
from .stacktrace import attach_stack_trace
from .structured import map_keys, parse_json, parse_logfmt, scan_logfmt
from .timestamps import check_range, leading_timestamp, parse_timestamp

# klog (mmdd) and glog (yyyymmdd): ``Lmmdd hh:mm:ss.uuuuuu threadid file:line] msg``.
_KLOG = re.compile(
    r"([IWEF])(\d{4}|\d{8}) (\d{2}):(\d{2}):(\d{2})\.(\d{6}) {1,16}(\d{1,10}) "
    r"([^:\]]{1,256}):(\d{1,7})\] ?(.*)", re.DOTALL)
# Common and combined log format; the client may be a comma-separated list (X-Forwarded-For).
_Q = r'"((?:[^"\\]|\\.){0,8192})"'
_QP = r'"([^"\\]{0,8192})"'
_ACCESS_TMPL = (
    r"((?:[^ ,]{1,256}, ){0,16}[^ ]{1,256}) ([^ ]{1,256}) ([^ ]{1,256}) \[([^\]]{1,64})\] Q "
    r"(\d{3}|-) (\d{1,19}|-)(?: (?:Q|(-)) (?:Q|(-)))?(.*)")
_ACCESS = re.compile(_ACCESS_TMPL.replace("Q", _Q), re.DOTALL)
# _ACCESS for lines without a backslash, where its escape alternatives can never match: the
# same matches, without the per-character alternation.
_ACCESS_PLAIN = re.compile(_ACCESS_TMPL.replace("Q", _QP), re.DOTALL)
# ingress-nginx upstreaminfo after the user agent: request length and time, upstream name(s),
# then upstream address, response length, time and status (each may be a ", " list), request id.
_UPSTREAMINFO = re.compile(
    r" {1,4}(\d{1,19}) (\d{1,9}(?:\.\d{1,9})?) \[([^\]]{0,512})\](?: \[([^\]]{0,512})\])? (.*)", re.DOTALL)
_TAIL_SPLIT = re.compile(r"(?<!,) ")
_QUOTED_TAIL = re.compile(r' {1,4}"([^"]{0,8192})"')
_DURATION = re.compile(r"(?:rt=|request_time=)?(\d{1,9}\.\d{1,9})")
_FLOAT = re.compile(r"\d{1,12}(?:\.\d{1,9})?")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_IPV6 = re.compile(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?::\d{1,3}(?:\.\d{1,3}){3})?(?:%[\w.]{1,16})?")
_APACHE_ERROR = re.compile(
    r"\[([^\]]{1,64})\] \[(?:([^\]:]{1,64}):)?(\w{1,16})\](?: \[pid (\d{1,10})(?::tid (\d{1,24}))?\])?"
    r"(?: \[client ([^\]]{1,256})\])? ?(.*)", re.DOTALL)
# Apache 2.4's default ErrorLogFormat puts ``%7F: %E: `` (source file, error status) before
# ``[client %a]``: ``(13)Permission denied: [client ::1:58619] AH00035: access denied``.
_APACHE_LATE_CLIENT = re.compile(r"([^\[]{0,512}?) ?\[client ([^\]]{1,256})\] ?(.*)", re.DOTALL)
_APACHE_REFERER = re.compile(r", referer:? ([^ ]{1,4096})$")
_NGINX_ERROR = re.compile(r" \[(\w{1,10})\] (\d{1,10})#(\d{1,20}): (?:\*(\d{1,20}) )?(.*)", re.DOTALL)
# nginx error context: ``, client: 1.2.3.4, server: x, request: "GET / HTTP/1.1", host: "x"``.
_NGINX_CONTEXT = re.compile(r', (client|server|request|subrequest|upstream|host|referrer|referer|port): '
                            r'(?:"((?:[^"\\]|\\.){0,8192})"|([^,]{0,1024}))')
_NGINX_TAIL = re.compile(
    r', client: ([^, ]{1,256})(?:, server: ([^,]{0,256}))?(?:, request: "((?:[^"\\]|\\.){0,8192})")?'
    r'(?:, upstream: "([^"]{0,8192})")?(?:, host: "([^"]{0,1024})")?(?:, referrer: "([^"]{0,8192})")?$')
_NGINX_EXCESS = re.compile(r'(.*), excess: ([0-9.]{1,32}) by zone "([^"]{0,256})"$', re.DOTALL)
# RFC 5424 after ``<PRI>``: VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] [MSG].
_SYSLOG_5424 = re.compile(
    r"(\d{1,2}) ([^ ]{1,64}) ([^ ]{1,255}) ([^ ]{1,48}) ([^ ]{1,128}) ([^ ]{1,32})(?: (.*))?", re.DOTALL)
# RFC 3164 tag: ``app[pid]:`` or ``app:`` (an app name may hold ``:`` and ``/``, as Docker's
# ``{{.ImageName}}/{{.Name}}`` does), followed by a space or the end.
_TAG = re.compile(r"([^ \[\]]{1,256}?)(?:\[([^\]]{0,64})\])?:(?: |$)")
_TAG_BARE = re.compile(r"([^ \[\]:]{1,256})(?:\[([^\]]{0,64})\])?(?: |$)")
_HOST = re.compile(r"[\w.:-]{1,255}")
_PY_DEFAULT = re.compile(r" - ([^ ]{1,256}) - ([A-Z]{4,8}) - (.*)", re.DOTALL)
_PY_BASIC = re.compile(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL):([^:]{0,256}):(.*)", re.DOTALL)
_LOGBACK = re.compile(r" \[([^\]]{1,256})\] ([A-Z]{4,5}) {1,2}([^ ]{1,512}) - (.*)", re.DOTALL)
_LOG4J = re.compile(r" {1,2}([A-Z]{4,5}) {1,2}\[([^\]]{1,256})\] ([^ ]{1,512}): (.*)", re.DOTALL)
_SPRING = re.compile(
    r" {1,3}([A-Z]{4,5}) (\d{1,10}) --- (?:\[[^\]]{0,256}\] )?\[ {0,64}([^\]]{0,256})\] "
    r"([^ ]{1,512}) {0,256}: (.*)", re.DOTALL)
_CALLER = re.compile(r"[\w./@-]{1,256}:\d{1,7}")


_DAY = timedelta(days=1)


def _ts(text: str, ref: datetime, errors: list[str]) -> datetime | None:
    dt, err = parse_timestamp(text, ref)
    if err and err != "timestamp_invalid":
        errors.append(err)
    return dt


def _done(parsed: Parsed) -> Parsed:
    if "\n" in parsed.message:
        attach_stack_trace(parsed)
    return parsed


def is_ip(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address (a cheap syntactic check)."""
    if not text:
        return False
    if "." in text and ":" not in text:
        return _IPV4.fullmatch(text) is not None
    if ":" not in text or _IPV6.fullmatch(text) is None:
        return False
    try:  # (the syntax is subtle: "2001:db8:" is not an address, "::1" is)
        ipaddress.IPv6Address(text.partition("%")[0])
    except ValueError:
        return False
    return True


def split_host_port(text: str) -> tuple[str, int | None]:
    """``1.2.3.4:80`` / ``[::1]:80`` -> (host, port); anything else -> (text, None)."""
    if text.startswith("["):
        close = text.find("]")
        if close > 0:
            return text[1:close], to_int(text[close + 2:]) if text[close + 1:close + 2] == ":" else None
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        p = to_int(port)
        if p is not None:
            return host, p
    return text, None


def set_endpoint(fields: dict[str, Any], ns: str, address: str, port: int | None = None,
                 also: str | None = None) -> None:
    """``<ns>.address`` (as written), ``<ns>.ip`` (when an IP) and ``<ns>.port`` (and the same
    under ``also``: a web server's client is the source of its traffic)."""
    node: dict[str, Any] = {"address": address}
    if is_ip(address):
        node["ip"] = address
    if port is not None:
        node["port"] = port
    fields[ns] = node
    if also is not None:
        fields[also] = node.copy()


def _client_list(fields: dict[str, Any], address: str) -> None:
    """The client of an access log: one address or an X-Forwarded-For style list (the first
    entry is the original client; the whole list is kept as written in ``source.address``)."""
    if ", " in address:
        first = address.split(", ", 1)[0]
        node: dict[str, Any] = {"address": address}
        if is_ip(first):
            node["ip"] = first
        fields["source"] = node
        fields["client"] = {"address": first, **({"ip": first} if is_ip(first) else {})}
        return
    set_endpoint(fields, "source", address)


def _request(fields: dict[str, Any], http: dict[str, Any], request: str) -> None:
    """``METHOD target HTTP/x`` -> http.request.method, url.*, http.version."""
    parts = request.split(" ")
    if 2 <= len(parts) <= 3 and parts[0].isalpha() and parts[0].isupper():
        http["request"] = {"method": parts[0]}
        target = parts[1]
        q = target.find("?")
        url = fields["url"] = {"original": target, "path": target if q < 0 else target[:q]}
        if q >= 0:
            url["query"] = target[q + 1:]
        if len(parts) == 3 and parts[2].startswith("HTTP/"):
            http["version"] = parts[2][5:]
    elif request and request != "-":
        fields["url"] = {"original": request}


def _unescape(text: str) -> str:
    return text.replace('\\"', '"').replace("\\\\", "\\") if "\\" in text else text


def parse_klog(line: str, ref: datetime) -> Parsed | None:
    """klog ``I1125 10:00:00.123456   1 file.go:123] msg`` and glog's 8-digit date
    ``I20250131 14:48:54.411655 15520 main.cc:9] msg`` (structured klog too)."""
    m = _KLOG.match(line)
    if not m:
        return None
    letter, date, hh, mi, ss, us, tid, file, line_no, message = m.groups()
    errors: list[str] = []
    try:
        if len(date) == 8:
            dt = datetime(int(date[:4]), int(date[4:6]), int(date[6:]), int(hh), int(mi),
                          int(ss), int(us), tzinfo=UTC)
        else:  # klog has no year: the reference's, or the year before if that is in the future
            dt = datetime(ref.year, int(date[:2]), int(date[2:]), int(hh), int(mi), int(ss),
                          int(us), tzinfo=UTC)
            if dt > ref + _DAY:
                dt = dt.replace(year=ref.year - 1)
        dt, err = check_range(dt, ref)
        if err:
            errors.append(err)
    except ValueError:
        dt = None
    pid = int(tid)
    # klog writes the process id there, glog the thread id: both names carry it.
    fields: dict[str, Any] = {"process": {"pid": pid, "thread": {"id": pid}},
                              "log": {"origin": {"file": {"name": file, "line": int(line_no)}}}}
    message = message.rstrip()
    if message.startswith('"'):
        # Structured klog: "msg" key="value" key2=value
        kv = scan_logfmt("msg=" + message, min_pairs=1)
        if kv is not None:
            message = kv.pop("msg")
            if kv:
                fields["attributes"] = kv if len(kv) <= 128 else dict(list(kv.items())[:128])
    return _done(Parsed("klog", message, dt, letter, fields, errors))


def parse_access(line: str, ref: datetime) -> Parsed | None:
    """Common (-> apache_access) or combined (-> nginx_access) log format, with what nginx
    formats add after the user agent: ``"$http_x_forwarded_for"``, ``"$gzip_ratio"``, and
    ingress-nginx's upstream-info fields."""
    m = _ACCESS.match(line) if "\\" in line else _ACCESS_PLAIN.match(line)
    if not m:
        return None
    address, ident, user, stamp, request, status, size, referrer, r_dash, agent, _a_dash, tail = \
        m.groups()
    errors: list[str] = []
    fields: dict[str, Any] = {}
    _client_list(fields, address)
    if user != "-":
        fields["user"] = {"name": user}
    if ident != "-":
        fields["attributes"] = {"identity": ident}
    if "\\" in request:
        request = _unescape(request)
    http: dict[str, Any] = {}
    _request(fields, http, request)
    fields["http"] = http
    code = None
    if status != "-":
        code = int(status)
        response: dict[str, Any] = {"status_code": code}
        http["response"] = response
        if size != "-":
            response["body"] = {"bytes": int(size)}
    elif size != "-":
        http["response"] = {"body": {"bytes": int(size)}}
    combined = referrer is not None or r_dash is not None
    if combined:
        if referrer and referrer != "-":
            http.setdefault("request", {})["referrer"] = _unescape(referrer)
        if agent and agent != "-":
            fields["user_agent"] = {"original": _unescape(agent)}
    if tail and not tail.isspace():
        _access_tail(tail.rstrip(), fields, http)
    fmt = "nginx_access" if combined else "apache_access"
    severity = None if code is None else _status_severity(code)
    # An access log repeats its (second-resolution, zoned) time line after line.
    dt = _CLF_SEEN.get(stamp)
    if dt is None:
        dt = _ts(stamp, ref, errors)
        if dt is not None:
            if len(_CLF_SEEN) >= 1024:
                _CLF_SEEN.clear()
            _CLF_SEEN[stamp] = dt
    elif dt > ref + _DAY:  # (what check_range would say now)
        dt = None
        errors.append("timestamp_out_of_range")
    return Parsed(fmt, request or line, dt, None, fields, errors, severity)


_CLF_SEEN: dict[str, datetime] = {}


def _attrs(fields: dict[str, Any]) -> dict[str, Any]:
    a = fields.get("attributes")
    if a is None:
        a = fields["attributes"] = {}
    return a


def _number(text: str) -> int | float | str:
    if text.isdigit():
        return int(text) if len(text) <= 19 else text
    if text.replace(".", "", 1).isdigit() and len(text) <= 22:
        return float(text)
    return text


def _access_tail(tail: str, fields: dict[str, Any], http: dict[str, Any]) -> None:
    """What an nginx format logs after the user agent (nothing of it is dropped)."""
    m = _UPSTREAMINFO.match(tail)
    if m:
        length, seconds, name, alt, rest = m.groups()
        http.setdefault("request", {})["bytes"] = int(length)
        fields["event"] = {"duration": round(float(seconds) * 1e9)}
        a = _attrs(fields)
        a["request_time"] = float(seconds)
        if name:
            a["proxy_upstream_name"] = name
        if alt:
            a["proxy_alternative_upstream_name"] = alt
        names = ("upstream_addr", "upstream_response_length", "upstream_response_time",
                 "upstream_status")
        rest = rest.strip()
        tokens = _TAIL_SPLIT.split(rest) if ", " in rest else rest.split(" ")
        for key, value in zip(names, tokens, strict=False):
            if value != "-":
                a[key] = value if key == "upstream_addr" or ", " in value else _number(value)
        if len(tokens) > 4 and tokens[4] != "-":
            http.setdefault("request", {})["id"] = tokens[4]
            a["req_id"] = tokens[4]
        if len(tokens) > 5:
            a["extra"] = " ".join(tokens[5:])
        return
    pos = 0
    quoted = []
    for q in _QUOTED_TAIL.finditer(tail):
        if q.start() != pos:
            break
        quoted.append(q[1])
        pos = q.end()
    for value in quoted:
        if value == "-" or not value:
            continue
        if _FLOAT.fullmatch(value):
            _attrs(fields)["gzip_ratio"] = value  # as written ("-" when not compressed)
        else:  # $http_x_forwarded_for: "client, proxy1, proxy2"
            _attrs(fields)["http_x_forwarded_for"] = value
            first = value.split(",", 1)[0].strip()
            if is_ip(first):
                fields["network"] = {"forwarded_ip": first}
    rest = tail[pos:].strip()
    if not rest:
        return
    for token in rest.split(" ")[:16]:
        d = _DURATION.fullmatch(token)
        if d:
            fields["event"] = {"duration": round(float(d[1]) * 1e9)}
            break
    _attrs(fields)["extra"] = rest[:8192]


def _status_severity(status: int) -> str:
    return "error" if status >= 500 else "warn" if status >= 400 else "info"


def _apache_client(text: str) -> tuple[str, int | None]:
    """Apache's ``%a`` with its port: ``1.2.3.4:5151``, ``::1:58619``, ``2001:db8::7``."""
    host, port = split_host_port(text)
    if port is None and text.count(":") > 1:
        h, _, p = text.rpartition(":")
        if p.isdigit() and len(p) <= 5 and is_ip(h):
            return h, int(p)
    return host, port


def parse_apache_error(line: str, ref: datetime) -> Parsed | None:
    """``[Wed Nov 25 10:00:00.123 2026] [core:error] [pid 1:tid 2] [client 1.2.3.4:5] msg``
    (Apache 2.4) and ``[Sun Dec 04 04:47:44 2005] [error] [client 1.2.3.4] msg`` (2.2)."""
    m = _APACHE_ERROR.match(line)
    if not m:
        return None
    level = m[3]
    if normalize_level(level) is None:
        return None
    errors: list[str] = []
    fields: dict[str, Any] = {}
    if m[2]:  # the module: as Filebeat's and Logstash's ECS patterns name it, and the logger
        fields["log"] = {"logger": m[2]}
        fields["apache"] = {"error": {"module": m[2]}}
    if m[4]:
        put(fields, ("process", "pid"), int(m[4]))
    if m[5]:
        tid = to_int(m[5])
        if tid is not None:
            put(fields, ("process", "thread", "id"), tid)
    client, message = m[6], m[7].rstrip()
    if client is None and "[client " in message:
        late = _APACHE_LATE_CLIENT.match(message)
        if late:
            client = late[2]
            message = f"{late[1]} {late[3]}" if late[1] else late[3]
    if client:
        host, port = _apache_client(client)
        set_endpoint(fields, "source", host, port, also="client")
    r = _APACHE_REFERER.search(message) if ", referer" in message else None
    if r:
        put(fields, ("http", "request", "referrer"), r[1])
        message = message[:r.start()]
    return _done(Parsed("apache_error", message, _ts(m[1], ref, errors), level, fields, errors))


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
        if m and normalize_level(m[2]):
            return _done(Parsed("python", m[3], dt, m[2], {"log": {"logger": m[1]}}, errors))
    elif c == "[":
        m = _LOGBACK.match(rest)
        if m and normalize_level(m[2]):
            return _done(Parsed("logback", m[4], dt, m[2], {"log": {"logger": m[3]},
                                "process": {"thread": {"name": m[1]}}}, errors))
        m = _NGINX_ERROR.match(rest)
        if m and normalize_level(m[1]):
            fields: dict[str, Any] = {"process": {"pid": int(m[2]), "thread": {"id": int(m[3])}}}
            if m[4]:
                put(fields, ("http", "connection_id"), int(m[4]))
            message = _nginx_context(m[5].rstrip(), fields)
            return _done(Parsed("nginx_error", message, dt, m[1], fields, errors))
    else:
        m = _LOG4J.match(rest)
        if m and normalize_level(m[1]):
            return _done(Parsed("logback", m[4], dt, m[1], {"log": {"logger": m[3]},
                                "process": {"thread": {"name": m[2]}}}, errors))
        m = _SPRING.match(rest)
        if m and normalize_level(m[1]):
            return _done(Parsed("logback", m[5], dt, m[1], {
                "log": {"logger": m[4]},
                "process": {"pid": int(m[2]), "thread": {"name": m[3]}}}, errors))
    if "T" in line[:end] and rest.find(": ", 0, 600) > 0:
        # rsyslog's RFC 3339 file format: ``2026-11-25T10:00:00Z host tag: msg``
        return _syslog_3164(rest, dt, None, ref, errors, strict=True)
    return None


def _nginx_context(message: str, fields: dict[str, Any]) -> str:
    """Move nginx's trailing error context (``, client: ..., server: ..., request: "..."``,
    ``upstream``, ``host``, ``referrer``) and limit_req's ``excess`` into fields; returns the
    message without it (an unrecognized remainder stays in the message)."""
    i = message.find(", client: ")
    if i < 0:
        i = message.find(", server: ")
    head, ctx = (message, "") if i < 0 else (message[:i], message[i:])
    if ", excess: " in head:
        x = _NGINX_EXCESS.match(head)
        if x:
            head = x[1]
            a = _attrs(fields)
            a["excess"] = _number(x[2])
            a["zone"] = x[3]
    m = _NGINX_TAIL.match(ctx) if ctx.startswith(", client: ") else None
    if m is not None:  # the usual order, in one match
        client, server, request, upstream, host, referrer = m.groups()
        h, port = split_host_port(client)
        set_endpoint(fields, "source", h, port, also="client")
        if server is not None:
            fields["server"] = {"address": server}
        if request is not None:
            request = _unescape(request)
            _request(fields, fields.setdefault("http", {}), request)
            _attrs(fields)["request"] = request
        if upstream is not None:
            _attrs(fields)["upstream"] = upstream
        if host is not None:
            put(fields, ("url", "domain"), host)
        if referrer is not None:
            put(fields, ("http", "request", "referrer"), referrer)
        return head
    pos, n = 0, len(ctx)
    while pos < n:
        m = _NGINX_CONTEXT.match(ctx, pos)
        if not m:
            break
        key = m[1]
        value = m[3].strip() if m[2] is None else _unescape(m[2])
        pos = m.end()
        if key == "client":
            host, port = split_host_port(value)
            set_endpoint(fields, "source", host, port, also="client")
        elif key == "server":
            fields["server"] = {"address": value}
        elif key == "request":
            http = fields.setdefault("http", {})
            _request(fields, http, value)
            _attrs(fields)["request"] = value
        elif key == "host":
            put(fields, ("url", "domain"), value)
        elif key in ("referrer", "referer"):
            put(fields, ("http", "request", "referrer"), value)
        else:
            _attrs(fields)[key] = value
    return head if pos >= n else head + ctx[pos:]


def _zap(rest: str, dt: datetime | None, errors: list[str], ref: datetime) -> Parsed | None:
    """zap console: ``ts<TAB>LEVEL<TAB>[logger<TAB>][caller<TAB>]msg[<TAB>{json}]``."""
    parts = rest[1:].split("\t")
    level = parts[0]
    if normalize_level(level) is None or len(parts) < 2:
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


def _priority(syslog: dict[str, Any], pri: int) -> str:
    """log.syslog.priority/facility/severity of a PRI; returns the severity keyword."""
    sev = pri & 7
    name = SYSLOG_SEVERITY_NAMES[sev]
    syslog["priority"] = pri
    syslog["facility"] = {"code": pri >> 3, "name": SYSLOG_FACILITY_NAMES[pri >> 3]}
    syslog["severity"] = {"code": sev, "name": name}
    return name


def _syslog_3164(rest: str, dt: datetime | None, pri: int | None, ref: datetime,
                 errors: list[str], *, strict: bool) -> Parsed | None:
    """What follows an RFC 3164 timestamp: ``[HOSTNAME ]TAG[PID]: MSG``. ``strict`` (no PRI
    seen) wants a tag ending in ``:``; with a PRI a bare ``HOST TAG MSG`` is taken too."""
    rest = rest.lstrip(" ")
    host = None
    m = _TAG.match(rest)
    if m is None:
        sp = rest.find(" ")
        if sp > 0 and _HOST.fullmatch(rest, 0, sp):
            m = _TAG.match(rest, sp + 1)
            if m is None and not strict:
                m = _TAG_BARE.match(rest, sp + 1)
            if m is not None:
                host = rest[:sp]
        if m is None and strict:
            return None
    fields: dict[str, Any] = {}
    syslog: dict[str, Any] = {}
    if host:
        fields["host"] = {"hostname": host}
        syslog["hostname"] = host
    if m is not None:
        app, procid = m[1], m[2]
        message = rest[m.end():]
        process: dict[str, Any] = {"name": app}
        syslog["appname"] = app
        if procid:
            syslog["procid"] = procid
            pid = to_int(procid)
            if pid is not None:
                process["pid"] = pid
        fields["process"] = process
    else:
        message = rest
    level = _priority(syslog, pri) if pri is not None else None
    fields["log"] = {"syslog": syslog}
    return _inner(Parsed("syslog", message, dt, level, fields, errors), ref)


def _inner(parsed: Parsed, ref: datetime) -> Parsed:
    """A syslog message that is itself JSON or logfmt: its fields join the syslog ones (its
    message, level and time win: they are the application's own)."""
    msg = parsed.message
    c = msg[:1]
    if c == "{" or (c.isalpha() and 0 < msg.find("=", 0, 256) < (msg.find(" ", 0, 256) % 257)):
        inner = parse_json(msg, ref, 8, 128) if c == "{" else parse_logfmt(msg, ref, 128)
        if inner is not None:
            for key, value in inner.fields.items():
                if isinstance(value, dict) and isinstance(parsed.fields.get(key), dict):
                    parsed.fields[key] = {**parsed.fields[key], **value}
                else:
                    parsed.fields[key] = value
            parsed.message = inner.message
            if inner.level is not None:
                parsed.level = inner.level
            if inner.timestamp is not None:
                parsed.timestamp = inner.timestamp
            parsed.errors.extend(inner.errors)
            return parsed
    return _done(parsed)


def parse_syslog(line: str, ref: datetime) -> Parsed | None:
    """RFC 5424 (``<PRI>1 TS HOST APP PROCID MSGID SD MSG``) or RFC 3164 and its variants
    (``[<PRI>]TIMESTAMP [HOST ]TAG[PID]: MSG``; timestamps ``Mmm dd hh:mm:ss``, with a year
    before or after the time, or RFC 3339)."""
    errors: list[str] = []
    pri = None
    body = line
    if line.startswith("<"):
        close = line.find(">", 1, 5)
        if close < 2 or not line[1:close].isdigit():
            return None
        pri = int(line[1:close])
        if pri > 191:
            return None
        body = line[close + 1:]
        if body[:1].isdigit() and body[1:2] == " " or body[2:3] == " " and body[:2].isdigit():
            m5 = _SYSLOG_5424.match(body)
            if m5 and m5[1] != "0" and m5[1][0] != "0":
                return _syslog_5424(m5, pri, ref, errors)
        body = body.lstrip(" ")
    dt, end, err = leading_timestamp(body, ref)
    if err and err != "timestamp_invalid":
        errors.append(err)
    if not end:
        if pri is None:
            return None
        return _syslog_3164(body, None, pri, ref, errors, strict=False)
    return _syslog_3164(body[end:], dt, pri, ref, errors, strict=pri is None)


_SD_PARAM = re.compile(r' {0,4}([^= \]"]{1,64}) {0,4}= {0,4}(?:"((?:[^"\\]|\\.){0,8192})"|([^ \]"]{0,1024}))')
_SD_UNESCAPE = re.compile(r'\\(["\\\]])')


def _structured_data(text: str, errors: list[str]) -> tuple[dict[str, str], int]:
    """RFC 5424 STRUCTURED-DATA at ``text[0] == "["``: {"SD-ID.PARAM": value} (flat, as the
    index maps it; escapes ``\\"``, ``\\\\`` and ``\\]`` resolved) and where it ends."""
    out: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n and text[i] == "[":
        j = i + 1
        while j < n and j - i <= 64 and text[j] not in " ]":
            j += 1
        sd_id = text[i + 1:j]
        i = j
        while True:
            m = _SD_PARAM.match(text, i)
            if m is None:
                break
            value = m[3] if m[2] is None else m[2]
            if len(out) < 128:
                out[f"{sd_id}.{m[1]}"] = _SD_UNESCAPE.sub(r"\1", value) if "\\" in value else value
            i = m.end()
        while i < n and text[i] == " ":
            i += 1
        if i >= n or text[i] != "]" or not sd_id:
            errors.append("syslog_sd_invalid")
            return out, i
        i += 1
    return out, i


def _syslog_5424(m: re.Match[str], pri: int, ref: datetime, errors: list[str]) -> Parsed:
    version, stamp, host, app, procid, msgid, rest = m.groups()
    syslog: dict[str, Any] = {"version": int(version)}
    level = _priority(syslog, pri)
    fields: dict[str, Any] = {"log": {"syslog": syslog}}
    dt = None if stamp == "-" else _ts(stamp, ref, errors)
    if host != "-":
        fields["host"] = {"hostname": host}
        syslog["hostname"] = host
    if app != "-":
        fields["process"] = {"name": app}
        syslog["appname"] = app
    if procid != "-":
        syslog["procid"] = procid
        pid = to_int(procid)
        if pid is not None:
            put(fields, ("process", "pid"), pid)
    if msgid != "-":
        syslog["msgid"] = msgid
        fields["event"] = {"code": msgid}
    rest = rest or ""
    if rest.startswith("-"):
        rest = rest[1:]
    elif rest.startswith("["):
        sd, end = _structured_data(rest, errors)
        if sd:
            syslog["structured_data"] = sd
            # also where earlier versions put the parameters (searches and dashboards on them)
            fields["attributes"] = sd.copy()
        rest = rest[end:]
    message = rest.removeprefix(" ").removeprefix("\ufeff")
    return _inner(Parsed("syslog", message, dt, level, fields, errors), ref)


def parse_python_basic(line: str) -> Parsed | None:
    """Python's ``logging.basicConfig()`` default: ``LEVEL:name:msg``."""
    m = _PY_BASIC.match(line)
    if not m:
        return None
    fields = {"log": {"logger": m[2]}} if m[2] else {}
    return _done(Parsed("python", m[3], None, m[1], fields, []))


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
    """A level word among the first tokens after ``start`` (returned as written). The message
    is what follows the level when it comes first in upper case or brackets, else everything
    after the timestamp."""
    rest = line[start:].lstrip(" \t") if start else line
    tokens = rest[:200].split(" ", 4)
    for i, tok in enumerate(tokens[:4]):
        word = tok.strip("[]():|<>")
        if word.lower() in TEXT_LEVEL_WORDS and (word.isupper() or i == 0 or tok != word):
            if i == 0 and (word.isupper() or tok[0] in "[(<"):
                return word, rest[len(tok):].lstrip(" ")
            return word, rest
    return None, rest
