"""Fluentd forward receiver: every mode with ack, over a real loopback connection; bad input."""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import msgpack
from aiotest import WAIT, run, until
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.records import FLAG_INVALID_UTF8, FLAG_TRUNCATED
from streams.sources.base import ListPublisher
from streams.sources.receivers.fluentd import FLAG_FLUENTD_INVALID, FluentdReceiver, pack_event_time

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
            assert first["container"] == {"id": "f00d", "runtime": "docker"}
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
