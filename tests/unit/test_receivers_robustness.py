"""Receivers under hostile or heavy senders (issue 17.4, issue 20 defects 1-3): per-record
isolation, batching across keys and frames, connection caps and timeouts, memory budgets,
byte-bounded queues, graceful shutdown, ids across restarts, kernel drops."""

from __future__ import annotations

import asyncio
import gzip
import socket
import tracemalloc
from typing import Any

import msgpack
import orjson
from aiotest import WAIT, run, until

from streams.sources.base import ListPublisher
from streams.sources.receivers.base import DatagramQueue, udp_drops
from streams.sources.receivers.fluentd import FluentdReceiver, FrameSplitter
from streams.sources.receivers.gelf import GelfReceiver
from streams.sources.receivers.syslog import SyslogReceiver
from streams.transport.kafka import KafkaPublisher
from streams.transport.records import Record, decode_batch, encode_batch, encode_records

MiB = 1024 * 1024


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


class FakeProducer:
    """Acknowledges everything, remembering (topic, key, value)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        self.sent.append((topic, key, value))
        return fut


def kafka_publisher(**kw: Any) -> tuple[KafkaPublisher, FakeProducer]:
    pub = KafkaPublisher("127.0.0.1:1", "raw", deadletter_topic="dead", **kw)
    pub._producer = FakeProducer()  # type: ignore[assignment]
    return pub, pub._producer  # type: ignore[return-value]


class SlowPublisher(ListPublisher):
    """A publisher with a Kafka-like round trip per call."""

    def __init__(self, delay: float = 0.02) -> None:
        super().__init__()
        self.delay = delay
        self.calls = 0

    async def publish(self, key: bytes, records: list[Record]) -> None:
        self.calls += 1
        await asyncio.sleep(self.delay)
        await super().publish(key, records)


async def closed(reader: asyncio.StreamReader) -> bool:
    """The peer closed (or reset) the connection."""
    try:
        return await asyncio.wait_for(reader.read(), WAIT) == b""
    except ConnectionError:
        return True


# -- per-record isolation -------------------------------------------------------------------


def test_one_unencodable_record_does_not_fail_its_batch() -> None:
    good = [{"id": str(i), "message": f"m{i}"} for i in range(3)]
    bad = {"id": "b", "message": "deep", "fields": {"x": nested(300)}}
    ts = {"id": "t", "message": "ts", "fields": {"t": msgpack.Timestamp(1, 2)}}
    encoded, rejected = encode_records([good[0], bad, good[1], ts, good[2]])
    assert [i for i, _ in encoded] == [0, 2, 4]
    assert [(r.index, r.reason) for r in rejected] == [(1, "record_unencodable"),
                                                       (3, "record_unencodable")]

    async def main() -> None:
        pub, producer = kafka_publisher(max_message_bytes=16 * MiB)
        await pub.publish(b"k", [good[0], bad, good[1], ts, good[2]])
        raw = [decode_batch(v) for t, _k, v in producer.sent if t == "raw"]
        dead = [orjson.loads(v) for t, _k, v in producer.sent if t == "dead"]
        assert [r["id"] for batch in raw for r in batch] == ["0", "1", "2"]
        assert [(d["reason"], d["event_id"], d["stage"]) for d in dead] == [
            ("record_unencodable", "b", "collect"), ("record_unencodable", "t", "collect")]
        assert "Recursion" in dead[0]["detail"] and dead[0]["original"]
        assert pub.rejected == {"record_unencodable": 2} and pub.records == 5

    run(main)


def test_oversize_record_is_dead_lettered_before_the_producer_sees_it() -> None:
    async def main() -> None:
        pub, producer = kafka_publisher(max_message_bytes=100_000)
        big = {"id": "big", "message": "x" * 200_000}
        small = [{"id": str(i), "message": "y" * 30_000} for i in range(6)]
        await pub.publish(b"k", [small[0], big, *small[1:]])
        raw = [v for t, _k, v in producer.sent if t == "raw"]
        dead = [orjson.loads(v) for t, _k, v in producer.sent if t == "dead"]
        assert all(len(v) <= 100_000 for v in raw)  # split under the topic's limit
        assert [r["id"] for v in raw for r in decode_batch(v)] == [str(i) for i in range(6)]
        assert [(d["reason"], d["event_id"]) for d in dead] == [("record_too_large", "big")]
        assert len(dead[0]["original"]) <= 64 * 1024

    run(main)


def test_pack_batches_is_byte_identical_to_encode_batch() -> None:
    from streams.transport.records import pack_batches

    recs = [{"id": str(i), "message": "é" * i, "n": None} for i in range(50)]
    encoded, _ = encode_records(recs)
    (one,) = pack_batches([b for _, b in encoded], 10 * MiB)
    assert one == encode_batch(recs)
    parts = pack_batches([b for _, b in encoded], 300)
    assert [r for p in parts for r in decode_batch(p)] == recs
    assert all(len(p) <= 300 for p in parts if len(decode_batch(p)) > 1)


def test_fluentd_chunk_with_a_bad_entry_is_published_and_acked() -> None:
    frame = ["app", [[1764064800, {"log": "before"}],
                     [msgpack.Timestamp(1764064800, 5), {"log": "timestamp ext"}],
                     [1764064800, {"log": "deep", "x": nested(300)}],
                     [1764064800, {"log": "after"}]], {"chunk": "c1"}]

    async def main() -> None:
        pub, producer = kafka_publisher(max_message_bytes=16 * MiB)
        async with FluentdReceiver(pub) as r:
            reader, w = await asyncio.open_connection("127.0.0.1", r.port)
            w.write(msgpack.packb(frame))
            await w.drain()
            ack = msgpack.unpackb(await asyncio.wait_for(reader.read(100), WAIT))
            assert ack == {"ack": "c1"}
            w.close()
        raw = [r for t, _k, v in producer.sent if t == "raw" for r in decode_batch(v)]
        dead = [orjson.loads(v) for t, _k, v in producer.sent if t == "dead"]
        assert [x["message"] for x in raw] == ["before", "timestamp ext", "after"]
        assert raw[1]["time"] == "2025-11-25T10:00:00.000000005Z"
        assert [d["reason"] for d in dead] == ["record_unencodable"]

    run(main)


# -- batching across keys and frames --------------------------------------------------------


def test_interleaved_keys_share_kafka_round_trips() -> None:
    async def main() -> None:
        pub = SlowPublisher()
        async with SyslogReceiver(pub, udp_port=None) as r:
            _, w = await asyncio.open_connection("127.0.0.1", r.tcp_port)
            w.write(b"".join(b"<13>app%d: line %d\n" % (i % 100, i) for i in range(2000)))
            await w.drain()
            await until(lambda: len(pub.records) == 2000)
            w.close()
            per_key: dict[str, list[str]] = {}
            for rec in pub.records:
                per_key.setdefault(rec["fields"]["syslog"]["appname"], []).append(rec["message"])
            assert per_key["app7"] == [f"line {i}" for i in range(7, 2000, 100)]  # order kept
            # one flush publishes every key at once: a few rounds, not one per key or frame
            assert r.intake.flushes <= 40, r.intake.flushes

    run(main)


def test_fluentd_one_frame_per_line_is_batched() -> None:
    async def main() -> None:
        pub = SlowPublisher()
        async with FluentdReceiver(pub) as r:
            reader, w = await asyncio.open_connection("127.0.0.1", r.port)
            for i in range(1000):  # Docker's driver: Message mode, one frame per line, ack
                w.write(msgpack.packb(["docker.c1", 1764064800 + i, {"log": f"l{i}"},
                                       {"chunk": f"c{i}"}]))
            await w.drain()
            acks: list[Any] = []
            unpacker = msgpack.Unpacker()
            while len(acks) < 1000:
                unpacker.feed(await asyncio.wait_for(reader.read(65536), WAIT))
                acks.extend(unpacker)
            w.close()
            assert sorted(a["ack"] for a in acks) == sorted(f"c{i}" for i in range(1000))
            assert [x["message"] for x in pub.records] == [f"l{i}" for i in range(1000)]
            assert r.intake.flushes <= 40, r.intake.flushes

    run(main)


# -- connections ------------------------------------------------------------------------------


def test_a_new_client_connects_while_1000_idle_ones_are_held() -> None:
    from streams.cli.collect import raise_open_files_limit

    assert raise_open_files_limit() >= 2100  # both ends of 1,000 connections live here

    async def main() -> None:
        pub = ListPublisher()
        async with SyslogReceiver(pub, udp_port=None, max_connections=1000,
                                  max_connections_per_peer=1000) as r:
            idle = [await asyncio.open_connection("127.0.0.1", r.tcp_port) for _ in range(1000)]
            await until(lambda: r.connections == 1000)
            await asyncio.sleep(1.1)  # they have been idle for a while
            _, w = await asyncio.open_connection("127.0.0.1", r.tcp_port)
            w.write(b"<13>app: I got in\n")
            await w.drain()
            await until(lambda: len(pub.records) == 1)
            assert pub.records[0]["message"] == "I got in"
            assert r.errors["evicted_idle"] >= 1 and r.connections <= 1000
            for _, iw in idle:
                iw.close()
            w.close()

    run(main)


def test_per_peer_cap_refuses_when_no_one_is_idle() -> None:
    async def main() -> None:
        async with SyslogReceiver(ListPublisher(), udp_port=None,
                                  max_connections_per_peer=2) as r:
            conns = [await asyncio.open_connection("127.0.0.1", r.tcp_port) for _ in range(2)]
            await until(lambda: r.connections == 2)
            r3, w3 = await asyncio.open_connection("127.0.0.1", r.tcp_port)
            assert await closed(r3)  # nobody idle long enough
            assert r.errors["too_many_connections"] == 1
            for _, w in conns:
                w.close()
            w3.close()

    run(main)


def test_idle_and_slow_loris_connections_are_closed() -> None:
    async def main() -> None:
        pub = ListPublisher()
        async with SyslogReceiver(pub, udp_port=None, idle_timeout=1.0,
                                  frame_timeout=1.0) as r:
            idle_r, idle_w = await asyncio.open_connection("127.0.0.1", r.tcp_port)
            loris_r, loris_w = await asyncio.open_connection("127.0.0.1", r.tcp_port)
            try:
                for _ in range(8):  # a byte now and then, never a whole message
                    loris_w.write(b"<")
                    await loris_w.drain()
                    await asyncio.sleep(0.4)
            except ConnectionError:
                pass  # closed by the receiver
            assert await closed(idle_r) and await closed(loris_r)
            assert r.errors["idle_timeout"] == 1 and r.errors["frame_timeout"] == 1
            idle_w.close()
            loris_w.close()

    run(main)


def test_declared_but_never_sent_lengths_reserve_no_memory() -> None:
    headers = b"\xdd\x00\x7f\xff\xff" * 1000  # 5 KB: 1000 arrays of 8 Mi elements declared
    splitter = FrameSplitter(8 * MiB)
    tracemalloc.start()
    try:
        frames, error = splitter.feed(headers)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (frames, error) == ([], None) and splitter.buffered == len(headers)
    assert peak < 1 * MiB, peak

    async def main() -> None:  # the same over a connection: the receiver stays small
        pub = ListPublisher()
        async with FluentdReceiver(pub) as r:
            tracemalloc.start()
            try:
                conns = []
                for _ in range(5):
                    _, w = await asyncio.open_connection("127.0.0.1", r.port)
                    w.write(headers)
                    await w.drain()
                    conns.append(w)
                await until(lambda: r.buffered == 5 * len(headers))
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert peak < 8 * MiB, peak
            for w in conns:
                w.close()

    run(main)


def test_bytes_held_for_incomplete_messages_are_bounded() -> None:
    async def main() -> None:
        async with FluentdReceiver(ListPublisher(), max_connection_bytes=MiB,
                                   max_buffered_bytes=MiB) as r:
            ws = []
            for _ in range(3):  # each declares a 900 KB string and sends 600 KB of it
                reader, w = await asyncio.open_connection("127.0.0.1", r.port)
                w.write(b"\xdb" + (900_000).to_bytes(4, "big") + b"x" * 600_000)
                await w.drain()
                ws.append((reader, w))
            await until(lambda: r.errors["memory_budget"] >= 1)
            assert r.buffered <= MiB
            for _, w in ws:
                w.close()

    run(main)


# -- queues, shutdown, ids ----------------------------------------------------------------------


def test_udp_queue_is_bounded_in_bytes() -> None:
    q = DatagramQueue(SyslogReceiver(ListPublisher()), max_bytes=4 * MiB)
    for _ in range(1000):
        q.datagram_received(b"x" * 60_000, ("10.0.0.1", 1))
    assert q.bytes <= 4 * MiB and len(q.items) == 4 * MiB // 60_128
    assert q.receiver.errors["queue_full"] == 1000 - len(q.items)


def test_graceful_stop_publishes_everything_accepted_and_acks_it() -> None:
    async def main() -> None:
        pub = SlowPublisher(delay=0.05)
        r = FluentdReceiver(pub)
        await r.start()
        reader, w = await asyncio.open_connection("127.0.0.1", r.port)
        frames = b"".join(msgpack.packb(["docker.c", 1764064800, {"log": f"l{i}"},
                                         {"chunk": f"c{i}"}]) for i in range(2000))
        w.write(frames)
        await w.drain()
        await until(lambda: r.received == 2000)  # accepted; most not yet published
        await r.stop()  # what SIGTERM does
        assert len(pub.records) == 2000
        acks = msgpack.Unpacker()
        acks.feed(await asyncio.wait_for(reader.read(), WAIT))
        assert len(list(acks)) == 2000
        w.close()

    run(main)


def test_ids_without_timestamp_are_unique_across_restarts() -> None:
    no_ts, with_ts = b"<13>app: same text", b"<13>1 2026-11-25T10:00:00Z h app - - - same"
    first, second = SyslogReceiver(ListPublisher()), SyslogReceiver(ListPublisher())  # restart
    a = [first.record(d, "10.0.0.1", "udp")[1]["id"] for d in (no_ts, no_ts, with_ts)]
    b = [second.record(d, "10.0.0.1", "udp")[1]["id"] for d in (no_ts, no_ts, with_ts)]
    assert len(set(a[:2] + b[:2])) == 4  # new messages, never taken for duplicates
    assert a[2] == b[2]  # a resend of a timestamped message keeps its id


def test_kernel_drops_are_counted() -> None:
    async def main() -> None:
        r = GelfReceiver(ListPublisher(), tcp_port=None)
        await r.start()
        sock = r._udp_sockets[0]
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # a small buffer
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        payload = orjson.dumps({"version": "1.1", "host": "h", "short_message": "x" * 8000})
        for _ in range(200):  # the loop does not read meanwhile: the kernel drops
            s.sendto(payload, ("127.0.0.1", r.udp_port))
        s.close()
        assert r.kernel_drops() > 0
        await r.stop()

    run(main)


def test_udp_drops_reads_the_proc_table(tmp_path: Any) -> None:
    table = tmp_path / "udp"
    table.write_text(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode ref pointer drops\n"
        "  1: 0100007F:3039 00000000:0000 07 00000000:00000000 00:00000000 00000000     0"
        "        0 4242 2 0000000000000000 17\n"
        "  2: 0100007F:303A 00000000:0000 07 00000000:00000000 00:00000000 00000000     0"
        "        0 4343 2 0000000000000000 5\n")
    assert udp_drops({"4242"}, (str(table),)) == 17
    assert udp_drops({"9999"}, (str(table),)) == 0


# -- fuzz over real sockets ------------------------------------------------------------------


def _fuzz(rng: Any, valid: bytes, n: int = 1000) -> list[bytes]:
    """``n`` payloads: random bytes, and the valid message mutated (bytes flipped, cut,
    repeated, spliced with random bytes)."""
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            out.append(rng.randbytes(rng.randint(0, 3000)))
        elif kind == 1:
            b = bytearray(valid)
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            out.append(bytes(b))
        elif kind == 2:
            out.append(valid[: rng.randrange(len(valid))] * rng.randint(1, 3))
        else:
            cut = rng.randrange(len(valid))
            out.append(valid[:cut] + rng.randbytes(rng.randint(1, 200)) + valid[cut:])
    return out


def test_a_thousand_fuzz_payloads_per_protocol_then_a_valid_message_arrives() -> None:
    import random

    rng = random.Random(1704)
    gelf_valid = orjson.dumps({"version": "1.1", "host": "h", "short_message": "fuzz-ok",
                               "timestamp": 1764064800.5})
    fl_valid = msgpack.packb(["app", 1764064800, {"log": "fuzz-ok"}])

    async def udp(port: int, payloads: list[bytes]) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i, p in enumerate(payloads):
            s.sendto(p[:60_000], ("127.0.0.1", port))
            if i % 50 == 49:
                await asyncio.sleep(0.005)
        s.close()

    async def tcp(port: int, payloads: list[bytes], sep: bytes, per_connection: int) -> None:
        for start in range(0, len(payloads), per_connection):  # a closed stream reconnects
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(sep.join(payloads[start:start + per_connection]) + sep)
                await w.drain()
                w.close()
            except ConnectionError:
                continue

    async def ok(port: int, data: bytes) -> None:
        _, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(data)
        await w.drain()
        w.close()

    async def main() -> None:
        pub = ListPublisher()
        async with SyslogReceiver(pub) as sy, GelfReceiver(pub) as ge, FluentdReceiver(pub) as fl:
            await udp(sy.udp_port, _fuzz(rng, b"<13>app: fuzz-ok"))
            await tcp(sy.tcp_port, _fuzz(rng, b"<13>app: fuzz-ok"), b"\n", 1000)
            await udp(ge.udp_port, _fuzz(rng, gzip.compress(gelf_valid)))
            await tcp(ge.tcp_port, _fuzz(rng, gelf_valid), b"\x00", 1000)
            await tcp(fl.port, _fuzz(rng, fl_valid), b"", 20)
            await ok(sy.tcp_port, b"<13>app: syslog-after\n")
            await ok(ge.tcp_port, orjson.dumps({"version": "1.1", "host": "h",
                                                "short_message": "gelf-after"}) + b"\x00")
            await ok(fl.port, msgpack.packb(["app", 1764064800, {"log": "fluentd-after"}]))
            want = {"syslog-after", "gelf-after", "fluentd-after"}
            await until(lambda: want <= {r["message"] for r in pub.records}, 30)
            for r in (sy, ge, fl):
                assert "internal_error" not in r.errors, r.errors
        assert all(isinstance(r["message"], str) and r["id"] for r in pub.records)
        encode_records(pub.records)  # every record serializes or is rejected alone

    run(main)


def test_encode_batches_finds_bad_and_oversize_records_anywhere() -> None:
    from streams.transport.records import encode_batches

    recs: list[dict[str, Any]] = [{"id": str(i), "message": "m" * 300} for i in range(40)]
    recs[3]["fields"] = {"t": msgpack.Timestamp(1, 2)}
    recs[31]["message"] = "x" * 5000
    values, rejected = encode_batches(recs, 2000, 4000)
    assert [(r.index, r.reason) for r in rejected] == [(3, "record_unencodable"),
                                                       (31, "record_too_large")]
    kept = [r["id"] for v in values for r in decode_batch(v)]
    assert kept == [str(i) for i in range(40) if i not in (3, 31)]
    assert all(len(v) <= 2000 for v in values)
    (whole,), none = encode_batches(recs[:2], 10_000, 10_000)
    assert whole == encode_batch(recs[:2]) and none == []
