"""Fluentd forward receiver: every mode with ack, over a real loopback connection; bad input."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import msgpack
import pytest
from aiotest import WAIT, run, until
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.ops.security import SecurityConfigError
from streams.sources.base import ListPublisher
from streams.sources.receivers.fluentd import (
    FLAG_FLUENTD_INVALID,
    FluentdReceiver,
    auth_settings,
    load_users,
    pack_event_time,
)
from streams.transport.records import FLAG_INVALID_UTF8, FLAG_TRUNCATED

ET = pack_event_time(1764064800, 123456789)
ET_TEXT = "2025-11-25T10:00:00.123456789Z"


def entries(*messages: str) -> bytes:
    return b"".join(msgpack.packb([ET, {"log": m}]) for m in messages)


async def read_acks(reader: asyncio.StreamReader, n: int) -> list[Any]:
    unpacker = msgpack.Unpacker()
    acks: list[Any] = []
    while len(acks) < n:
        data = await asyncio.wait_for(reader.read(4096), WAIT)
        assert data, "connection closed before the acks"
        unpacker.feed(data)
        acks.extend(unpacker)
    return acks


def test_every_mode_with_ack() -> None:
    docker = {
        "container_id": "f00d",
        "container_name": "/web",
        "source": "stderr",
        "log": "from docker",
    }
    frames = [
        ["docker.f00d", ET, docker, {"chunk": "c-message"}],  # Message
        [
            "app",
            [[1764064800, {"message": "fw-1"}], [ET, {"msg": "fw-2", "n": 2}]],
            {"chunk": "c-forward"},
        ],
        ["app", entries("p-1", "p-2"), {"chunk": "c-packed", "size": 2}],  # PackedForward
        [
            "app",
            gzip.compress(entries("g-1")) + gzip.compress(entries("g-2")),
            {"chunk": "c-gzip", "compressed": "gzip"},
        ],  # CompressedPackedForward, two members
        ["app", ET, {"log": "no ack asked"}],
    ]

    async def main() -> None:
        pub = ListPublisher()
        async with FluentdReceiver(pub) as r:
            reader, w = await asyncio.open_connection("127.0.0.1", r.port)
            payload = b"".join(msgpack.packb(f) for f in frames)
            for i in range(0, len(payload), 7):  # frames split across writes
                w.write(payload[i : i + 7])
            await w.drain()
            acks = await read_acks(reader, 4)
            await until(lambda: len(pub.records) == 8)
            w.close()
            assert acks == [{"ack": c} for c in ("c-message", "c-forward", "c-packed", "c-gzip")]
            recs = pub.records
            assert [x["message"] for x in recs] == [
                "from docker",
                "fw-1",
                "fw-2",
                "p-1",
                "p-2",
                "g-1",
                "g-2",
                "no ack asked",
            ]
            first = recs[0]
            assert first["stream"] == "stderr" and first["time"] == ET_TEXT
            assert first["container"] == {"id": "f00d", "name": "web", "runtime": "docker"}
            assert first["fields"] == {
                "container_id": "f00d",
                "container_name": "/web",
                "source": "stderr",
            }
            assert first["source"] == {"type": "fluentd", "host": "127.0.0.1", "tag": "docker.f00d"}
            assert recs[1]["time"] == "2025-11-25T10:00:00.000000Z"
            assert recs[2]["fields"] == {"n": 2}
            assert pub.batches[0][0] == b"fluentd/docker.f00d"
            assert len({x["id"] for x in recs}) == 8
            assert r.errors == {}

    run(main)


def test_resent_chunk_keeps_its_ids() -> None:
    frame = msgpack.packb(["app", entries("a", "b"), {"chunk": "same"}])

    async def main() -> None:
        pub = ListPublisher()
        async with FluentdReceiver(pub) as r:
            for _ in range(2):
                reader, w = await asyncio.open_connection("127.0.0.1", r.port)
                w.write(frame)
                await read_acks(reader, 1)
                w.close()
            ids = [x["id"] for x in pub.records]
            assert ids[:2] == ids[2:] and ids[0] != ids[1]

    run(main)


def test_bad_input_is_counted_and_connection_closed_cleanly() -> None:
    async def main() -> None:
        pub = ListPublisher()
        async with FluentdReceiver(pub, max_message_bytes=10, max_connection_bytes=4096) as r:
            reader, w = await asyncio.open_connection("127.0.0.1", r.port)
            w.write(
                msgpack.packb(["app", ET, {"log": b"caf\xe9 \x00 long message"}, {"chunk": "k1"}])
            )
            w.write(msgpack.packb(["app", [[ET, "not a map"], "junk"], {"chunk": "k2"}]))
            w.write(msgpack.packb(["app", b"\xc1\xc1", {"chunk": "k3"}]))  # packed garbage
            w.write(msgpack.packb({"not": "an array"}))
            await w.drain()
            assert len(await read_acks(reader, 3)) == 3
            w.write(b"\xc1")  # never valid msgpack: the stream cannot continue
            await w.drain()
            assert await asyncio.wait_for(reader.read(), WAIT) == b""
            w.close()
            recs = pub.records
            assert recs[0]["message"] == "caf\ufffd \x00 l"  # 10 bytes of UTF-8
            assert set(recs[0]["flags"]) == {FLAG_INVALID_UTF8, FLAG_TRUNCATED}
            invalid = [x for x in recs if FLAG_FLUENTD_INVALID in x.get("flags", [])]
            assert len(invalid) == 4
            assert r.errors == {
                "message_truncated": 3,
                "entry_invalid": 3,
                "packed_entries_malformed": 1,
                "frame_invalid": 1,
                "frame_malformed": 1,
            }

            # a frame over the connection limit: counted, closed; the receiver lives on
            reader, w = await asyncio.open_connection("127.0.0.1", r.port)
            w.write(msgpack.packb(["app", ET, {"log": "z" * 10000}]))
            await w.drain()
            assert await asyncio.wait_for(reader.read(), WAIT) == b""
            w.close()
            assert r.errors["frame_too_large"] == 1
            reader, w = await asyncio.open_connection("127.0.0.1", r.port)
            w.write(msgpack.packb(["app", ET, {"log": "ok"}, {"chunk": "k4"}]))
            assert await read_acks(reader, 1) == [{"ack": "k4"}]
            w.close()

    run(main)


json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.binary(max_size=20)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.binary(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_like)
def test_any_msgpack_frame_gives_records_or_counted_errors(obj: Any) -> None:
    r = FluentdReceiver(ListPublisher())
    frame = msgpack.unpackb(msgpack.packb(obj), raw=True, strict_map_key=False)
    for f in (frame, [b"tag", frame], [b"tag", ET, frame], [b"tag", msgpack.packb(obj)]):
        items, _ = r.records(f, "10.0.0.1")
        assert all(isinstance(rec["message"], str) and rec["id"] for _, rec in items)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_on_the_wire_never_kill_the_receiver(data: bytes) -> None:
    async def main() -> None:
        pub = ListPublisher()
        async with FluentdReceiver(pub, max_connection_bytes=1024) as r:
            reader, w = await asyncio.open_connection("127.0.0.1", r.port)
            w.write(data)
            w.write_eof()
            await asyncio.wait_for(reader.read(), WAIT)
            w.close()
            assert "internal_error" not in r.errors

    run(main)


# -- shared-key authentication ---------------------------------------------------------------
#
# The client below is written from the Forward Protocol Specification v1, "Handshake Messages":
# HELO ["HELO", {nonce, auth, keepalive}]; PING ["PING", client_hostname, shared_key_salt,
# sha512_hex(shared_key_salt + client_hostname + nonce + shared_key), username,
# sha512_hex(auth_salt + username + password)]; PONG ["PONG", ok, reason, server_hostname,
# sha512_hex(shared_key_salt + server_hostname + nonce + shared_key)].

KEY = "Sh4red-Key-do-not-print"
PASSWORD = "alice-Passw0rd:with-colon"
SERVER = "logriver-test-host"


def sha512_hex(*parts: bytes) -> str:
    return hashlib.sha512(b"".join(parts)).hexdigest()


class Client:
    """A forward-protocol client over a real loopback connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.unpacker = msgpack.Unpacker(raw=False)
        self.nonce = b""
        self.salt = os.urandom(16)

    @classmethod
    async def connect(cls, port: int) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def recv(self) -> Any:
        while True:
            try:
                return next(self.unpacker)
            except StopIteration:
                pass
            data = await asyncio.wait_for(self.reader.read(4096), WAIT)
            assert data, "connection closed"
            self.unpacker.feed(data)

    async def closed(self) -> bool:
        """True once the server closed (after reading what it still sent)."""
        rest = await asyncio.wait_for(self.reader.read(), WAIT)
        self.unpacker.feed(rest)
        return True

    def send(self, obj: Any, *, bin_type: bool = True) -> None:
        self.writer.write(msgpack.packb(obj, use_bin_type=bin_type))

    async def helo(self) -> dict[str, Any]:
        helo = await self.recv()
        assert isinstance(helo, list) and len(helo) == 2 and helo[0] == "HELO"
        self.nonce = helo[1]["nonce"]
        return helo[1]

    def ping(
        self,
        key: str,
        *,
        auth: bytes = b"",
        hostname: str = "client.example",
        username: str = "",
        password: str = "",
        bin_type: bool = True,
    ) -> None:
        digest = sha512_hex(self.salt, hostname.encode(), self.nonce, key.encode())
        pw = sha512_hex(auth, username.encode(), password.encode()) if auth else ""
        # bin_type=False: every bytes value as a msgpack str, as fluent-bit sends its raw salt
        self.send(["PING", hostname, self.salt, digest, username if auth else "", pw],
                  bin_type=bin_type)

    def close(self) -> None:
        self.writer.close()


