"""CloudWatch Logs-compatible receiver: Docker's ``awslogs`` driver (``awslogs-endpoint``),
the AWS SDKs and CLI pointed at ``--endpoint-url``, anything that writes to CloudWatch Logs.

The AWS JSON 1.1 protocol over HTTP (aiohttp): ``POST /`` with ``X-Amz-Target:
Logs_20140328.<Operation>`` and ``Content-Type: application/x-amz-json-1.1``, signed with
SigV4 for the service ``logs`` and verified against the configured credentials (``sigv4``).
Operations:

- ``CreateLogGroup`` / ``CreateLogStream``: registered (``ResourceAlreadyExistsException``
  when they exist, ``ResourceNotFoundException`` for a stream of an unknown group), kept in a
  small JSON state file when one is given so a restart does not forget them;
- ``DescribeLogGroups`` / ``DescribeLogStreams`` (prefix, limit, ``nextToken`` paging);
- ``PutLogEvents``: ``{"logGroupName", "logStreamName", "logEvents": [{"timestamp" (ms),
  "message"}], "sequenceToken"?}`` into the stream's records; the reply (``nextSequenceToken``,
  which every token is accepted against, as CloudWatch does since 2023) is sent once Kafka
  acknowledged them. A batch CloudWatch would refuse (no events, more than 10,000 or
  1,048,576 bytes, a message over 256 KiB, out of chronological order, wrong types) gets
  ``InvalidParameterException`` and nothing of it is published; an unknown stream
  ``ResourceNotFoundException``.

Errors are AWS's: HTTP 400 (403 for signatures) with ``{"__type": ..., "message": ...}`` and
the ``X-Amzn-ErrorType`` header, so SDKs raise their typed exceptions; a body that is not
JSON is a ``SerializationException``, an unknown target ``UnknownOperationException``, a
publish failure ``ServiceUnavailableException`` (503: SDKs retry). Every refusal is counted
in ``errors`` by reason (``logriver_errors_total{stage="receive_cloudwatch"}``).

Records: message and time (ms) of each event; ``aws.cloudwatch.log_group`` /
``aws.cloudwatch.log_stream``, ``cloud.provider`` / ``cloud.region`` (the signature's region);
``container.id`` when the stream name is a Docker tag the ``docker_tag`` templates read (Docker
names the stream after the container's full id unless ``awslogs-stream`` or ``tag`` is set).
Ids: the group, the stream, a hash of the batch's events and the event's index, so an identical
batch sent again (Docker's retry after ``InvalidSequenceToken``) indexes nothing twice.

Credentials (``credential_settings``): an AWS shared-credentials file (every profile's
``aws_access_key_id`` / ``aws_secret_access_key`` / ``aws_session_token``) and/or
``$LOGRIVER_CLOUDWATCH_ACCESS_KEY_ID`` with ``$LOGRIVER_CLOUDWATCH_SECRET_ACCESS_KEY[_FILE]``;
never a flag value.

Note: Docker's awslogs driver does not wait for its last ``PutLogEvents`` when a container
stops (``Close`` only closes its queue): what the last batch held arrives if dockerd keeps
running, as it does.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from streams.ops.security import Secret, SecurityConfigError, read_secret
from streams.sources.receivers.dockertag import TagTemplates
from streams.sources.receivers.http import HttpReceiver
from streams.sources.receivers.sigv4 import AwsCredential, SigV4Error, verify
from streams.transport.records import Record, event_id

log = logging.getLogger(__name__)

TARGET_PREFIX = "Logs_20140328."
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 262_144 - EVENT_OVERHEAD
MAX_BODY_BYTES = 8 * 1024 * 1024
KEY_ENV = "LOGRIVER_CLOUDWATCH_ACCESS_KEY_ID"
SECRET_ENV = "LOGRIVER_CLOUDWATCH_SECRET_ACCESS_KEY"
DOCKER_STREAM = "{{.FullID}}"  # awslogs' default stream name


class AwsError(Exception):
    """An AWS error reply; ``reason``: the counter it is counted under."""

    def __init__(self, type_: str, message: str, reason: str, status: int = 400) -> None:
        super().__init__(message)
        self.type, self.message, self.reason, self.status = type_, message, reason, status

    def response(self) -> web.Response:
        return web.Response(status=self.status, content_type=CONTENT_TYPE,
                            headers={"X-Amzn-ErrorType": self.type},
                            body=orjson.dumps({"__type": self.type, "message": self.message}))


def _param(message: str) -> AwsError:
    return AwsError("InvalidParameterException", message, "invalid_parameter")


def _reply(obj: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(obj), content_type=CONTENT_TYPE)


# -- configuration ---------------------------------------------------------------------------


def load_credentials(path: str) -> list[AwsCredential]:
    """Every profile of an AWS shared-credentials file. Errors never quote the file."""
    option = "--cloudwatch-credentials-file"
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh)
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise SecurityConfigError(f"{option} {path}: cannot read ({reason})") from None
    out = []
    for name in parser.sections():
        sec = parser[name]
        key, secret = sec.get("aws_access_key_id"), sec.get("aws_secret_access_key")
        if not key or not secret:
            raise SecurityConfigError(f"{option} {path}, profile {name!r}: needs "
                                      "aws_access_key_id and aws_secret_access_key")
        token = sec.get("aws_session_token")
        out.append(AwsCredential(key.strip(), Secret(secret.strip()),
                                 Secret(token.strip()) if token else None))
    if not out:
        raise SecurityConfigError(f"{option} {path}: no profile with credentials")
    return out


def credential_settings(path: str | None, env: Mapping[str, str] | None = None
                        ) -> list[AwsCredential]:
    """The accepted credentials (file and/or environment); raises when there are none."""
    e = os.environ if env is None else env
    out = load_credentials(path) if path else []
    key, secret = e.get(KEY_ENV), read_secret(e, SECRET_ENV)
    if bool(key) != bool(secret):
        raise SecurityConfigError(f"set both {KEY_ENV} and {SECRET_ENV}(_FILE)")
    if key and secret:
        out.append(AwsCredential(key, secret))
    if not out:
        raise SecurityConfigError(f"--cloudwatch needs credentials: --cloudwatch-credentials-"
                                  f"file PATH or {KEY_ENV} + {SECRET_ENV}")
    return out


# -- validation ------------------------------------------------------------------------------


def _name(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not 1 <= len(value) <= 512:
        raise _param(f"1 validation error detected: Value at '{key}' failed to satisfy "
                     "constraint: Member must have length between 1 and 512")
    return value


def check_events(events: Any) -> list[tuple[int, str]]:
    """``logEvents`` as (timestamp ms, message) pairs, or ``InvalidParameterException``."""
    if not isinstance(events, list) or not events:
        raise _param("logEvents must hold at least one event")
    if len(events) > MAX_EVENTS:
        raise _param(f"logEvents holds more than {MAX_EVENTS} events")
    out, size, last = [], 0, None
    for i, ev in enumerate(events):
        ts = ev.get("timestamp") if isinstance(ev, dict) else None
        msg = ev.get("message") if isinstance(ev, dict) else None
        if isinstance(ts, bool) or not isinstance(ts, int) or not isinstance(msg, str) or not msg:
            raise _param(f"logEvents[{i}] needs an integer timestamp and a non-empty message")
        n = len(msg.encode("utf-8", "surrogatepass"))
        if n > MAX_EVENT_BYTES:
            raise _param(f"logEvents[{i}]: the message is over {MAX_EVENT_BYTES} bytes")
        if last is not None and ts < last:
            raise _param("Log events in a single PutLogEvents request must be in "
                         "chronological order.")
        last, size = ts, size + n + EVENT_OVERHEAD
        out.append((ts, msg))
    if size > MAX_BATCH_BYTES:
        raise _param(f"the batch is over {MAX_BATCH_BYTES} bytes")
    return out


def _ms_rfc3339(ms: int) -> str | None:
    try:
        ts = datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- the receiver ----------------------------------------------------------------------------


class CloudWatchReceiver(HttpReceiver):
    """CloudWatch Logs over HTTP on ``port`` (0: any free; set after ``start``).
    ``credentials``: accepted access keys; ``state_path``: where groups and streams are kept;
    ``docker_tag``: templates read from stream names (after Docker's default, ``{{.FullID}}``)."""

    source_type = "cloudwatch"

    def __init__(self, publisher: Any, *, credentials: Sequence[AwsCredential],
                 state_path: str | Path | None = None,
                 docker_tag: str | Sequence[str] | None = None, **kw: Any) -> None:
        super().__init__(publisher, **kw)
        if not credentials:
            raise SecurityConfigError("the CloudWatch receiver needs credentials")
        self.credentials = {c.access_key_id: c for c in credentials}
        self.state_path = Path(state_path) if state_path else None
        templates = [docker_tag] if isinstance(docker_tag, str) else list(docker_tag or [])
        self.tag = TagTemplates([DOCKER_STREAM, *templates])
        self.groups: dict[str, dict[str, Any]] = {}  # name -> {"created": ms, "streams": {..}}
        self._sequence = 0
        self._load()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, host={self.host!r}, "
                f"port={self.port}, access_keys={len(self.credentials)})")

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        await self.serve(app)

    # -- state ------------------------------------------------------------------------------

    def _load(self) -> None:
        if self.state_path is None or not self.state_path.exists():
            return
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
            self.groups = {g: {"created": v["created"], "streams": dict(v["streams"])}
                           for g, v in data["groups"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            log.warning("cloudwatch: state %s unreadable, starting empty", self.state_path)
            self.count("state_unreadable")

    def _save(self) -> None:
        if self.state_path is None:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"groups": self.groups}), encoding="utf-8")
        tmp.replace(self.state_path)

    # -- requests ---------------------------------------------------------------------------

    async def _not_found(self, request: web.Request) -> web.Response:
        self.count("not_found")
        return AwsError("UnknownOperationException", "Unknown operation", "not_found", 404
                        ).response()

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.count("body_too_large")
            return _param("the request is too large").response()
        try:
            scope = verify(request.method, request.path, request.query_string, request.headers,
                           body, self.credentials, "logs")
        except SigV4Error as exc:
            self.count(_reason(exc.type))
            return AwsError(exc.type, exc.message, "", exc.status).response()
        try:
            op, payload = self._operation(request, body)
            return await op(payload, scope.region, request.remote or "-")
        except AwsError as exc:
            self.count(exc.reason)
            return exc.response()

    def _operation(self, request: web.Request, body: bytes) -> tuple[Any, dict[str, Any]]:
        target = request.headers.get("X-Amz-Target", "")
        ops = {"CreateLogGroup": self.create_log_group, "CreateLogStream": self.create_log_stream,
               "DescribeLogGroups": self.describe_log_groups,
               "DescribeLogStreams": self.describe_log_streams,
               "PutLogEvents": self.put_log_events}
        op = ops.get(target[len(TARGET_PREFIX):]) if target.startswith(TARGET_PREFIX) else None
        if op is None:
            raise AwsError("UnknownOperationException", f"Unknown operation {target[:100]!r}",
                           "unknown_operation")
        try:
            payload = orjson.loads(body) if body.strip() else {}
        except orjson.JSONDecodeError:
            raise AwsError("SerializationException", "Start of structure or map found where "
                           "not expected, or the body is not JSON", "serialization") from None
        if not isinstance(payload, dict):
            raise AwsError("SerializationException", "The body is not a JSON object",
                           "serialization")
        return op, payload

    def _group(self, name: str) -> dict[str, Any]:
        group = self.groups.get(name)
        if group is None:
            raise AwsError("ResourceNotFoundException", "The specified log group does not exist.",
                           "group_not_found")
        return group

    async def create_log_group(self, body: dict[str, Any], region: str, peer: str) -> web.Response:
        name = _name(body, "logGroupName")
        if name in self.groups:
            raise AwsError("ResourceAlreadyExistsException",
                           "The specified log group already exists", "group_exists")
        self.groups[name] = {"created": _now_ms(), "streams": {}}
        self._save()
        return _reply({})

    async def create_log_stream(self, body: dict[str, Any], region: str, peer: str) -> web.Response:
        group = self._group(_name(body, "logGroupName"))
        name = _name(body, "logStreamName")
        if name in group["streams"]:
            raise AwsError("ResourceAlreadyExistsException",
                           "The specified log stream already exists", "stream_exists")
        group["streams"][name] = _now_ms()
        self._save()
        return _reply({})

    async def describe_log_groups(self, body: dict[str, Any], region: str, peer: str) -> web.Response:
        prefix = body.get("logGroupNamePrefix") or ""
        names = sorted(g for g in self.groups if g.startswith(prefix))
        page, token = _page(names, body)
        out: dict[str, Any] = {"logGroups": [
            {"logGroupName": g, "creationTime": self.groups[g]["created"], "storedBytes": 0,
             "arn": f"arn:aws:logs:{region}:000000000000:log-group:{g}:*"} for g in page]}
        if token:
            out["nextToken"] = token
        return _reply(out)

    async def describe_log_streams(self, body: dict[str, Any], region: str, peer: str) -> web.Response:
        name = _name(body, "logGroupName")
        streams = self._group(name)["streams"]
        prefix = body.get("logStreamNamePrefix") or ""
        names = sorted(s for s in streams if s.startswith(prefix))
        if body.get("descending"):
            names.reverse()
        page, token = _page(names, body)
        out: dict[str, Any] = {"logStreams": [
            {"logStreamName": s, "creationTime": streams[s], "storedBytes": 0,
             "arn": f"arn:aws:logs:{region}:000000000000:log-group:{name}:log-stream:{s}"}
            for s in page]}
        if token:
            out["nextToken"] = token
        return _reply(out)

    async def put_log_events(self, body: dict[str, Any], region: str, peer: str) -> web.Response:
        group_name = _name(body, "logGroupName")
        stream = _name(body, "logStreamName")
        if stream not in self._group(group_name)["streams"]:
            raise AwsError("ResourceNotFoundException",
                           "The specified log stream does not exist.", "stream_not_found")
        events = check_events(body.get("logEvents"))
        items = self.records(group_name, stream, events, region, peer)
        if not await self.publish_grouped(items):
            raise AwsError("ServiceUnavailableException", "The service is unavailable, retry.",
                           "unavailable", 503)
        self._sequence += 1
        return _reply({"nextSequenceToken": f"{self._sequence:056d}"})

    def records(self, group: str, stream: str, events: list[tuple[int, str]], region: str,
                peer: str) -> list[tuple[bytes, Record]]:
        """One PutLogEvents batch -> ``(key, record)`` items (see the module doc for ids)."""
        batch = hashlib.blake2b(orjson.dumps([group, stream, events]), digest_size=12).hexdigest()
        container = self.tag.match(stream)
        key = f"cloudwatch/{group}/{stream}".encode()
        meta = {"log_group": group, "log_stream": stream}
        items = []
        for i, (ts, message) in enumerate(events):
            record = self.new_record({"host": peer, "transport": "http"})
            record["message"] = self.text(message.encode("utf-8", "surrogatepass"), record)
            record["time"] = _ms_rfc3339(ts)
            record["id"] = event_id("cloudwatch", self.name, batch, i)
            record["aws"] = {"cloudwatch": dict(meta)}
            record["cloud"] = {"provider": "aws", "region": region}
            if container:
                record["container"] = {**container, "runtime": "docker"}
            items.append((key, record))
        return items


def _reason(aws_type: str) -> str:
    return {"MissingAuthenticationTokenException": "auth_missing",
            "IncompleteSignatureException": "signature_incomplete",
            "UnrecognizedClientException": "access_key_unknown",
            "InvalidSignatureException": "signature_invalid"}.get(aws_type, "auth_failed")


def _page(names: list[str], body: dict[str, Any]) -> tuple[list[str], str | None]:
    limit = body.get("limit") if isinstance(body.get("limit"), int) else 50
    limit = max(1, min(limit, 50))
    token = body.get("nextToken")
    start = int(token) if isinstance(token, str) and token.isdigit() else 0
    page = names[start : start + limit]
    more = start + limit < len(names)
    return page, str(start + limit) if more else None


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)
