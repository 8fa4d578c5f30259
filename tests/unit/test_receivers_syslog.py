"""Syslog receiver over real loopback sockets, its parser and the TCP framer."""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import socket
from datetime import UTC, datetime

from aiotest import WAIT, run, until
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.sources.base import ListPublisher
from streams.sources.receivers.framing import Framer
from streams.sources.receivers.syslog import FLAG_SYSLOG_PARSE_ERROR, SyslogReceiver, parse_syslog
from streams.transport.records import FLAG_INVALID_UTF8, FLAG_TRUNCATED, Record

# -- parser --------------------------------------------------------------------------------


def test_rfc5424_full() -> None:
    m = parse_syslog(
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 42 ID47 "
        b'[exampleSDID@32473 iut="3" eventSource="App\\"lication"][meta x="]\\]"] '
        b"\xef\xbb\xbfAn application event"
    )
    assert m is not None
    assert (m.format, m.facility, m.severity) == ("rfc5424", 20, 5)
    assert (m.timestamp, m.hostname, m.appname, m.procid, m.msgid) == (
        "2003-10-11T22:14:15.003Z",
        "mymachine.example.com",
        "evntslog",
        "42",
        "ID47",
    )
    assert m.structured_data == {
        "exampleSDID@32473": {"iut": "3", "eventSource": 'App"lication'},
        "meta": {"x": "]]"},
    }
    assert m.message == b"An application event"


def test_rfc5424_nil_fields_and_no_message() -> None:
    m = parse_syslog(b"<14>1 - - - - - -")
    assert m is not None and m.format == "rfc5424"
    assert (m.timestamp, m.hostname, m.appname, m.message) == (None, None, None, b"")


def test_rfc3164_bsd() -> None:
    now = datetime(2026, 11, 25, tzinfo=UTC)
    m = parse_syslog(b"<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed", now)
    assert m is not None
    assert (m.format, m.facility, m.severity, m.hostname, m.appname, m.procid) == (
        "rfc3164",
        4,
        2,
        "mymachine",
        "su",
        "123",
    )
    assert m.timestamp == "2026-10-11T22:14:15Z" and m.message == b"'su root' failed"


def test_rfc3164_december_message_read_in_january() -> None:
    m = parse_syslog(b"<13>Dec 31 23:59:59 h app: x", datetime(2027, 1, 1, 0, 0, 5, tzinfo=UTC))
    assert m is not None and m.timestamp == "2026-12-31T23:59:59Z"


def test_rfc3164_variants_without_hostname() -> None:
    py = parse_syslog(b"<14>myapp: hello")  # Python's SysLogHandler with an ident
    assert py is not None and (py.hostname, py.appname, py.message) == (None, "myapp", b"hello")
    plain = parse_syslog(b"<14>hello world")
    assert plain is not None and (plain.appname, plain.message) == (None, b"hello world")
    go = parse_syslog(b"<30> 2026-11-25T10:00:00Z node1 abc123[77]: from docker")
    assert go is not None
    assert (go.timestamp, go.hostname, go.appname, go.procid, go.message) == (
        "2026-11-25T10:00:00Z",
        "node1",
        "abc123",
        "77",
        b"from docker",
    )


def test_invalid_pri() -> None:
    assert parse_syslog(b"no pri here") is None
    assert parse_syslog(b"<999>1 - - - - - - x") is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_parser_and_record_never_raise(data: bytes) -> None:
    parse_syslog(data)
    parse_syslog(b"<13>1 " + data)
    receiver = SyslogReceiver(ListPublisher(), max_message_bytes=100)
    key, record = receiver.record(data, "10.0.0.1", "udp")
    assert isinstance(key, bytes) and isinstance(record["message"], str) and record["id"]


# -- framer --------------------------------------------------------------------------------


def test_framer_octet_counting_and_newlines_mixed() -> None:
    f = Framer(b"\n\x00", 100, octet_counting=True)
    out = f.feed(b"11 <13>1 - - a\n<13>b\n\n<13>c\x00") + f.feed(b"5 he") + f.feed(b"llo")
    assert out == [(b"<13>1 - - a", False), (b"<13>b", False), (b"<13>c", False), (b"hello", False)]


def test_framer_cuts_over_limit_and_resyncs() -> None:
    f = Framer(b"\n", 4, octet_counting=True)
    assert f.feed(b"abcdefgh") == [(b"abcd", True)]
    assert f.feed(b"ij\nok\n") == [(b"ok", False)]
    assert f.feed(b"10 0123456789") == [(b"0123", True)]
    assert f.feed(b"x\n") == [(b"x", False)]
    assert f.buffered == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=500), st.lists(st.integers(1, 60), max_size=10), st.integers(1, 50))
def test_framer_fuzz(data: bytes, cuts: list[int], limit: int) -> None:
    f = Framer(b"\n\x00", limit, octet_counting=True)
    pos = 0
    frames = []
    for c in cuts + [len(data)]:
        frames += f.feed(data[pos : pos + c])
        pos += c
        assert f.buffered <= limit + 11 + 60 + len(data)
    frames += f.finish()
    assert all(len(frame) <= limit for frame, _ in frames)


# -- receiver over sockets -----------------------------------------------------------------