def data_frame(message: str, chunk: str) -> list[Any]:
    return ["app", ET, {"log": message}, {"chunk": chunk}]


@pytest.mark.parametrize("bin_type", [True, False], ids=["bin-salt", "str-salt-like-fluent-bit"])
def test_handshake_then_data_is_published(bin_type: bool) -> None:
    async def main() -> None:
        pub = ListPublisher()
        async with FluentdReceiver(pub, shared_key=KEY, self_hostname=SERVER) as r:
            c = await Client.connect(r.port)
            opts = await c.helo()
            assert len(opts["nonce"]) == 16 and isinstance(opts["nonce"], bytes)
            assert opts["auth"] == b"" and opts["keepalive"] is True
            c.ping(KEY, bin_type=bin_type)
            pong = await c.recv()
            assert pong[:4] == ["PONG", True, "", SERVER]
            # the server proves it knows the key too: checked on the client side
            assert pong[4] == sha512_hex(c.salt, SERVER.encode(), c.nonce, KEY.encode())
            c.send(data_frame("after auth", "c1"))
            assert await c.recv() == {"ack": "c1"}
            c.close()
            first_nonce = c.nonce

            # PING and data pipelined in one write, as a client that does not wait may do
            c = await Client.connect(r.port)
            await c.helo()
            c.ping(KEY, bin_type=bin_type)
            c.send(data_frame("pipelined", "c2"))
            assert (await c.recv())[1] is True
            assert await c.recv() == {"ack": "c2"}
            c.close()
            assert [x["message"] for x in pub.records] == ["after auth", "pipelined"]
            assert pub.records[0]["source"]["host"] == "127.0.0.1"
            assert r.errors == {}
            assert c.nonce != first_nonce  # each connection gets its own nonce
            assert r.auth == "shared_key"

    run(main)


