"""GELF receiver: chunked and compressed UDP datagrams, NUL-delimited TCP, bad input."""

from __future__ import annotations

import asyncio
import gzip
import os
import socket
import zlib
from typing import Any

import orjson
from aiotest import run, until
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.sources.base import ListPublisher
from streams.sources.receivers.gelf import (
    CHUNK_MAGIC,
    FLAG_GELF_PARSE_ERROR,
    ChunkAssembler,
    GelfReceiver,
    PayloadError,
    decompress,
)
from streams.transport.records import FLAG_TRUNCATED


def gelf(short: str, **extra: Any) -> bytes:
    return orjson.dumps(
        {
            "version": "1.1",
            "host": "web-1",
            "short_message": short,
            "timestamp": 1764064800.25,
            "level": 6,
            **extra,
        }
    )


def chunks(payload: bytes, size: int, msg_id: bytes | None = None) -> list[bytes]:
    msg_id = msg_id or os.urandom(8)
    parts = [payload[i : i + size] for i in range(0, len(payload), size)]
    return [CHUNK_MAGIC + msg_id + bytes([i, len(parts)]) + p for i, p in enumerate(parts)]


def test_chunked_gzip_datagram_over_udp() -> None:
    async def main() -> None:
        pub = ListPublisher()
        async with GelfReceiver(pub, tcp_port=None) as r:
            body = "x" * 3000 + os.urandom(3000).hex()  # does not compress to one chunk
            payload = gzip.compress(
                gelf(
                    body,
                    _container_id="c0ffee",
                    _container_name="web",
                    _tag="t",
                    full_message="full",
                )
            )
            parts = chunks(payload, 1000)
            assert len(parts) > 3
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for p in reversed(parts):  # any order
                s.sendto(p, ("127.0.0.1", r.udp_port))
            s.sendto(zlib.compress(gelf("zlib one")), ("127.0.0.1", r.udp_port))
            s.sendto(gelf("plain one"), ("127.0.0.1", r.udp_port))
            s.close()
            await until(lambda: len(pub.records) >= 3)
            first, second, third = pub.records
            assert first["message"] == body
            assert first["time"] == "2025-11-25T10:00:00.250000Z"
            assert first["fields"]["container_name"] == "web" and first["fields"]["tag"] == "t"
            assert first["fields"]["gelf"] == {"version": "1.1", "level": 6, "full_message": "full"}
            assert first["container"] == {"id": "c0ffee", "name": "web", "runtime": "docker"}
            assert first["stream"] == "stdout"  # Docker writes stdout at level 6
            assert first["source"]["host"] == "web-1"
            assert pub.batches[0][0] == b"gelf/c0ffee"
            assert (second["message"], third["message"]) == ("zlib one", "plain one")
            assert len(r.chunks) == 0 and r.errors == {}

    run(main)


def test_tcp_null_delimited_with_bad_frames() -> None:
    async def main() -> None:
        pub = ListPublisher()
        async with GelfReceiver(pub, udp_port=None, max_message_bytes=500) as r:
            _, w = await asyncio.open_connection("127.0.0.1", r.tcp_port)
            w.write(gelf("one") + b"\x00" + b'{"short_message": "trunc' + b"\x00")
            w.write(gelf("y" * 1000) + b"\x00")  # over the limit
            w.write(gelf("caf\u00e9 \x00 inside") + b"\x00")  # JSON-escaped NUL is fine
            w.write(b'{"host": "h"}\x00' + gelf("last") + b"\x00")
            await w.drain()
            await until(lambda: len(pub.records) >= 6)
            w.close()
            by_key: dict[bytes, list[dict[str, Any]]] = {}  # order holds per key
            for key, batch in pub.batches:
                by_key.setdefault(key, []).extend(batch)
            good, bad = by_key[b"gelf/web-1"], by_key[b"gelf/127.0.0.1"]
            assert [x["message"] for x in good] == ["one", "caf\u00e9 \x00 inside", "last"]
            assert bad[0]["flags"] == [FLAG_GELF_PARSE_ERROR]
            assert bad[0]["message"] == '{"short_message": "trunc'
            assert FLAG_TRUNCATED in bad[1]["flags"] and len(bad[1]["message"]) == 500
            assert bad[2]["flags"] == [FLAG_GELF_PARSE_ERROR]
            assert r.errors == {FLAG_GELF_PARSE_ERROR: 2, "message_too_large": 1}

    run(main)


def test_decompression_is_bounded() -> None:
    bomb = gzip.compress(b"{" + b" " * (10 * 1024 * 1024) + b"}")
    try:
        decompress(bomb, 1024 * 1024)
    except PayloadError as exc:
        assert exc.reason == "message_too_large"
    else:
        raise AssertionError("no limit")
    r = GelfReceiver(ListPublisher(), max_message_bytes=1024)
    _, record = r.datagram(bomb, "10.0.0.9")  # type: ignore[misc]
    assert FLAG_TRUNCATED in record["flags"] and r.errors["message_too_large"] == 1
    _, broken = r.datagram(gzip.compress(gelf("x"))[:-12], "10.0.0.9")  # type: ignore[misc]
    assert "decompress_error" in broken["flags"]


def test_chunk_assembler_timeout_duplicates_and_limits() -> None:
    errors: dict[str, int] = {}

    def count(reason: str) -> None:
        errors[reason] = errors.get(reason, 0) + 1

    asm = ChunkAssembler(timeout=5.0, max_pending_messages=2, max_message_bytes=100)
    a = chunks(b"A" * 30, 10, b"aaaaaaaa")
    assert asm.add(a[0], 0.0, count) is None
    assert asm.add(a[0], 1.0, count) is None  # duplicate
    asm.expire(4.9, count)
    assert len(asm) == 1
    asm.expire(5.0, count)
    assert len(asm) == 0 and errors == {"chunk_timeout": 1}
    assert asm.add(a[0], 6.0, count) is None and asm.add(a[2], 6.0, count) is None
    assert asm.add(a[1], 6.0, count) == b"A" * 30
    for mid in (b"b" * 8, b"c" * 8, b"d" * 8):  # third pending message evicts the oldest
        asm.add(chunks(b"B" * 20, 10, mid)[0], 7.0, count)
    assert errors["chunk_evicted"] == 1 and len(asm) == 2
    big = chunks(b"C" * 200, 60, b"e" * 8)
    for c in big:
        asm.add(c, 8.0, count)
    assert errors["message_too_large"] == 1
    asm.add(CHUNK_MAGIC + b"f" * 8 + bytes([5, 3]) + b"x", 8.0, count)  # seq >= count
    asm.add(CHUNK_MAGIC + b"g" * 8 + bytes([0, 200]) + b"x", 8.0, count)  # > 128 chunks
    asm.add(CHUNK_MAGIC + b"short", 8.0, count)
    assert errors["chunk_malformed"] == 3
    held = [c for p in asm._pending.values() for c in p.chunks.values()]
    assert asm.pending_bytes == sum(map(len, held))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_datagram_gives_records_or_counted_errors(data: bytes) -> None:
    r = GelfReceiver(ListPublisher(), max_message_bytes=200, clock=lambda: 0.0)
    for d in (data, CHUNK_MAGIC + data, b"\x1f\x8b" + data, b"\x78\x9c" + data):
        item = r.datagram(d, "10.0.0.1")
        if item is not None:
            assert isinstance(item[1]["message"], str) and item[1]["id"]
    r.chunks.expire(100.0, r.count)
    assert len(r.chunks) == 0
