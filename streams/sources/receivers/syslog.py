"""Syslog receiver (Docker's ``syslog`` log driver, rsyslog/syslog-ng forwarding, Python's
``SysLogHandler``): RFC 5424 and RFC 3164 messages over UDP (one per datagram) and TCP
(RFC 6587 octet counting, or newline/NUL-delimited framing, detected per frame).

RFC 3164 parsing is lenient, as senders are: the timestamp may be BSD style (no year: the
year is the one that puts it closest before now; no zone: read in ``timezone``, by default the
collector host's local zone, as rsyslog and syslog-ng do, since Docker's driver writes
dockerd's local time) or RFC 3339; the hostname may be missing (Docker's default ``unix``
format and Python's SysLogHandler send ``<PRI>[timestamp ]tag[pid]: msg``); the TAG is any run
of non-blank characters ended by ``[pid]:`` or ``:`` (Docker's recommended tag
``{{.ImageName}}/{{.Name}}/{{.ID}}`` holds ``/`` and ``:``) and is removed from the message,
so JSON and logfmt bodies parse. A message without a valid ``<PRI>`` is forwarded whole with
the ``syslog_parse_error`` flag and counted.

Docker metadata: a tag read back with ``docker_tag`` templates (the collector's
``--docker-tag``, then Docker's default ``{{.ID}}`` and its recommended
``{{.ImageName}}/{{.Name}}/{{.ID}}``, see ``dockertag``) fills ECS ``container.id``, ``.name``
and ``.image.name``; for such a message the severity tells the stream (Docker writes stderr at
``err``, stdout at ``info``). A line over 16 KiB arrives cut in pieces (Docker's syslog
driver sends no partial marker): they stay separate records.

Ids: sender host + the message's timestamp + a hash of its bytes + occurrence number (see
``base``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.sources.receivers.base import (
    READ_SIZE,
    Connection,
    Receiver,
    docker_tags,
    start_udp,
    stream_of_severity,
    tag_container,
)
from streams.sources.receivers.framing import Framer
from streams.transport.records import FLAG_TRUNCATED, Record, add_flag

FLAG_SYSLOG_PARSE_ERROR = "syslog_parse_error"
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")

_PRI_RE = re.compile(rb"^<(\d{1,3})>")
_5424_RE = re.compile(rb"^([1-9]\d?) (\S+) (\S+) (\S+) (\S+) (\S+) ")
_BSD_TS_RE = re.compile(
    rb"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([ \d]\d) (\d\d):(\d\d):(\d\d) "
)
_ISO_TS_RE = re.compile(rb"^(\d{4}-\d\d-\d\dT\S+) ")
# An RFC 3164 TAG: any run of non-blank characters (Docker's ``{{.ImageName}}/{{.Name}}/{{.ID}}``
# holds ``/`` and ``:``), the shortest one followed by an optional ``[pid]`` and ``: ``.
_TAG_RE = re.compile(rb"^([^\s\[\]]{1,256}?)(?:\[([^\]\s]{0,64})\])?:(?: |$)")
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        [
            b"Jan",
            b"Feb",
            b"Mar",
            b"Apr",
            b"May",
            b"Jun",
            b"Jul",
            b"Aug",
            b"Sep",
            b"Oct",
            b"Nov",
            b"Dec",
        ]
    )
}


@dataclass(slots=True)
class SyslogMessage:
    format: str  # "rfc5424" | "rfc3164"
    facility: int
    severity: int
    timestamp: str | None
    hostname: str | None
    appname: str | None
    procid: str | None
    msgid: str | None
    structured_data: dict[str, dict[str, str]] = field(default_factory=dict)
    message: bytes = b""


def _nil(value: bytes) -> str | None:
    return None if value == b"-" else value.decode("utf-8", "replace")


def _rfc3339(value: bytes) -> str | None:
    text = value.decode("ascii", "replace")
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return None
    return text


_BSD_CACHE: dict[tuple[bytes, tzinfo, int], str | None] = {}


def _bsd_time(m: re.Match[bytes], now: datetime, tz: tzinfo = UTC) -> str | None:
    """A BSD timestamp (no year, no zone) read in ``tz``, as UTC RFC 3339 (cached: a burst
    of messages shares a handful of seconds)."""
    key = (m.group(0), tz, now.toordinal())
    hit = _BSD_CACHE.get(key, _MISSING)
    if hit is _MISSING:
        if len(_BSD_CACHE) >= 1024:
            _BSD_CACHE.clear()
        hit = _BSD_CACHE[key] = _bsd_time_uncached(m, now, tz)
    return hit  # type: ignore[return-value]


_MISSING = object()


def _bsd_time_uncached(m: re.Match[bytes], now: datetime, tz: tzinfo) -> str | None:
    local_now = now.astimezone(tz)
    try:
        ts = datetime(
            local_now.year,
            _MONTHS[m.group(1)],
            int(m.group(2)),
            int(m.group(3)),
            int(m.group(4)),
            int(m.group(5)),
            tzinfo=tz,
        )
    except ValueError:
        return None
    if (ts - local_now).days >= 1:  # December's message read in January
        try:
            ts = ts.replace(year=local_now.year - 1)
        except ValueError:  # Feb 29
            return None
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def local_timezone() -> tzinfo:
    """The collector host's zone (``$TZ``, else /etc/localtime), with its daylight saving
    rules; UTC when neither names one."""
    name = os.environ.get("TZ", "").lstrip(":")
    try:
        if name:
            return ZoneInfo(name)
        with open("/etc/localtime", "rb") as fh:
            return ZoneInfo.from_file(fh, key="localtime")
    except (OSError, ValueError, ZoneInfoNotFoundError):
        return UTC


def timezone_setting(value: str | tzinfo | None) -> tzinfo:
    """``--syslog-timezone``: ``local`` (default: the collector host's zone), ``UTC`` or an
    IANA name such as ``America/New_York``. Raises ValueError for an unknown name."""
    if isinstance(value, tzinfo):
        return value
    if value is None or value == "local":
        return local_timezone()
    if value.upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(value)
    except (ValueError, ZoneInfoNotFoundError):
        raise ValueError(f"unknown time zone {value!r} (an IANA name, UTC or local)") from None


def _parse_sd(data: bytes, pos: int) -> tuple[dict[str, dict[str, str]], int] | None:
    """RFC 5424 STRUCTURED-DATA from ``pos``; returns (elements, end) or None if malformed."""
    out: dict[str, dict[str, str]] = {}
    n = len(data)
    while pos < n and data[pos : pos + 1] == b"[":
        end = pos + 1
        while end < n and data[end] not in b" ]":
            end += 1
        sd_id = data[pos + 1 : end].decode("utf-8", "replace")
        params: dict[str, str] = {}
        pos = end
        while pos < n and data[pos : pos + 1] == b" ":
            eq = data.find(b'="', pos)
            if eq < 0:
                return None
            name = data[pos + 1 : eq].decode("utf-8", "replace")
            i = eq + 2
            value = bytearray()
            while i < n and data[i : i + 1] != b'"':
                if (
                    data[i : i + 1] == b"\\"
                    and i + 1 < n
                    and data[i + 1 : i + 2] in (b'"', b"\\", b"]")
                ):
                    i += 1
                value += data[i : i + 1]
                i += 1
            if i >= n:
                return None
            params[name] = value.decode("utf-8", "replace")
            pos = i + 1
        if data[pos : pos + 1] != b"]":
            return None
        out[sd_id] = params
        pos += 1
    return out, pos


def parse_syslog(
    data: bytes, now: datetime | None = None, tz: tzinfo = UTC
) -> SyslogMessage | None:
    """Parse one syslog message (framing removed); None when it has no valid PRI. ``tz``: the
    zone of BSD timestamps, which carry none."""
    m = _PRI_RE.match(data)
    if m is None or int(m.group(1)) > 191:
        return None
    pri = int(m.group(1))
    rest = data[m.end() :]
    h = _5424_RE.match(rest)
    if h is not None:
        pos = h.end()
        if rest[pos : pos + 1] == b"-":
            sd: dict[str, dict[str, str]] = {}
            pos += 1
        else:
            parsed = _parse_sd(rest, pos)
            if parsed is None:
                h = None
            else:
                sd, pos = parsed
        if h is not None and (pos == len(rest) or rest[pos : pos + 1] == b" "):
            msg = rest[pos + 1 :]
            if msg.startswith(b"\xef\xbb\xbf"):
                msg = msg[3:]
            return SyslogMessage(
                "rfc5424",
                pri >> 3,
                pri & 7,
                None if h.group(2) == b"-" else _rfc3339(h.group(2)),
                _nil(h.group(3)),
                _nil(h.group(4)),
                _nil(h.group(5)),
                _nil(h.group(6)),
                sd,
                msg,
            )
    rest = rest.lstrip(b" ")
    timestamp = hostname = None
    t = _BSD_TS_RE.match(rest)
    if t is not None:
        timestamp = _bsd_time(t, now or datetime.now(UTC), tz)
    else:
        t = _ISO_TS_RE.match(rest)
        if t is not None:
            timestamp = _rfc3339(t.group(1))
    if t is not None:
        rest = rest[t.end() :]
        token, _, after = rest.partition(b" ")
        if token and not _TAG_RE.match(rest) and after:
            hostname = token.decode("utf-8", "replace")
            rest = after
    appname = procid = None
    tag = _TAG_RE.match(rest)
    if tag is not None:
        appname = tag.group(1).decode("utf-8", "replace")
        procid = tag.group(2).decode("utf-8", "replace") if tag.group(2) is not None else None
        rest = rest[tag.end() :]
    return SyslogMessage(
        "rfc3164", pri >> 3, pri & 7, timestamp, hostname, appname, procid, None, {}, rest
    )


class SyslogReceiver(Receiver):
    """Syslog over UDP and/or TCP. ``udp_port``/``tcp_port``: 0 picks a free port, None
    disables the transport; the bound ports are set on the object after ``start``."""

    source_type = "syslog"

    def __init__(
        self,
        publisher: Any,
        *,
        udp_port: int | None = 0,
        tcp_port: int | None = 0,
        timezone: str | tzinfo | None = None,
        docker_tag: str | Sequence[str] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(publisher, **kw)
        self.udp_port = udp_port
        self.tcp_port = tcp_port
        self.tz = timezone_setting(timezone)  # of BSD timestamps (see the module doc)
        self.tags = docker_tags(docker_tag)  # container fields from the TAG

    async def start(self) -> None:
        if self.udp_port is not None:
            self.port = self.udp_port
            self.udp_port = await start_udp(self, self._datagrams)
        if self.tcp_port is not None:
            self.port = self.tcp_port
            self.tcp_port = await self._start_tcp(self._connection)

    def record(
        self, data: bytes, sender: str, transport: str, truncated: bool = False
    ) -> tuple[bytes, Record]:
        """Turn one framed message into ``(key, record)``. Never raises."""
        if data.endswith(b"\x00"):
            data = data.rstrip(b"\x00")
        if data.endswith(b"\n"):
            data = data.rstrip(b"\r\n")
        msg = parse_syslog(data, tz=self.tz)
        if msg is None:
            record = self.error_record(FLAG_SYSLOG_PARSE_ERROR, data, sender)
            record["source"]["transport"] = transport
            if truncated:
                add_flag(record, FLAG_TRUNCATED)
            return f"syslog/{sender}".encode(), record
        host = msg.hostname or sender
        record = self.new_record({"host": host, "peer": sender, "transport": transport})
        record["message"] = self.text(msg.message, record)
        record["time"] = msg.timestamp
        record["id"] = self.stable_id(host, msg.timestamp, data)
        record["fields"] = {
            "syslog": {
                "format": msg.format,
                "facility": msg.facility,
                "severity": msg.severity,
                "severity_name": SEVERITIES[msg.severity],
                "hostname": msg.hostname,
                "appname": msg.appname,
                "procid": msg.procid,
                "msgid": msg.msgid,
                **({"structured_data": msg.structured_data} if msg.structured_data else {}),
            }
        }
        if truncated:
            self.count("message_truncated")
            add_flag(record, FLAG_TRUNCATED)
        container = tag_container(self.tags, msg.appname)
        if container:
            record["container"] = container
            record["stream"] = stream_of_severity(msg.severity)
        return f"syslog/{host}/{msg.appname or '-'}".encode(), record

    def _datagrams(self, batch: list[tuple[bytes, str]]) -> list[tuple[bytes, Record]]:
        return [
            self.record(data, sender, "udp") for data, sender in batch if data.strip(b"\x00\r\n")
        ]

    async def _connection(self, conn: Connection) -> None:
        framer = Framer(b"\n\x00", self.max_message_bytes, octet_counting=True)
        while True:
            data = await conn.reader.read(READ_SIZE)
            frames = framer.feed(data) if data else framer.finish()
            if frames:  # submitted without waiting: frames of many reads share a flush
                items = [self.record(f, conn.peer, "tcp", cut) for f, cut in frames]
                await self.submit(items, len(data), conn)
            if not data or conn.failed:  # failed: close, the client learns it
                return
            if not self.progress(conn, len(frames), framer.buffered):
                return