def test_wrong_shared_key_is_refused_and_nothing_published(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "streams.sources.receivers.fluentd")

    async def main() -> None:
        pub = ListPublisher()
        async with FluentdReceiver(pub, shared_key=KEY, self_hostname=SERVER) as r:
            c = await Client.connect(r.port)
            await c.helo()
            c.ping("not-the-key")
            c.send(data_frame("must not pass", "c1"))  # pipelined: must be dropped
            assert await c.recv() == ["PONG", False, "shared_key mismatch", "", ""]
            assert await c.closed()
            assert list(c.unpacker) == []  # no ack
            c.close()
            assert pub.records == []
            assert r.errors == {"auth_shared_key_mismatch": 1}

    run(main)
    [warning] = [x for x in caplog.records if x.levelno == logging.WARNING]
    assert "shared_key mismatch" in warning.getMessage()
    assert "127.0.0.1:" in warning.getMessage()  # the peer address, with its port


def test_user_authentication() -> None:
    async def main() -> None:
        pub = ListPublisher()
        users = {"alice": PASSWORD, "bob": "bob-pw"}
        async with FluentdReceiver(pub, shared_key=KEY, users=users, self_hostname=SERVER) as r:
            assert r.auth == "shared_key+users"
            c = await Client.connect(r.port)
            opts = await c.helo()
            assert isinstance(opts["auth"], bytes) and len(opts["auth"]) == 16
            c.ping(KEY, auth=opts["auth"], username="alice", password=PASSWORD)
            pong = await c.recv()
            assert pong[:4] == ["PONG", True, "", SERVER]
            assert pong[4] == sha512_hex(c.salt, SERVER.encode(), c.nonce, KEY.encode())
            c.send(data_frame("alice's line", "a1"))
            assert await c.recv() == {"ack": "a1"}
            c.close()

            for username, password in [("alice", "bob-pw"), ("mallory", PASSWORD), ("", "")]:
                c = await Client.connect(r.port)
                opts = await c.helo()
                c.ping(KEY, auth=opts["auth"], username=username, password=password)
                c.send(data_frame("refused", "x"))
                assert await c.recv() == ["PONG", False, "username/password mismatch", "", ""]
                assert await c.closed()
                c.close()

            # a digest over another connection's auth salt does not replay
            c = await Client.connect(r.port)
            await c.helo()
            c.ping(KEY, auth=os.urandom(16), username="alice", password=PASSWORD)
            assert (await c.recv())[1] is False
            c.close()
            assert [x["message"] for x in pub.records] == ["alice's line"]
            assert r.errors == {"auth_user_mismatch": 4}

    run(main)


