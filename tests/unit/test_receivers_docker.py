"""What Docker's log drivers send (issue 20, defects 4-6): syslog tags whatever the image
name, zone-less timestamps, ECS container metadata and the stream from every driver, and
lines over 16 KiB joined from their pieces. The byte layouts follow dockerd's drivers
(daemon/logger/{syslog,gelf,fluentd,journald}, srslog's formatters)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgpack
import orjson
from aiotest import WAIT, run, until

from streams.pipeline import load_pipeline
from streams.sources.base import ListPublisher
from streams.sources.receivers.fluentd import FluentdReceiver
from streams.sources.receivers.gelf import GelfReceiver
from streams.sources.receivers.journald import JournaldFollower
from streams.sources.receivers.partials import FLAG_PARTIAL_INCOMPLETE, Partials
from streams.sources.receivers.syslog import SyslogReceiver, parse_syslog, timezone_setting

TAG = "registry.local:5000/shop/nginx:1.25/web-1/0123456789ab"  # {{.ImageName}}/{{.Name}}/{{.ID}}
BODY = b'{"level":"warn","msg":"slow upstream","ms":812}'


# -- syslog -------------------------------------------------------------------------------------


def test_docker_unix_format_tag_is_not_the_host_and_leaves_the_body() -> None:
    # srslog.UnixFormatter (Docker's default): "<%d>%s %s[%d]: %s", time.Stamp, no hostname
    m = parse_syslog(b"<30>Nov  5 10:00:00 " + TAG.encode() + b"[4242]: " + BODY)
    assert m is not None
    assert (m.hostname, m.appname, m.procid, m.message) == (None, TAG, "4242", BODY)


def test_docker_rfc3164_and_rfc5424_formats() -> None:
    m = parse_syslog(b"<27>Nov  5 10:00:00 node-7 " + TAG.encode() + b"[4242]: " + BODY)
    assert m is not None and (m.hostname, m.appname, m.message) == ("node-7", TAG, BODY)
    m = parse_syslog(b"<30>1 2026-11-05T10:00:00+01:00 node-7 " + TAG.encode() + b" 4242 "
                     + TAG.encode() + b" - " + BODY)
    assert m is not None and (m.format, m.appname, m.message) == ("rfc5424", TAG, BODY)


def test_plain_rfc3164_keeps_working() -> None:
    m = parse_syslog(b"<13>Oct 11 22:14:15 mymachine hello world")
    assert m is not None and (m.hostname, m.appname, m.message) == ("mymachine", None,
                                                                     b"hello world")
    m = parse_syslog(b"<13>Oct 11 22:14:15 fe80::1 app: x")
    assert m is not None and (m.hostname, m.appname) == ("fe80::1", "app")


def test_zone_less_timestamps_are_read_in_the_configured_zone() -> None:
    now = datetime(2026, 11, 25, 18, tzinfo=UTC)
    ny = ZoneInfo("America/New_York")
    m = parse_syslog(b"<13>Nov 25 10:00:00 h app: x", now, ny)
    assert m is not None and m.timestamp == "2026-11-25T15:00:00Z"
    m = parse_syslog(b"<13>Jul  4 10:00:00 h app: x", now, ny)  # daylight saving time
    assert m is not None and m.timestamp == "2026-07-04T14:00:00Z"
    assert parse_syslog(b"<13>Nov 25 10:00:00 h app: x", now).timestamp == "2026-11-25T10:00:00Z"
    assert timezone_setting("UTC") is UTC and timezone_setting("America/New_York") == ny
    r = SyslogReceiver(ListPublisher(), timezone="America/New_York")
    assert r.tz == ny


def test_local_zone_is_the_default(monkeypatch: Any) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert timezone_setting(None) == ZoneInfo("Asia/Tokyo")
    assert SyslogReceiver(ListPublisher()).tz == ZoneInfo("Asia/Tokyo")


def test_syslog_record_carries_container_and_stream_and_parses_downstream() -> None:
    r = SyslogReceiver(ListPublisher(), timezone="UTC")
    _, rec = r.record(b"<27>Nov  5 10:00:00 " + TAG.encode() + b"[4242]: " + BODY, "10.0.0.2",
                      "udp")
    assert rec["container"] == {"id": "0123456789ab", "name": "web-1",
                                "image": {"name": "registry.local:5000/shop/nginx:1.25"},
                                "runtime": "docker"}
    assert rec["stream"] == "stderr" and rec["source"]["host"] == "10.0.0.2"
    (event,) = load_pipeline("kubernetes").structure([rec], None).events
    assert event["log"]["level"] == "warn" and event["message"] == "slow upstream"
    assert event["container"]["name"] == "web-1" and event["stream"] == "stderr"
    _, plain = r.record(b"<14>Nov  5 10:00:00 myapp[1]: hi", "10.0.0.2", "udp")
    assert "container" not in plain and plain["stream"] is None


# -- ECS metadata from the other drivers ---------------------------------------------------


def test_fluentd_container_metadata_and_stream() -> None:
    fl = FluentdReceiver(ListPublisher())
    body = {b"container_id": b"f" * 64, b"container_name": b"/web-1", b"source": b"stderr",
            b"log": b"boom"}
    (item,), _ = fl.records([TAG.encode(), 1764064800, body], "10.0.0.3")
    rec = item[1]
    assert rec["container"] == {"id": "f" * 64, "name": "web-1",
                                "image": {"name": "registry.local:5000/shop/nginx:1.25"},
                                "runtime": "docker"}
    assert rec["stream"] == "stderr"
    (item,), _ = fl.records([b"docker.abc", 1764064800, body], "10.0.0.3")
    assert item[1]["container"] == {"id": "f" * 64, "name": "web-1", "runtime": "docker"}


def test_gelf_container_metadata_and_stream() -> None:
    g = GelfReceiver(ListPublisher())
    payload = orjson.dumps({"version": "1.1", "host": "node", "short_message": "boom",
                            "timestamp": 1764064800.5, "level": 3, "_container_id": "c" * 64,
                            "_container_name": "web-1", "_image_name": "nginx:1.25",
                            "_image_id": "sha256:1", "_command": "nginx", "_created": "x"})
    _, rec = g.record(payload, "10.0.0.4", "udp")
    assert rec["container"] == {"id": "c" * 64, "name": "web-1", "image": {"name": "nginx:1.25"},
                                "runtime": "docker"}
    assert rec["stream"] == "stderr"


def test_journald_container_metadata_and_stream() -> None:
    j = JournaldFollower(ListPublisher())
    entry = {"__CURSOR": "s=1", "MESSAGE": "out", "PRIORITY": "6", "CONTAINER_ID": "c" * 12,
             "CONTAINER_ID_FULL": "c" * 64, "CONTAINER_NAME": "web-1",
             "IMAGE_NAME": "nginx:1.25", "CONTAINER_TAG": "c" * 12}
    _, rec = j.entry(orjson.dumps(entry))
    assert rec["container"] == {"id": "c" * 64, "name": "web-1", "image": {"name": "nginx:1.25"},
                                "runtime": "docker"}
    assert rec["stream"] == "stdout"


# -- lines over 16 KiB ---------------------------------------------------------------------------


def docker_pieces(line: str, pid: str) -> list[dict[bytes, bytes]]:
    """What dockerd's copier and fluentd driver send for one line (16 KiB pieces; a line of a
    multiple of 16 KiB ends with an empty last piece)."""
    size = 16 * 1024
    cuts = [line[i:i + size] for i in range(0, len(line), size)]
    if len(line) % size == 0:
        cuts.append("")
    base = {b"container_id": b"c" * 64, b"container_name": b"/web", b"source": b"stdout"}
    if len(cuts) == 1:
        return [{**base, b"log": cuts[0].encode()}]
    return [{**base, b"log": c.encode(), b"partial_message": b"true",
             b"partial_id": pid.encode(), b"partial_ordinal": str(i + 1).encode(),
             b"partial_last": b"true" if i == len(cuts) - 1 else b"false"}
            for i, c in enumerate(cuts)]


def test_fluentd_lines_over_16k_arrive_whole() -> None:
    lines = {"a": "A" * 40_000, "b": "B" * 80_007, "c": "C" * 16_384, "d": "short"}

    async def main() -> None:
        pub = ListPublisher()
        async with FluentdReceiver(pub) as r:
            _, w = await asyncio.open_connection("127.0.0.1", r.port)
            for n, (pid, line) in enumerate(lines.items()):
                for piece in docker_pieces(line, pid):
                    w.write(msgpack.packb(["docker.web", 1764064800 + n, piece]))
            # two containers interleaved on one connection keep their own lines
            x, y = docker_pieces("X" * 20_000, "x"), docker_pieces("Y" * 20_000, "y")
            for px, py in zip(x, y):
                w.write(msgpack.packb(["docker.x", 1764064900, px]))
                w.write(msgpack.packb(["docker.y", 1764064900, py]))
            await w.drain()
            await until(lambda: len(pub.records) == 6)
            w.close()
            await asyncio.sleep(0.05)
        msgs = [rec["message"] for rec in pub.records]
        assert sorted(msgs) == sorted([*lines.values(), "X" * 20_000, "Y" * 20_000])
        assert all("partial_id" not in (rec.get("fields") or {}) for rec in pub.records)
        assert all("flags" not in rec for rec in pub.records)
        assert len({rec["id"] for rec in pub.records}) == 6

    run(main)


def test_journald_pieces_are_joined() -> None:
    j = JournaldFollower(ListPublisher())
    out = []
    for ordinal, (text, last) in enumerate((("P" * 16384, "false"), ("Q" * 10, "true")), 1):
        entry = {"__CURSOR": f"s={ordinal}", "MESSAGE": text, "CONTAINER_ID_FULL": "c" * 64,
                 "CONTAINER_PARTIAL_ID": "p1", "CONTAINER_PARTIAL_ORDINAL": str(ordinal),
                 "CONTAINER_PARTIAL_LAST": last, "PRIORITY": "6"}
        if last == "false":
            entry["CONTAINER_PARTIAL_MESSAGE"] = "true"
        out += j.joined(j.entry(orjson.dumps(entry)))
    (item,) = out
    assert item[1]["message"] == "P" * 16384 + "Q" * 10
    assert "CONTAINER_PARTIAL_ID" not in item[1]["fields"]


def test_gelf_pieces_joined_by_their_shared_timestamp() -> None:
    g = GelfReceiver(ListPublisher())

    def msg(text: str, ts: float) -> list[Any]:
        payload = orjson.dumps({"version": "1.1", "host": "n", "short_message": text,
                                "timestamp": ts, "level": 6, "_container_id": "c" * 64})
        return g.joined(g.record(payload, "10.0.0.5", "udp"))

    assert msg("A" * 16384, 1.0) == [] and msg("A" * 16384, 1.0) == []
    (joined,) = msg("A" * 100, 1.0)
    assert joined[1]["message"] == "A" * 32868 and "flags" not in joined[1]
    assert msg("B" * 16384, 2.0) == []  # a whole 16 KiB line (its empty last piece unsent)
    whole, nxt = msg("next line", 3.0)
    assert whole[1]["message"] == "B" * 16384 and "flags" not in whole[1]
    assert nxt[1]["message"] == "next line"


def test_partials_are_bounded_and_overdue_lines_published() -> None:
    counts: list[str] = []
    clock = [0.0]
    p = Partials(counts.append, max_bytes=20_000, timeout=5.0, clock=lambda: clock[0])
    rec = {"id": "1", "message": "x" * 16384}
    assert p.add(b"k", "p", 1, False, rec) == []
    assert p.add(b"k", "p", 2, False, {"id": "2", "message": "y" * 16384}) == []
    clock[0] = 6.0
    ((key, late),) = p.expire()
    assert key == b"k" and len(late["message"]) == 20_000
    assert set(late["flags"]) == {"truncated", FLAG_PARTIAL_INCOMPLETE}
    assert counts == ["message_truncated", FLAG_PARTIAL_INCOMPLETE]


def test_held_pieces_are_published_at_shutdown() -> None:
    async def main() -> None:
        pub = ListPublisher()
        r = FluentdReceiver(pub)
        await r.start()
        _, w = await asyncio.open_connection("127.0.0.1", r.port)
        w.write(msgpack.packb(["docker.web", 1, docker_pieces("Z" * 20_000, "z")[0]]))
        await w.drain()
        await until(lambda: len(r.partials) == 1)
        await asyncio.wait_for(r.stop(), WAIT)
        (rec,) = pub.records
        assert rec["message"] == "Z" * 16384 and FLAG_PARTIAL_INCOMPLETE in rec["flags"]
        w.close()

    run(main)


def test_stdout_and_stderr_pieces_interleaved_make_two_whole_lines() -> None:
    fl = FluentdReceiver(ListPublisher())
    out = docker_pieces("O" * 20_000, "o")
    err = [{**p, b"source": b"stderr"} for p in docker_pieces("E" * 20_000, "e")]
    got = []
    for piece in (out[0], err[0], out[1], err[1]):  # dockerd copies each stream on its own
        items, _ = fl.records([b"docker.web", 1, piece], "10.0.0.6")
        got += [r for _, r in items]
    assert sorted((r["stream"], r["message"]) for r in got) == [("stderr", "E" * 20_000),
                                                                ("stdout", "O" * 20_000)]
    assert all("flags" not in r for r in got)


def test_a_collectors_tag_template_is_read_by_syslog_and_fluentd() -> None:
    template = "docker.{{.Name}}.{{.ID}}"
    sy = SyslogReceiver(ListPublisher(), docker_tag=template, timezone="UTC")
    _, rec = sy.record(b"<14>Nov  5 10:00:00 docker.web-1.0123456789ab[7]: hi", "10.0.0.7", "udp")
    assert rec["container"] == {"id": "0123456789ab", "name": "web-1", "runtime": "docker"}
    fl = FluentdReceiver(ListPublisher(), docker_tag="{{.ImageName}}|{{.ID}}")
    (item,), _ = fl.records([b"nginx:1.25|0123456789ab", 1, {b"container_id": b"f" * 64,
                                                             b"log": b"x"}], "10.0.0.7")
    assert item[1]["container"]["image"] == {"name": "nginx:1.25"}
    assert item[1]["container"]["id"] == "f" * 64  # the driver's own field wins
