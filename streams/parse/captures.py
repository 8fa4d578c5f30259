"""Fields captured by a header pattern (dissect, regex with named groups, grok) -> a Parsed.

``message`` is the message; ``timestamp``/``@timestamp``/``ts``/``datetime`` (or ``date`` +
``time``, or ``month`` + ``day`` + ``time`` [+ ``year``], or ``time`` alone) set the time;
``level``/``log.level`` (and the other level keys) the level, kept as written. Dotted names
(``source.address``, grok's ``[source][address]``) become nested ECS fields, Logstash's legacy
grok names (``clientip``, ``verb``, ``response``...) their ECS fields, and the rest goes under
``attributes``. An address that is an IP also fills ``<ns>.ip``. (Legacy names are mapped for
grok only: a dissect or regex user's ``bytes`` or ``request`` may mean something else.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .layouts import is_ip
from .model import Parsed, put, to_int
from .structured import map_keys

_HEADER_TIME_KEYS = ("timestamp", "@timestamp", "ts", "datetime")
# Logstash's legacy grok names -> ECS (those of HTTPD_*LOG, SYSLOGBASE, HTTPD*_ERRORLOG).
LEGACY_GROK = {
    "clientip": "source.address", "clientport": "source.port", "auth": "user.name",
    "ident": "attributes.identity", "verb": "http.request.method", "request": "url.original",
    "httpversion": "http.version", "response": "http.response.status_code",
    "bytes": "http.response.body.bytes", "referrer": "http.request.referrer",
    "agent": "user_agent.original", "loglevel": "log.level", "program": "process.name",
    "logsource": "host.hostname", "tid": "process.thread.id",
}
_INT_FIELDS = frozenset({"source.port", "http.response.status_code", "http.response.body.bytes",
                         "process.thread.id", "process.pid"})
_ENDPOINTS = ("source", "client", "destination", "server")


def from_captures(kv: dict[str, Any], fmt: str, line: str, ref: datetime,
                  max_attributes: int = 128) -> Parsed:
    """The Parsed of a header pattern's captures ``kv`` over ``line`` (``kv`` is consumed)."""
    for legacy, ecs in LEGACY_GROK.items() if fmt == "grok" else ():
        if legacy in kv:
            value = kv.pop(legacy)
            if isinstance(value, str) and len(value) > 1 and value[0] == value[-1] == '"':
                value = value[1:-1]
            if value != "-" and ecs not in kv:
                kv[ecs] = value
    message = kv.pop("message", None)
    if "timestamp" not in kv:
        if "date" in kv and "time" in kv:
            kv["timestamp"] = f"{kv.pop('date')} {kv.pop('time')}"
        elif "month" in kv and "day" in kv and "time" in kv:
            year = kv.pop("year", "")
            kv["timestamp"] = f"{kv.pop('month')} {kv.pop('day')} {kv.pop('time')} {year}".rstrip()
        elif "time" in kv:
            kv["timestamp"] = kv.pop("time")
    nested = {k: kv.pop(k) for k in [k for k in kv if "." in k and k not in ("log.level",)]
              if not k.startswith("attributes.")}
    attrs = {k[11:]: kv.pop(k) for k in [k for k in kv if k.startswith("attributes.")]}
    parsed = map_keys(kv, fmt, line if message is None else str(message), ref, max_attributes,
                      [], message_keys=(), time_keys=_HEADER_TIME_KEYS)
    fields = parsed.fields
    for key, value in nested.items():
        if key in _INT_FIELDS and not isinstance(value, int):
            value = to_int(str(value)) if to_int(str(value)) is not None else value
        put(fields, tuple(key.split(".")), value)
    if attrs:
        fields.setdefault("attributes", {}).update(attrs)
    if parsed.level is None:  # an access log: the status says how it went
        status = (fields.get("http") or {}).get("response", {}).get("status_code")
        if isinstance(status, int) and 100 <= status <= 599:
            parsed.severity = "error" if status >= 500 else "warn" if status >= 400 else "info"
    for ns in _ENDPOINTS:
        node = fields.get(ns)
        if isinstance(node, dict) and "ip" not in node and isinstance(node.get("address"), str) \
                and is_ip(node["address"]):
            node["ip"] = node["address"]
    return parsed