def test_data_frame_before_ping_is_refused() -> None:
    async def main() -> None:
        pub = ListPublisher()
        async with FluentdReceiver(pub, shared_key=KEY, max_connection_bytes=1 << 20) as r:
            # a sender without shared-key support (Docker's driver): data straight away
            c = await Client.connect(r.port)
            await c.helo()
            c.send(data_frame("no auth", "c1"))
            assert await c.recv() == ["PONG", False, "invalid ping message", "", ""]
            assert await c.closed()
            c.close()

            # a PING of the wrong shape is no better
            c = await Client.connect(r.port)
            await c.helo()
            c.send(["PING", "host", b"salt"])
            assert (await c.recv())[:3] == ["PONG", False, "invalid ping message"]
            c.close()

            # a huge first frame is cut short, not buffered up to max_connection_bytes
            c = await Client.connect(r.port)
            await c.helo()
            c.send(["app", ET, {"log": "z" * 200_000}])
            try:
                assert (await c.recv())[:3] == ["PONG", False, "ping message too large"]
                assert await c.closed()
            except ConnectionResetError:
                pass  # closed with the client's bytes unread: TCP may reset before the PONG
            c.close()
            await until(lambda: r.connections == 0)
            assert pub.records == []
            assert r.errors["auth_ping_invalid"] == 3
            assert set(r.errors) <= {"auth_ping_invalid", "connection_reset"}

    run(main)


def test_a_client_that_never_pings_is_disconnected() -> None:
    async def main() -> None:
        pub = ListPublisher()
        async with FluentdReceiver(pub, shared_key=KEY, handshake_timeout=0.3) as r:
            c = await Client.connect(r.port)
            await c.helo()
            c.send([])  # a complete frame that is not a PING...
            assert (await c.recv())[1] is False  # ...is refused at once
            c.close()

            c = await Client.connect(r.port)
            await c.helo()
            c.writer.write(msgpack.packb(["PING", "slow"])[:5])  # a PING that never completes
            assert await c.recv() == ["PONG", False, "no valid PING in time", "", ""]
            assert await c.closed()
            c.close()
            assert r.errors == {"auth_ping_invalid": 1, "auth_timeout": 1}

    run(main)


def test_no_shared_key_means_no_handshake() -> None:
    async def main() -> None:
        pub = ListPublisher()
        async with FluentdReceiver(pub) as r:
            assert r.auth == "none"
            c = await Client.connect(r.port)
            c.send(data_frame("plain", "p1"))
            assert await c.recv() == {"ack": "p1"}  # the first thing the server says: no HELO
            c.close()
            assert [x["message"] for x in pub.records] == ["plain"]

    run(main)


