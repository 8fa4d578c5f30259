"""Splunk HTTP Event Collector (HEC) receiver: Docker's ``splunk`` log driver, Splunk logging
libraries, OpenTelemetry's and Vector's splunk_hec exporters, anything that speaks HEC.

Endpoints (aiohttp), with HEC's JSON replies ``{"text": ..., "code": n}``:

- ``POST /services/collector``, ``/services/collector/event`` and ``/event/1.0`` (what Docker's
  driver posts to): concatenated JSON objects ``{"event": ..., "time": ..., "host": ...,
  "source": ..., "sourcetype": ..., "index": ..., "fields": {...}}``; ``time`` is epoch seconds,
  a number or a string (Docker sends ``"1733212345.123456"``).
- ``POST /services/collector/raw`` (and ``/1.0``): a text body, one event per line; ``host``,
  ``source``, ``sourcetype``, ``index`` and ``time`` from the query string.
- ``GET /services/collector/health`` (and ``/1.0``): ``17 HEC is healthy``, or 503 ``18`` when
  the publisher reports Kafka unreachable.
- ``POST /services/collector/ack`` (and ``/1.0``) for a token with indexer acknowledgement:
  ``{"acks": [ids]}`` -> ``{"acks": {"id": true|false}}``.
- ``OPTIONS`` on any of them answers 200 (Docker's ``splunk-verify-connection`` probe).

Authentication: ``Authorization: Splunk <token>`` (or HTTP Basic with the token as password),
compared in constant time with the configured tokens (a file, one per line, ``TOKEN`` or
``TOKEN ack`` for indexer acknowledgement on that token as Splunk configures it per token, or
``$LOGRIVER_SPLUNK_HEC_TOKEN[_FILE]``; never a flag value). Missing: 401 code 2; not
``Splunk``/``Basic``: 401 code 3; unknown: 403 code 4; ``?token=``: 400 code 16.
Bodies may be compressed (``Content-Encoding: gzip``), bounded by ``max_body_bytes`` after
decompression (413 beyond; a body that does not decompress: 400 code 6). A request is validated whole before anything is published: a
malformed object answers 400 code 6 (``invalid-event-number``: its index), a missing or blank
``event`` 12 or 13, bad ``fields`` 15, an empty body 5, and nothing of it is published. Then
the records are published and the reply waits for Kafka's acknowledgement: success is 200
code 0, a publish failure 503 code 9 (the sender retries). With acknowledgement on for the
token (or ``ack`` for every token), a channel
(``X-Splunk-Request-Channel`` header or ``?channel=``, a GUID) is required (400 code 10 / 11)
and the reply carries ``ackId``, issued only once Kafka acknowledged; ``/ack`` reports it
true. Without, ``/ack`` answers 400 code 14. Every rejection is counted in ``errors``
under its reason (``logriver_errors_total{stage="receive_splunk"}``).

Docker's driver sends ``event`` as ``{"line": ..., "source": "stdout"|"stderr", "tag": ...,
"attrs": {...}}`` (``splunk-format=inline``; ``json`` makes ``line`` the JSON object of a line
that is JSON) or, with ``raw``, the string ``"<tag> <attrs k=v ...> <line>"``. Such events
become: message = the line (a JSON line re-serialized), stream = ``source``, ``container.*``
from the tag read with the ``docker_tag`` templates (Docker's default ``{{.ID}}`` unless
configured; several are tried in order, see ``dockertag``), ``attrs`` (the labels and environment variables the driver was told to send)
in the record's fields. A raw event whose start fits the tag template has the tag split off
the same way; its attributes stay in the message (they cannot be told from the line). Other
senders' object events are kept as their JSON text (the parser extracts their fields); the HEC
``source``/``sourcetype``/``index`` and ``fields`` go to the record's fields.

Ids. An event with a ``time`` (Docker's has microseconds): sender host + time + a hash of the
event's JSON + its occurrence within the request, so the same event posted again (a client's
retry after a lost reply, Docker re-posting its buffer after an error) keeps its id and is
indexed once, while identical events of one request stay distinct. Without a time, and on
``/raw``, the receivers' usual ids (see ``base``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from streams.ops.security import Secret, SecurityConfigError, read_secret
from streams.sources.receivers.base import content_hash
from streams.sources.receivers.dockertag import TagTemplates
from streams.sources.receivers.http import HttpReceiver
from streams.transport.records import Record, event_id

log = logging.getLogger(__name__)

TOKEN_ENV = "LOGRIVER_SPLUNK_HEC_TOKEN"
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_ACK_CHANNELS = 1024
MAX_ACKS_PER_CHANNEL = 100_000
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOCKER_KEYS = {"line", "source", "tag", "attrs"}
_decoder = json.JSONDecoder()


class HecError(Exception):
    """A request HEC refuses: HTTP status, HEC code and text, counted under ``reason``."""

    def __init__(self, reason: str, status: int, code: int, text: str, **extra: Any) -> None:
        super().__init__(text)
        self.reason, self.status, self.code, self.text, self.extra = reason, status, code, text, extra

    def response(self) -> web.Response:
        return _reply(self.status, self.code, self.text, **self.extra)


def _reply(status: int, code: int, text: str, **extra: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps({"text": text, "code": code, **extra}),
                        content_type="application/json")


def _invalid(reason: str, code: int, text: str, index: int) -> HecError:
    return HecError(reason, 400, code, text, **{"invalid-event-number": index})


# -- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HecToken:
    """An accepted token; ``ack``: indexer acknowledgement for requests made with it."""

    secret: Secret
    ack: bool = False


def load_tokens(path: str) -> list[HecToken]:
    """Tokens, one per line: ``TOKEN`` or ``TOKEN ack`` (``#`` comments and blank lines
    skipped). Errors name the line, never its text."""
    option = "--splunk-hec-tokens-file"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise SecurityConfigError(f"{option} {path}: cannot read ({reason})") from None
    tokens = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        token, *rest = line.split()
        if rest not in ([], ["ack"]):
            raise SecurityConfigError(f"{option} {path}, line {n}: expected TOKEN or TOKEN ack")
        tokens.append(HecToken(Secret(token), bool(rest)))
    if not tokens:
        raise SecurityConfigError(f"{option} {path}: no token")
    return tokens


def token_settings(tokens_file: str | None, env: Mapping[str, str] | None = None
                   ) -> list[HecToken]:
    """The accepted tokens: ``tokens_file`` and/or ``$LOGRIVER_SPLUNK_HEC_TOKEN[_FILE]``;
    raises ``SecurityConfigError`` when there is none (HEC without a token takes anything)."""
    tokens = load_tokens(tokens_file) if tokens_file else []
    single = read_secret(os.environ if env is None else env, TOKEN_ENV)
    if single:
        tokens.append(HecToken(single))
    if not tokens:
        raise SecurityConfigError(
            f"--splunk-hec needs a token: --splunk-hec-tokens-file PATH or {TOKEN_ENV}(_FILE)")
    return tokens


# -- decoding --------------------------------------------------------------------------------


def json_objects(text: str) -> list[Any]:
    """The JSON values of a body of concatenated (optionally whitespace-separated) values.
    Raises ``HecError`` (code 6) naming the index of the first that does not parse."""
    out: list[Any] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
        if pos >= end:
            return out
        try:
            obj, pos = _decoder.raw_decode(text, pos)
        except ValueError:
            raise _invalid("invalid_data", 6, "Invalid data format", len(out)) from None
        out.append(obj)


def hec_time(value: Any) -> tuple[str | None, bool]:
    """(RFC 3339 time, valid) of a HEC ``time``: epoch seconds as a number or a string."""
    if value is None:
        return None, True
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None, False
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, False
    try:
        ts = datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None, False
    return ts.isoformat(timespec="microseconds").replace("+00:00", "Z"), True


def _fields_ok(fields: Any) -> bool:
    if not isinstance(fields, dict):
        return False
    for v in fields.values():
        if isinstance(v, list):
            if not all(isinstance(x, (str, int, float)) and not isinstance(x, bool) for x in v):
                return False
        elif not isinstance(v, (str, int, float)) or isinstance(v, bool):
            return False
    return True


def _check_event(obj: Any, index: int) -> str | None:
    """The event's time (RFC 3339) or the HEC error of an event that cannot be indexed."""
    if not isinstance(obj, dict):
        raise _invalid("invalid_data", 6, "Invalid data format", index)
    if "event" not in obj:
        raise _invalid("event_missing", 12, "Event field is required", index)
    event = obj["event"]
    if event is None or (isinstance(event, str) and not event.strip()) or event in ({}, []):
        raise _invalid("event_blank", 13, "Event field cannot be blank", index)
    time, ok = hec_time(obj.get("time"))
    if not ok:
        raise _invalid("invalid_data", 6, "Invalid data format", index)
    for key in ("host", "source", "sourcetype", "index"):
        if key in obj and not isinstance(obj[key], str):
            raise _invalid("invalid_data", 6, "Invalid data format", index)
    if "fields" in obj and not _fields_ok(obj["fields"]):
        raise _invalid("fields_invalid", 15, "Error in handling indexed fields", index)
    return time


