"""Fluentd forward protocol receiver (Docker's ``fluentd`` log driver, fluent-bit/fluentd
``forward`` outputs), over TCP: a stream of msgpack arrays in the four modes of the Forward
Protocol Specification v1:

- Message: ``[tag, time, record, option?]``
- Forward: ``[tag, [[time, record], ...], option?]``
- PackedForward: ``[tag, bin(msgpack stream of [time, record]), option?]``
- CompressedPackedForward: the same with ``option.compressed == "gzip"``

``time`` is an integer or the EventTime extension (type 0: uint32 seconds, uint32 nanos).
When ``option.chunk`` is set, ``{"ack": chunk}`` is written back once the records of the
frame were published, so the sender resends what we did not take (at-least-once).

The message of a record is its ``log`` field (Docker) or ``message``/``msg``; the other
fields go to ``record["fields"]``. Docker's ``source`` gives the stream, ``container_id`` and
``container_name`` ECS ``container.*`` (and a tag ``{{.ImageName}}/{{.Name}}/{{.ID}}`` the
image), and its ``partial_*`` fields join a line over 16 KiB again (``partials``). A frame bigger than ``max_connection_bytes`` or malformed
msgpack cannot be resynchronised: it is counted and the connection closed (the sender
reconnects and resends unacked chunks). A well-formed frame of the wrong shape, or an entry
that is not ``[time, map]``, is forwarded as a record flagged ``fluentd_invalid``.

Ids: with a chunk id, ``(tag, chunk, entry index)`` - a resent chunk keeps its ids exactly;
without, the sender host + event time + a hash of the entry + occurrence (see ``base``).

Shared-key authentication (the spec's handshake; fluentd ``<security>``, fluent-bit
``Shared_Key``/``Username``/``Password``). Off unless a shared key is configured; then every
connection goes through:

1. server: ``["HELO", {"nonce": 16 random bytes, "auth": 16 random bytes when users are
   configured else empty, "keepalive": true}]``, sent on connect;
2. client: ``["PING", client_hostname, shared_key_salt, sha512_hex(shared_key_salt +
   client_hostname + nonce + shared_key), username, sha512_hex(auth + username + password)]``
   (username and digest empty without user auth);
3. server: ``["PONG", true, "", self_hostname, sha512_hex(shared_key_salt + self_hostname +
   nonce + shared_key)]``, or ``["PONG", false, reason, "", ""]`` and the connection closed.

Digests are hex SHA-512 over the plain concatenation of the fields' bytes (strings UTF-8) and
are compared in constant time. Only after a successful PONG are data frames taken: a data
frame, or anything but a valid PING, first is refused the same way; a client that has not
authenticated within ``handshake_timeout`` seconds (default 10) is disconnected. Failures are
counted (``errors``: ``auth_ping_invalid``, ``auth_shared_key_mismatch``,
``auth_user_mismatch``, ``auth_timeout``) and logged at warning level with the peer address,
never with a secret. The key and passwords are held as ``streams.ops.security.Secret``.

Configuration (``auth_settings``, used by ``logriver collect``): the shared key comes from
``--fluentd-shared-key-file PATH`` or ``$LOGRIVER_FLUENTD_SHARED_KEY`` (or a file named by
``$LOGRIVER_FLUENTD_SHARED_KEY_FILE``), never from a command-line value; optional users from
``--fluentd-users-file PATH`` (``user:password`` lines, ``#`` comments); the hostname sent in
PONG is ``--fluentd-self-hostname`` (default: the machine's hostname; fluentd's out_forward
refuses a server whose hostname equals its own). TLS is not provided here.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import socket
import struct
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgpack
import orjson

from streams.ops.security import Secret, SecurityConfigError, read_secret
from streams.sources.receivers.base import (
    READ_SIZE,
    Connection,
    Receiver,
    docker_container,
    docker_tags,
    tag_container,
)
from streams.transport.records import (
    FLAG_INVALID_UTF8,
    FLAG_TRUNCATED,
    Record,
    add_flag,
    decode_text,
    event_id,
)

log = logging.getLogger(__name__)

FLAG_FLUENTD_INVALID = "fluentd_invalid"
SHARED_KEY_ENV = "LOGRIVER_FLUENTD_SHARED_KEY"
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
# Bytes a client may send before its PING is complete (a PING is a few hundred bytes).
HANDSHAKE_MAX_BYTES = 64 * 1024
SALT_BYTES = 16
MESSAGE_KEYS = ("log", "message", "msg")
# Invalid entries of one frame forwarded one record each; the rest go as one record (a frame of
# a million junk entries must not become a million records).
MAX_INVALID_RECORDS = 100
# Deepest nesting of a record's values we convert (deeper: the entry is forwarded invalid).
MAX_DEPTH = 512


class EventTime:
    """Fluentd's EventTime (msgpack ext type 0)."""

    __slots__ = ("nanoseconds", "seconds")

    def __init__(self, seconds: int, nanoseconds: int) -> None:
        self.seconds = seconds
        self.nanoseconds = nanoseconds

    def rfc3339(self) -> str | None:
        try:
            base = datetime.fromtimestamp(self.seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        except (OverflowError, OSError, ValueError):
            return None
        return f"{base}.{self.nanoseconds:09d}Z"

    def __str__(self) -> str:
        return f"{self.seconds}.{self.nanoseconds:09d}"


def _ext_hook(code: int, data: bytes) -> Any:
    if code == 0 and len(data) == 8:
        return EventTime(*struct.unpack(">II", data))
    return msgpack.ExtType(code, data)


def pack_event_time(seconds: int, nanoseconds: int) -> msgpack.ExtType:
    """EventTime as a msgpack extension (for clients and tests)."""
    return msgpack.ExtType(0, struct.pack(">II", seconds, nanoseconds))


def _time(value: Any) -> tuple[str | None, object]:
    """(RFC 3339 time, identity part) of a forward ``time`` value (an integer, Fluentd's
    EventTime, or msgpack's own Timestamp extension, type -1)."""
    if isinstance(value, msgpack.Timestamp):
        value = EventTime(value.seconds, value.nanoseconds)
    if isinstance(value, EventTime):
        return value.rfc3339(), value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            ts = datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None, value
        return ts.isoformat(timespec="microseconds").replace("+00:00", "Z"), value
    return None, value


def _plain(value: Any, bad: list[bool], depth: int = 0) -> Any:
    """msgpack value (raw bytes) -> JSON-ready value; invalid UTF-8 noted in ``bad``. Raises
    ValueError past ``MAX_DEPTH`` levels (msgpack allows 1024, Python's stack fewer)."""
    if isinstance(value, bytes):
        text, ok = decode_text(value)
        if not ok:
            bad[0] = True
        return text
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        return {str(_plain(k, bad, depth + 1)): _plain(v, bad, depth + 1)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, bad, depth + 1) for v in value]
    if isinstance(value, msgpack.Timestamp):
        return EventTime(value.seconds, value.nanoseconds).rfc3339()
    if isinstance(value, (EventTime, msgpack.ExtType)):
        return str(value)
    return value