def test_secrets_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    r = FluentdReceiver(ListPublisher(), shared_key=KEY, users={"alice": PASSWORD})

    async def main() -> None:
        async with r:
            for key, password in [(KEY, PASSWORD), ("wrong", PASSWORD), (KEY, "wrong")]:
                c = await Client.connect(r.port)
                opts = await c.helo()
                c.ping(key, auth=opts["auth"], username="alice", password=password)
                await c.recv()
                c.close()
            c = await Client.connect(r.port)
            await c.helo()
            c.send(data_frame("x", "y"))
            await c.recv()
            c.close()

    run(main)
    assert sum(r.errors.values()) == 3
    shown = [repr(r), str(r), repr(vars(r)), caplog.text]
    for text in shown:
        for secret in (KEY, PASSWORD):
            assert secret not in text
    assert "auth='shared_key+users'" in repr(r)


def test_invalid_configuration_is_rejected() -> None:
    pub = ListPublisher()
    with pytest.raises(SecurityConfigError, match="empty"):
        FluentdReceiver(pub, shared_key="")
    with pytest.raises(SecurityConfigError, match="needs a shared key"):
        FluentdReceiver(pub, users={"alice": "pw"})
    with pytest.raises(SecurityConfigError, match="name and a password"):
        FluentdReceiver(pub, shared_key=KEY, users={"alice": ""})


def test_auth_settings_from_files_and_environment(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    users_file = tmp_path / "users"
    users_file.write_text(f"# fluent-bit agents\nalice:{PASSWORD}\n\n bob :bob-pw\n")

    assert auth_settings(env={}) == {}
    got = auth_settings(str(key_file), str(users_file), "me.example", env={})
    assert got["shared_key"].reveal() == KEY and got["self_hostname"] == "me.example"
    assert {k: v.reveal() for k, v in got["users"].items()} == {"alice": PASSWORD, "bob": "bob-pw"}
    assert auth_settings(env={"LOGRIVER_FLUENTD_SHARED_KEY": KEY})["shared_key"].reveal() == KEY
    from_file_env = auth_settings(env={"LOGRIVER_FLUENTD_SHARED_KEY_FILE": str(key_file)})
    assert from_file_env["shared_key"].reveal() == KEY

    with pytest.raises(SecurityConfigError, match="not both"):
        auth_settings(str(key_file), env={"LOGRIVER_FLUENTD_SHARED_KEY": "other"})
    with pytest.raises(SecurityConfigError, match="need a shared key"):
        auth_settings(users_file=str(users_file), env={})
    with pytest.raises(SecurityConfigError, match="cannot read"):
        auth_settings(str(tmp_path / "missing"), env={})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SecurityConfigError, match="empty"):
        auth_settings(str(tmp_path / "empty"), env={})
    bad = tmp_path / "bad-users"
    bad.write_text(f"alice:{PASSWORD}\nlonely-password\n")  # a password without its user
    with pytest.raises(SecurityConfigError, match="line 2") as exc:
        load_users(str(bad))
    assert "lonely-password" not in str(exc.value)
    bad.write_text("alice:a\nalice:b\n")
    with pytest.raises(SecurityConfigError, match="twice"):
        load_users(str(bad))


def test_collect_command_builds_an_authenticating_receiver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streams.cli import CliError, collect

    monkeypatch.delenv("LOGRIVER_FLUENTD_SHARED_KEY", raising=False)
    monkeypatch.delenv("LOGRIVER_FLUENTD_SHARED_KEY_FILE", raising=False)
    key_file = tmp_path / "key"
    key_file.write_text(KEY)
    parser = argparse.ArgumentParser()
    collect.register(parser.add_subparsers())

    def build(*argv: str) -> FluentdReceiver:
        args = parser.parse_args(["collect", "--fluentd", "0", *argv])
        [receiver] = collect.build_receivers(args, ListPublisher())  # type: ignore[arg-type]
        return receiver

    assert build().auth == "none"
    r = build("--fluentd-shared-key-file", str(key_file), "--fluentd-self-hostname", "agg-1")
    assert r.auth == "shared_key" and r.self_hostname == "agg-1"
    monkeypatch.setenv("LOGRIVER_FLUENTD_SHARED_KEY", KEY)
    assert build().auth == "shared_key"
    with pytest.raises(CliError, match="not both"):
        build("--fluentd-shared-key-file", str(key_file))