# -- the receiver ----------------------------------------------------------------------------


class SplunkHecReceiver(HttpReceiver):
    """HEC over HTTP on ``port`` (0: any free; set after ``start``). ``tokens``: the accepted
    tokens (``HecToken``, or plain strings); ``ack``: indexer acknowledgement for every token
    (else per token); ``docker_tag``: the template Docker's tags are
    read with; ``health``: returns False while the publisher cannot reach Kafka."""

    source_type = "splunk"

    def __init__(self, publisher: Any, *, tokens: Iterable[str | Secret | HecToken],
                 ack: bool = False,
                 docker_tag: str | Sequence[str] | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 health: Callable[[], bool] | None = None, **kw: Any) -> None:
        super().__init__(publisher, **kw)
        given = [t if isinstance(t, HecToken) else HecToken(Secret(t)) for t in tokens]
        self._tokens = [(t.secret.reveal().encode("utf-8"), t.ack or ack) for t in given]
        if not self._tokens or not all(t for t, _ in self._tokens):
            raise SecurityConfigError("the splunk HEC receiver needs non-empty tokens")
        self.ack = ack
        templates = [docker_tag] if isinstance(docker_tag, str) else list(docker_tag or [])
        self.tag = TagTemplates(templates)
        self.raw_tag = bool(templates)  # split raw events' tags only when told the templates
        self.max_body_bytes = max_body_bytes
        self.health = health
        self._acks: OrderedDict[str, tuple[int, set[int]]] = OrderedDict()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, host={self.host!r}, "
                f"port={self.port}, tokens={len(self._tokens)}, "
                f"ack={sum(a for _, a in self._tokens)})")

    async def start(self) -> None:
        app = web.Application(client_max_size=self.max_body_bytes)
        base = "/services/collector"
        for path in (base, f"{base}/event", f"{base}/event/1.0"):
            app.router.add_post(path, self._event)
        for path in (f"{base}/raw", f"{base}/raw/1.0"):
            app.router.add_post(path, self._raw)
        for path in (f"{base}/ack", f"{base}/ack/1.0"):
            app.router.add_post(path, self._ack)
        for path in (f"{base}/health", f"{base}/health/1.0"):
            app.router.add_get(path, self._health)
        app.router.add_route("OPTIONS", "/{tail:.*}", self._options)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        await self.serve(app)

    # -- request pieces ---------------------------------------------------------------------

    def _authorize(self, request: web.Request) -> bool:
        """Check the credentials; returns whether the token wants acknowledgement."""
        if "token" in request.query:
            raise HecError("query_token", 400, 16, "Query string authorization is not enabled")
        header = request.headers.get("Authorization")
        if not header:
            raise HecError("token_missing", 401, 2, "Token is required")
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            try:
                value = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                raise HecError("auth_invalid", 401, 3, "Invalid authorization") from None
        elif scheme.lower() != "splunk" or not value:
            raise HecError("auth_invalid", 401, 3, "Invalid authorization")
        given = value.encode("utf-8")
        found, ack = False, False
        for token, token_ack in self._tokens:  # all compared: the time does not tell which
            if hmac.compare_digest(given, token):
                found, ack = True, token_ack
        if not found:
            raise HecError("token_invalid", 403, 4, "Invalid token")
        return ack

    def _channel(self, request: web.Request, ack: bool) -> str | None:
        channel = request.headers.get("X-Splunk-Request-Channel") or request.query.get("channel")
        if not ack:
            return None
        if not channel:
            raise HecError("channel_missing", 400, 10, "Data channel is missing")
        if not _GUID.match(channel):
            raise HecError("channel_invalid", 400, 11, "Invalid data channel")
        return channel.lower()

    async def _body(self, request: web.Request) -> bytes:
        """The body, decompressed by aiohttp (``Content-Encoding: gzip``, deflate) and bounded
        by ``client_max_size`` as it is read."""
        try:
            data = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise HecError("body_too_large", 413, 6, "Content too large") from None
        except RequestPayloadError:  # a body that does not decompress
            raise HecError("decompress_error", 400, 6, "Invalid data format") from None
        if not data.strip():
            raise HecError("no_data", 400, 5, "No data")
        return data

    async def _handle(self, request: web.Request, parse: Callable[..., Any]) -> web.Response:
        try:
            channel = self._channel(request, self._authorize(request))
            body = await self._body(request)
            items = parse(body, request)
        except HecError as exc:
            self.count(exc.reason)
            return exc.response()
        if not await self.publish_grouped(items):
            return _reply(503, 9, "Server is busy")
        if channel is None:
            return _reply(200, 0, "Success")
        return _reply(200, 0, "Success", ackId=self._issue(channel))

    def _issue(self, channel: str) -> int:
        nxt, issued = self._acks.pop(channel, (0, set()))
        issued.add(nxt)
        if len(issued) > MAX_ACKS_PER_CHANNEL:
            issued.discard(min(issued))
        self._acks[channel] = (nxt + 1, issued)
        while len(self._acks) > MAX_ACK_CHANNELS:
            self._acks.popitem(last=False)
        return nxt

    # -- handlers ---------------------------------------------------------------------------

    async def _event(self, request: web.Request) -> web.Response:
        return await self._handle(request, self.event_items)

    async def _raw(self, request: web.Request) -> web.Response:
        return await self._handle(request, self.raw_items)

    async def _health(self, request: web.Request) -> web.Response:
        if self.health is not None and not self.health():
            return _reply(503, 18, "HEC is unhealthy, queues are full")
        return _reply(200, 17, "HEC is healthy")

    async def _options(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _not_found(self, request: web.Request) -> web.Response:
        self.count("not_found")
        return _reply(404, 404, "The requested URL was not found on this server.")

    async def _ack(self, request: web.Request) -> web.Response:
        try:
            if not self._authorize(request):
                raise HecError("ack_disabled", 400, 14, "ACK is disabled")
            channel = self._channel(request, True)
            body = await self._body(request)
            try:
                ids = orjson.loads(body)["acks"]
                assert isinstance(ids, list) and all(isinstance(i, int) for i in ids)
            except (orjson.JSONDecodeError, KeyError, TypeError, AssertionError):
                raise HecError("invalid_data", 400, 6, "Invalid data format") from None
        except HecError as exc:
            self.count(exc.reason)
            return exc.response()
        issued = self._acks.get(channel or "", (0, set()))[1]
        return web.Response(body=orjson.dumps({"acks": {str(i): i in issued for i in ids}}),
                            content_type="application/json")

    # -- events -> records ------------------------------------------------------------------

    def event_items(self, body: bytes, request: web.Request) -> list[tuple[bytes, Record]]:
        """A ``/event`` body -> items; raises ``HecError`` before building any record when an
        object is malformed (nothing of the request is published)."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid("invalid_data", 6, "Invalid data format", 0) from None
        objects = json_objects(text)
        times = [_check_event(obj, i) for i, obj in enumerate(objects)]
        peer = request.remote or "-"
        seen: dict[bytes, int] = {}
        return [self.event_record(obj, t, peer, seen) for obj, t in zip(objects, times, strict=True)]

    def event_record(self, obj: dict[str, Any], time: str | None, peer: str,
                     seen: dict[bytes, int]) -> tuple[bytes, Record]:
        """One validated HEC event object -> ``(key, record)``; ``seen`` counts identical
        events earlier in the request (see the module doc for ids)."""
        host = obj.get("host") or peer
        record = self.new_record({"host": host, "peer": peer, "transport": "http"})
        record["time"] = time
        splunk = {k: obj[k] for k in ("source", "sourcetype", "index") if obj.get(k)}
        fields: dict[str, Any] = dict(obj.get("fields") or {})
        event = obj["event"]
        if isinstance(event, dict) and "line" in event and set(event) <= _DOCKER_KEYS:
            line = event["line"]
            text = line if isinstance(line, str) else orjson.dumps(line).decode()
            if event.get("source") in ("stdout", "stderr"):
                record["stream"] = event["source"]
            self._docker_tag(record, fields, event.get("tag"))
            if isinstance(event.get("attrs"), dict):
                fields.update({str(k): v for k, v in event["attrs"].items()})
        elif isinstance(event, str):
            text = event
            if self.raw_tag and (split := self.tag.split(text)) is not None:
                self._container(record, split[0])
                text = split[1]
        else:
            text = orjson.dumps(event).decode()
        record["message"] = self.text(text.encode("utf-8", "surrogatepass"), record)
        if splunk:
            fields["splunk"] = splunk
        if fields:
            record["fields"] = fields
        data = orjson.dumps(obj)
        if obj.get("time") is None:
            record["id"] = self.stable_id(host, None, data)
        else:
            n = seen.get(data, 0)
            seen[data] = n + 1
            record["id"] = event_id("splunk", self.name, host, obj["time"], content_hash(data), n)
        cid = (record.get("container") or {}).get("id")
        key = f"splunk/{cid}" if cid else f"splunk/{host}/{splunk.get('source', '-')}"
        return key.encode(), record

    def _docker_tag(self, record: Record, fields: dict[str, Any], tag: Any) -> None:
        if not isinstance(tag, str) or not tag:
            return
        fields["tag"] = tag
        container = self.tag.match(tag)
        if container:
            self._container(record, container)

    @staticmethod
    def _container(record: Record, container: dict[str, Any]) -> None:
        record["container"] = {**container, "runtime": "docker"}

    def raw_items(self, body: bytes, request: web.Request) -> list[tuple[bytes, Record]]:
        """A ``/raw`` body -> one item per non-empty line, metadata from the query."""
        q = request.query
        time, ok = hec_time(q.get("time"))
        if not ok:
            raise _invalid("invalid_data", 6, "Invalid data format", 0)
        peer = request.remote or "-"
        host = q.get("host") or peer
        splunk = {k: q[k] for k in ("source", "sourcetype", "index") if q.get(k)}
        key = f"splunk/{host}/{splunk.get('source', '-')}".encode()
        items = []
        for line in body.split(b"\n"):
            line = line.rstrip(b"\r")
            if not line.strip():
                continue
            record = self.new_record({"host": host, "peer": peer, "transport": "http"})
            record["message"] = self.text(line, record)
            record["time"] = time
            text = record["message"]
            if self.raw_tag and (split := self.tag.split(text)) is not None:
                self._container(record, split[0])
                record["message"] = split[1]
            if splunk:
                record["fields"] = {"splunk": splunk}
            record["id"] = self.stable_id(host, q.get("time"), line)
            items.append((key, record))
        if not items:
            raise HecError("no_data", 400, 5, "No data")
        return items