def _unpack_all(data: bytes, max_bytes: int) -> list[Any]:
    """The entries of a PackedForward stream. Raises ValueError at the first object that is
    not an entry (``[time, record, ...]``): bytes that are not entries (garbage, another mode)
    would otherwise unpack into one object per byte, each forwarded as an invalid entry."""
    splitter = FrameSplitter(max_bytes, arrays_only=True)
    frames, error = splitter.feed(data)
    out = []
    for raw in frames:
        obj = msgpack.unpackb(raw, **_UNPACK_OPTIONS)
        if not isinstance(obj, list) or len(obj) < 2:
            raise ValueError("packed stream holds a non-entry")
        out.append(obj)
    if error is not None or splitter.buffered:
        raise ValueError(error or "packed stream cut short")
    return out


def gunzip(data: bytes, max_bytes: int) -> bytes:
    """Decompress (possibly concatenated) gzip members, at most ``max_bytes``."""
    out = bytearray()
    while data:
        d = zlib.decompressobj(31)
        out += d.decompress(data, max_bytes + 1 - len(out))
        if len(out) > max_bytes:
            raise ValueError("decompressed entries over the limit")
        if not d.eof:
            raise ValueError("truncated gzip data")
        data = d.unused_data
    return bytes(out)


def sha512_hex(*parts: bytes) -> bytes:
    """Hex SHA-512 of the concatenated parts, as ASCII bytes (the handshake's digests)."""
    digest = hashlib.sha512()
    for part in parts:
        digest.update(part)
    return digest.hexdigest().encode("ascii")