def test_python_syslog_handler_over_udp_and_tcp() -> None:
    async def main() -> None:
        pub = ListPublisher()
        async with SyslogReceiver(pub) as r:
            udp = logging.handlers.SysLogHandler(("127.0.0.1", r.udp_port))
            tcp = logging.handlers.SysLogHandler(
                ("127.0.0.1", r.tcp_port), socktype=socket.SOCK_STREAM
            )
            udp.ident = tcp.ident = "myapp: "
            logger = logging.getLogger("test_syslog_receiver")
            logger.propagate = False
            logger.addHandler(udp)
            logger.addHandler(tcp)
            try:
                logger.error("over %s", "udp+tcp")
                logger.warning("caf\u00e9 second")
                await until(lambda: len(pub.records) >= 4)
            finally:
                logger.removeHandler(udp)
                logger.removeHandler(tcp)
                udp.close()
                tcp.close()
            recs = pub.records
            by_transport = {
                t: [x for x in recs if x["source"]["transport"] == t] for t in ("udp", "tcp")
            }
            for t, got in by_transport.items():
                assert [x["message"] for x in got] == ["over udp+tcp", "caf\u00e9 second"], t
                sl = got[0]["fields"]["syslog"]
                assert (sl["appname"], sl["severity_name"], sl["facility"]) == ("myapp", "err", 1)
            assert len({x["id"] for x in recs}) == 4
            assert pub.batches[0][0] == b"syslog/127.0.0.1/myapp"
            assert r.errors == {}

    run(main)


def test_tcp_byte_exact_frames_and_bad_input() -> None:
    async def main() -> None:
        pub = ListPublisher()
        async with SyslogReceiver(pub, udp_port=None, max_message_bytes=64) as r:
            _, w = await asyncio.open_connection("127.0.0.1", r.tcp_port)
            msg = b"<165>1 2026-11-25T10:00:00Z h app - - - octet"
            w.write(f"{len(msg)} ".encode() + msg)
            w.write(b"<13>Nov 25 10:00:00 h app: caf\xe9 nul\x00<13>app: after nul\n")
            w.write(b"<13>app: " + b"L" * 200 + b"\n")  # over the limit: cut, flagged
            w.write(b"no pri at all\n")
            w.write(b"300 <13>" + b"O" * 296)  # octet-counted, over the limit
            w.write(b"<13>app: still alive\n")
            await w.drain()
            await until(lambda: len(pub.records) >= 7)
            w.close()
            # order holds per key (sender/app); the unparsable ones are keyed by sender alone
            recs = [x for x in pub.records if x["source"].get("peer")]
            bad = [x for x in pub.records if not x["source"].get("peer")]
            assert recs[0]["message"] == "octet" and recs[0]["time"] == "2026-11-25T10:00:00Z"
            assert recs[1]["message"] == "caf\ufffd nul" and recs[1]["flags"] == [FLAG_INVALID_UTF8]
            assert recs[2]["message"] == "after nul"
            assert FLAG_TRUNCATED in recs[3]["flags"] and len(recs[3]["message"]) == 64 - 9
            assert bad[0]["message"] == "no pri at all"
            assert bad[0]["flags"] == [FLAG_SYSLOG_PARSE_ERROR]
            (cut,) = [x for x in recs if x["message"].startswith("O")]
            assert FLAG_TRUNCATED in cut["flags"]
            assert "still alive" in [x["message"] for x in recs]
            assert r.errors == {"message_truncated": 2, FLAG_SYSLOG_PARSE_ERROR: 1}

    run(main)


def test_publish_failure_closes_connection_cleanly_and_receiver_survives() -> None:
    class Flaky(ListPublisher):
        fail = True

        async def publish(self, key: bytes, records: list[Record]) -> None:
            if self.fail:
                self.fail = False
                raise ConnectionError("kafka down")
            await super().publish(key, records)

    async def main() -> None:
        pub = Flaky()
        async with SyslogReceiver(pub, udp_port=None) as r:
            reader, w = await asyncio.open_connection("127.0.0.1", r.tcp_port)
            w.write(b"<13>app: lost\n")
            await w.drain()
            assert await asyncio.wait_for(reader.read(), WAIT) == b""  # closed by the receiver
            w.close()
            _, w2 = await asyncio.open_connection("127.0.0.1", r.tcp_port)
            w2.write(b"<13>app: next\n")
            await w2.drain()
            await until(lambda: len(pub.records) == 1)
            w2.close()
            assert pub.records[0]["message"] == "next"
            assert r.errors["publish_failed"] == 1

    run(main)


def test_udp_nul_and_garbage_datagrams() -> None:
    async def main() -> None:
        pub = ListPublisher()
        async with SyslogReceiver(pub, tcp_port=None) as r:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for d in (b"<13>app: one\x00", b"\x00\x00", b"\xff\xfe junk", b"<13>app: two\n"):
                s.sendto(d, ("127.0.0.1", r.udp_port))
            s.close()
            await until(lambda: len(pub.records) >= 3)
            assert sorted(x["message"] for x in pub.records) == ["one", "two", "\ufffd\ufffd junk"]
            assert r.errors[FLAG_SYSLOG_PARSE_ERROR] == 1

    run(main)


def test_connection_limit() -> None:
    async def main() -> None:
        async with SyslogReceiver(ListPublisher(), udp_port=None, max_connections=1) as r:
            _, w1 = await asyncio.open_connection("127.0.0.1", r.tcp_port)
            await until(lambda: r.connections == 1)
            r2, w2 = await asyncio.open_connection("127.0.0.1", r.tcp_port)
            assert await asyncio.wait_for(r2.read(), WAIT) == b""
            assert r.errors["too_many_connections"] == 1
            w1.close()
            w2.close()

    run(main)