def _read_secret_file(path: str, option: str) -> Secret:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:  # never the error text: it may quote bytes
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise SecurityConfigError(f"{option} {path}: cannot read ({reason})") from None
    return Secret(text)


def load_users(path: str) -> dict[str, Secret]:
    """``user:password`` lines (the password is everything after the first colon, kept as
    is); blank lines and ``#`` comments are skipped. Errors name the line, never its text."""
    option = "--fluentd-users-file"
    users: dict[str, Secret] = {}
    for n, line in enumerate(_read_secret_file(path, option).reveal().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, password = line.partition(":")
        name = name.strip()
        if not sep or not name or not password:
            raise SecurityConfigError(f"{option} {path}, line {n}: expected user:password")
        if name in users:
            raise SecurityConfigError(f"{option} {path}, line {n}: user {name!r} given twice")
        users[name] = Secret(password)
    if not users:
        raise SecurityConfigError(f"{option} {path}: no user:password line")
    return users


def auth_settings(
    shared_key_file: str | None = None,
    users_file: str | None = None,
    self_hostname: str | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``FluentdReceiver`` keyword arguments for shared-key authentication ({} when no key is
    configured). The key: the file ``shared_key_file`` (trailing newlines dropped) or
    ``$LOGRIVER_FLUENTD_SHARED_KEY`` / ``$LOGRIVER_FLUENTD_SHARED_KEY_FILE``; both is an
    error. Raises ``SecurityConfigError`` (a ValueError) with a one-line reason."""
    e = os.environ if env is None else env
    from_env = read_secret(e, SHARED_KEY_ENV)
    if shared_key_file is not None and from_env is not None:
        raise SecurityConfigError(
            f"set --fluentd-shared-key-file or {SHARED_KEY_ENV}(_FILE), not both"
        )
    key = from_env
    if shared_key_file is not None:
        option = "--fluentd-shared-key-file"
        key = Secret(_read_secret_file(shared_key_file, option).reveal().rstrip("\r\n"))
    if key is None:
        if users_file is not None or self_hostname is not None:
            raise SecurityConfigError(
                "--fluentd-users-file and --fluentd-self-hostname need a shared key "
                f"(--fluentd-shared-key-file or {SHARED_KEY_ENV})"
            )
        return {}
    if not key:
        raise SecurityConfigError("the fluentd shared key is empty")
    out: dict[str, Any] = {"shared_key": key}
    if users_file is not None:
        out["users"] = load_users(users_file)
    if self_hostname is not None:
        out["self_hostname"] = self_hostname
    return out


_NO_PASSWORD = Secret("")


class FluentdReceiver(Receiver):
    """Forward protocol over TCP (``port``: 0 = any free; set after ``start``).

    ``shared_key`` turns on the handshake (see the module doc); ``users`` (name -> password)
    adds user authentication; ``self_hostname`` is the name sent in PONG (default: the
    machine's); ``handshake_timeout`` bounds the time from connect to a valid PING. Other
    keyword arguments are the ``Receiver``'s."""

    source_type = "fluentd"

    def __init__(
        self,
        publisher: Any,
        *,
        shared_key: str | Secret | None = None,
        users: Mapping[str, str | Secret] | None = None,
        self_hostname: str | None = None,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        docker_tag: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(publisher, **kwargs)
        self.tags = docker_tags(docker_tag)  # container image from a tag that names it
        key = None if shared_key is None else Secret(shared_key)
        if key is not None and not key:
            raise SecurityConfigError("the fluentd shared key is empty")
        if users and key is None:
            raise SecurityConfigError("fluentd user authentication needs a shared key")
        self._shared_key = key
        self._users: dict[bytes, Secret] = {}
        for name, password in (users or {}).items():
            if not name or not Secret(password):
                raise SecurityConfigError("a fluentd user needs a name and a password")
            self._users[name.encode("utf-8")] = Secret(password)
        self.self_hostname = self_hostname or socket.gethostname()
        self.handshake_timeout = handshake_timeout

    @property
    def auth(self) -> str:
        """``none``, ``shared_key`` or ``shared_key+users`` (safe to log)."""
        if self._shared_key is None:
            return "none"
        return "shared_key+users" if self._users else "shared_key"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, host={self.host!r}, port={self.port}, "
            f"auth={self.auth!r})"
        )

    async def start(self) -> None:
        self.port = await self._start_tcp(self._connection)
        if self._shared_key is not None:
            log.info(
                "%s: shared-key authentication on (%d users), hostname %r",
                self.name, len(self._users), self.self_hostname,
            )

    # -- handshake --------------------------------------------------------------------------

    def helo(self, nonce: bytes, auth_salt: bytes) -> list[Any]:
        return ["HELO", {"nonce": nonce, "auth": auth_salt, "keepalive": True}]

    def check_ping(
        self, frame: Any, nonce: bytes, auth_salt: bytes, peer: str
    ) -> tuple[list[Any], str | None]:
        """(PONG to send, failure reason counted in ``errors`` or None when authenticated)."""
        assert self._shared_key is not None
        if not (
            isinstance(frame, list)
            and len(frame) == 6
            and frame[0] == b"PING"
            and all(isinstance(x, bytes) for x in frame[1:])
        ):
            return self._refused("auth_ping_invalid", "invalid ping message", peer, frame)
        _, hostname, salt, digest, username, password_digest = frame
        key = self._shared_key.reveal().encode("utf-8")
        if not hmac.compare_digest(digest, sha512_hex(salt, hostname, nonce, key)):
            return self._refused("auth_shared_key_mismatch", "shared_key mismatch", peer, frame)
        if self._users:
            password = self._users.get(username)
            secret = (password or _NO_PASSWORD).reveal().encode("utf-8")
            expected = sha512_hex(auth_salt, username, secret)  # computed for unknown users too
            if not hmac.compare_digest(password_digest, expected) or password is None:
                return self._refused(
                    "auth_user_mismatch", "username/password mismatch", peer, frame
                )
        me = self.self_hostname.encode("utf-8")
        pong = ["PONG", True, "", self.self_hostname, sha512_hex(salt, me, nonce, key).decode()]
        return pong, None

    def _refused(
        self, reason: str, text: str, peer: str, frame: Any = None
    ) -> tuple[list[Any], str]:
        self.count(reason)
        ping = isinstance(frame, list) and len(frame) == 6 and frame[0] == b"PING"
        host = decode_text(frame[1])[0][:255] if ping and isinstance(frame[1], bytes) else None
        user = decode_text(frame[4])[0][:255] if ping and isinstance(frame[4], bytes) else None
        log.warning(
            "%s: authentication refused from %s: %s (client hostname %r, user %r)",
            self.name, peer, text, host, user or None,
        )
        return ["PONG", False, text, "", ""], reason

    async def _send(self, writer: asyncio.StreamWriter, message: Any) -> None:
        writer.write(msgpack.packb(message))
        await writer.drain()

    def entries(self, frame: Any) -> tuple[str, list[Any], dict[str, Any]] | None:
        """``(tag, [[time, record], ...], option)`` of a frame, or None if it has no mode."""
        if not isinstance(frame, list) or len(frame) < 2 or not isinstance(frame[0], bytes):
            return None
        tag = decode_text(frame[0])[0]
        second = frame[1]
        option: Any = None
        if isinstance(second, list):  # Forward
            entries, option = second, frame[2] if len(frame) > 2 else None
        elif isinstance(second, bytes):  # (Compressed)PackedForward
            option = frame[2] if len(frame) > 2 else None
            compressed = isinstance(option, dict) and option.get(b"compressed") == b"gzip"
            try:
                data = gunzip(second, self.max_connection_bytes) if compressed else second
                entries = _unpack_all(data, self.max_connection_bytes)
            except (ValueError, TypeError, zlib.error, msgpack.UnpackException):
                self.count("packed_entries_malformed")
                entries = [None]  # forwarded as one invalid entry
        elif len(frame) >= 3:  # Message
            entries, option = [[second, frame[2]]], frame[3] if len(frame) > 3 else None
        else:
            return None
        return tag, entries, option if isinstance(option, dict) else {}

    def records(
        self, frame: Any, sender: str
    ) -> tuple[list[tuple[bytes, Record]], bytes | str | None]:
        """One decoded frame -> (``(key, record)`` items, chunk id to ack or None)."""
        parsed = self.entries(frame)
        if parsed is None:
            item = self._invalid(frame, sender, "fluentd", "frame_invalid")
            return [item], None
        tag, entries, option = parsed
        chunk = option.get(b"chunk")
        chunk = chunk if isinstance(chunk, (bytes, str)) else None
        out = []
        invalid = 0
        rest: list[Any] = []  # invalid entries past MAX_INVALID_RECORDS: forwarded as one record
        for index, entry in enumerate(entries):
            if not isinstance(entry, list) or len(entry) < 2 or not isinstance(entry[1], dict):
                invalid += 1
                if invalid < MAX_INVALID_RECORDS:
                    out.append(self._invalid(entry, sender, tag, "entry_invalid"))
                else:
                    self.count("entry_invalid")
                    rest.append(entry)
                continue
            try:
                out.extend(self._joined(self._record(tag, entry[0], entry[1], sender, chunk,
                                                     index)))
            except (ValueError, TypeError, OverflowError, RecursionError) as exc:
                log.debug("%s: entry %d of %s not convertible: %s", self.name, index, tag, exc)
                invalid += 1
                out.append(self._invalid(repr(exc), sender, tag, "entry_invalid"))
        if rest:
            out.append(self._invalid(rest, sender, tag, "entry_invalid"))
            self.errors["entry_invalid"] -= 1  # each was counted above
        return out, chunk

    def _joined(self, item: tuple[bytes, Record]) -> list[tuple[bytes, Record]]:
        """A piece of a line dockerd cut (``partial_*`` fields) goes to the joiner; other
        records pass (see ``partials``)."""
        key, record = item
        fields = record.get("fields")
        if not fields or fields.get("partial_message") != "true":
            return [item]
        pid = fields.pop("partial_id", None)
        ordinal = str(fields.pop("partial_ordinal", "0"))
        last = fields.pop("partial_last", "true") != "false"
        del fields["partial_message"]
        if not isinstance(pid, str):
            return [item]
        return self.partials.add(key, pid, int(ordinal) if ordinal.isdigit() else 0, last,
                                 record)

    def _invalid(self, obj: Any, sender: str, tag: str, reason: str) -> tuple[bytes, Record]:
        bad = [False]
        try:
            data = orjson.dumps(_plain(obj, bad), default=str)
        except (ValueError, TypeError, RecursionError) as exc:  # too deep to show
            data = f"<entry not representable: {exc}>".encode()
        record = self.error_record(reason, data, sender)
        add_flag(record, FLAG_FLUENTD_INVALID)
        record["source"]["tag"] = tag
        return f"fluentd/{tag}".encode(), record

    def _record(
        self, tag: str, when: Any, body: dict[Any, Any], sender: str, chunk: Any, index: int
    ) -> tuple[bytes, Record]:
        bad = [False]
        fields = _plain(body, bad)
        message: Any = None
        for k in MESSAGE_KEYS:
            if k in fields:
                message = fields.pop(k)
                break
        if message is None:
            message = orjson.dumps(fields, default=str).decode()
        elif not isinstance(message, str):
            message = orjson.dumps(message, default=str).decode()
        stream = fields.get("source") if fields.get("source") in ("stdout", "stderr") else None
        record = self.new_record({"host": sender, "tag": tag}, stream)
        if bad[0]:
            add_flag(record, FLAG_INVALID_UTF8)
        data = message.encode("utf-8", "surrogatepass")
        if len(data) > self.max_message_bytes:
            self.count("message_truncated")
            add_flag(record, FLAG_TRUNCATED)
            message = decode_text(data[: self.max_message_bytes])[0]
        record["message"] = message
        record["time"], ident = _time(when)
        if chunk is not None:
            record["id"] = event_id("fluentd", self.name, tag, chunk, index)
        else:
            record["id"] = self.stable_id(
                f"{sender}/{tag}", ident, msgpack.packb(body, default=str)
            )
        if fields:
            record["fields"] = fields
        container = docker_container(fields.get("container_id"), fields.get("container_name"))
        if container:  # Docker's driver; its tag may name the image ({{.ImageName}}/...)
            record["container"] = {**tag_container(self.tags, tag), **container}
        return f"fluentd/{tag}".encode(), record

    async def _read(self, conn: Connection, handshake: tuple[bytes, bytes, float] | None,
                    peer: str) -> bytes | None:
        """The next bytes (b"" at end of input); None when the handshake timed out."""
        if handshake is None:
            return await conn.reader.read(READ_SIZE)
        try:
            async with asyncio.timeout_at(handshake[2]):
                return await conn.reader.read(READ_SIZE)
        except TimeoutError:
            pong, _ = self._refused("auth_timeout", "no valid PING in time", peer)
            await self._send(conn.writer, pong)
            return None

    async def _connection(self, conn: Connection) -> None:
        writer = conn.writer
        peername = writer.get_extra_info("peername") or (conn.peer,)
        peer = f"{conn.peer}:{peername[1]}" if len(peername) > 1 else conn.peer
        splitter = FrameSplitter(self.max_connection_bytes)
        # Until the PING is checked: (nonce, auth salt, deadline); None once authenticated.
        pending: tuple[bytes, bytes, float] | None = None
        if self._shared_key is not None:
            nonce = secrets.token_bytes(SALT_BYTES)
            auth_salt = secrets.token_bytes(SALT_BYTES) if self._users else b""
            deadline = asyncio.get_running_loop().time() + self.handshake_timeout
            pending = (nonce, auth_salt, deadline)
            await self._send(writer, self.helo(nonce, auth_salt))
        while True:
            data = await self._read(conn, pending, peer)
            if not data:
                if data is not None and splitter.buffered:
                    self.count("frame_incomplete")
                return
            frames, error = splitter.feed(data)
            items: list[tuple[bytes, Record]] = []
            acks: list[bytes] = []
            for raw in frames:
                frame = self._decode(raw)
                if pending is not None:  # the first frame must be a valid PING
                    pong, failure = self.check_ping(frame, pending[0], pending[1], peer)
                    await self._send(writer, pong)
                    if failure is not None:
                        return
                    pending = None
                elif frame is not _MALFORMED:
                    self._take(frame, conn.peer, items, acks)
            if items or acks:  # the frames of one read: one submission, acked together
                self._ack_when_published(conn, await self.submit(items, len(data), conn), acks)
            if error is not None:
                self.count(error)  # the stream cannot be resynchronised: close it
                return
            if conn.failed or not self.progress(conn, len(frames), splitter.buffered):
                return
            if pending is not None and splitter.buffered > HANDSHAKE_MAX_BYTES:
                pong, _ = self._refused("auth_ping_invalid", "ping message too large", peer)
                await self._send(writer, pong)
                return

    def _decode(self, raw: bytes) -> Any:
        """One whole frame's bytes -> its object (``_MALFORMED``, counted, when it is not)."""
        try:
            return msgpack.unpackb(raw, **_UNPACK_OPTIONS)
        except (msgpack.UnpackException, ValueError, TypeError):  # TypeError: unhashable key
            self.count("frame_malformed")
            return _MALFORMED

    def _take(self, frame: Any, sender: str, items: list[tuple[bytes, Record]],
              acks: list[bytes]) -> None:
        """One data frame's records into ``items``; the ack of its chunk into ``acks``."""
        try:
            records, chunk = self.records(frame, sender)
        except (TypeError, ValueError, OverflowError, RecursionError):  # data the mapping cannot take
            self.count("frame_invalid")
            return
        items.extend(records)
        if chunk is not None:
            acks.append(msgpack.packb(
                {"ack": chunk if isinstance(chunk, str) else decode_text(chunk)[0]}))

    @staticmethod
    def _ack_when_published(conn: Connection, fut: asyncio.Future[bool],
                            acks: list[bytes]) -> None:
        """Write ``acks`` once ``fut`` says published (never when not: the sender resends
        those chunks)."""
        if not acks:
            return
        writer = conn.writer

        def send(done: asyncio.Future[bool]) -> None:
            if not done.cancelled() and done.result() and not writer.is_closing():
                writer.write(b"".join(acks))

        if fut.done():
            send(fut)
        else:
            fut.add_done_callback(send)


def _is_array(first: int) -> bool:
    return 0x90 <= first <= 0x9F or first in (0xDC, 0xDD)


_MALFORMED = object()
_UNPACK_OPTIONS: dict[str, Any] = {
    "raw": True, "ext_hook": _ext_hook, "strict_map_key": False, "use_list": True,
}


class FrameSplitter:
    """Cuts a msgpack stream into whole objects' bytes without building them: msgpack's
    ``skip`` walks the headers and allocates nothing, so a declared length costs memory only
    once its bytes arrived (an unpacker fed the stream directly reserves a list per declared
    array header: 5 KB of headers held ~61 MiB). At most ``max_bytes`` are held for one
    incomplete object (``frame_too_large`` beyond)."""

    def __init__(self, max_bytes: int, arrays_only: bool = False) -> None:
        self.arrays_only = arrays_only  # an object that is not an array is an error
        self._scan = msgpack.Unpacker(max_buffer_size=max_bytes)
        self._buf = bytearray()
        self._base = 0  # stream offset of self._buf[0]

    def feed(self, data: bytes) -> tuple[list[bytes], str | None]:
        """(whole objects completed by ``data``, error reason or None); after an error the
        stream cannot be resynchronised."""
        try:
            self._scan.feed(data)
        except msgpack.BufferFull:
            return [], "frame_too_large"
        self._buf += data
        out: list[bytes] = []
        while True:
            if self.arrays_only and self._buf and not _is_array(self._buf[0]):
                return out, "not_an_array"
            try:
                self._scan.skip()
            except msgpack.OutOfData:
                return out, None
            except (msgpack.UnpackException, ValueError):  # FormatError, StackError
                return out, "frame_malformed"
            end = self._scan.tell() - self._base
            out.append(bytes(self._buf[:end]))
            del self._buf[:end]
            self._base += end

    @property
    def buffered(self) -> int:
        return len(self._buf)
