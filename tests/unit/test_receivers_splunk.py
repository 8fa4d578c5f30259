"""Splunk HEC receiver: Docker's splunk driver's exact requests, HEC's replies and error codes,
authentication, gzip, indexer acknowledgement, and that a refused request publishes nothing.

The Docker bodies below are what ``daemon/logger/splunk`` (Docker 28.5) builds: one
``json.Marshal`` of ``splunkMessage`` per line, concatenated, posted to
``/services/collector/event/1.0`` with ``Authorization: Splunk <token>`` and no Content-Type.
"""

from __future__ import annotations

import base64
import gzip
import uuid
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession
from aiotest import run

from streams.ops.security import SecurityConfigError
from streams.sources.base import ListPublisher
from streams.sources.receivers.splunk import SplunkHecReceiver, json_objects, token_settings

TOKEN = "8a5e1c3d-2b4f-4a6e-9c7d-0e1f2a3b4c5d"
AUTH = {"Authorization": f"Splunk {TOKEN}"}
CID = "4f0c2f8b9a1e" + "7" * 52


def docker_event(line: Any, source: str = "stdout", tag: str = CID[:12],
                 attrs: dict[str, str] | None = None, t: str = "1764064800.123456") -> dict:
    event: dict[str, Any] = {"line": line, "source": source, "tag": tag}
    if attrs:
        event["attrs"] = attrs
    return {"event": event, "time": t, "host": "node-1"}


def body(*objs: Any) -> bytes:
    return b"".join(orjson.dumps(o) for o in objs)


class FailingPublisher(ListPublisher):
    async def publish(self, key, records):
        raise ConnectionError("kafka is away")


async def serve(pub: ListPublisher, **kw: Any) -> tuple[SplunkHecReceiver, str]:
    rec = SplunkHecReceiver(pub, tokens=[TOKEN], **kw)
    await rec.start()
    return rec, f"http://127.0.0.1:{rec.port}"


async def post(url: str, data: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with ClientSession(skip_auto_headers=["Content-Type"]) as s, s.post(
        url, data=data, headers=headers or {}
    ) as r:
        return r.status, orjson.loads(await r.read())


def test_docker_inline_and_json_events_become_records_with_container_and_stream() -> None:
    async def main() -> None:
        pub = ListPublisher()
        rec, base = await serve(pub)
        try:
            data = body(
                docker_event("GET /cart 200", attrs={"com.example.team": "payments"}),
                docker_event({"level": "error", "msg": "boom"}, source="stderr"),  # format=json
            )
            status, reply = await post(f"{base}/services/collector/event/1.0", data, AUTH)
        finally:
            await rec.stop()
        assert (status, reply) == (200, {"text": "Success", "code": 0})
        first, second = pub.records
        assert first["message"] == "GET /cart 200"
        assert first["stream"] == "stdout"
        assert first["time"] == "2025-11-25T10:00:00.123456Z"
        assert first["container"] == {"id": CID[:12], "runtime": "docker"}
        assert first["fields"] == {"tag": CID[:12], "com.example.team": "payments"}
        assert first["source"]["host"] == "node-1"
        assert orjson.loads(second["message"]) == {"level": "error", "msg": "boom"}
        assert second["stream"] == "stderr"
        assert len({first["id"], second["id"]}) == 2
        assert rec.errors == {}

    run(main)


def test_docker_raw_events_with_a_known_tag_template() -> None:
    tag = "registry:5000/shop/cart:1.4/cart-1/" + CID[:12]

    async def main() -> None:
        pub = ListPublisher()
        rec, base = await serve(pub, docker_tag="{{.ImageName}}/{{.Name}}/{{.ID}}")
        try:
            data = body({"event": f"{tag} level=info msg=ok", "time": "1764064800.5"},
                        {"event": "not a docker line", "time": 1764064801})
            status, _ = await post(f"{base}/services/collector/event/1.0", data, AUTH)
        finally:
            await rec.stop()
        assert status == 200
        a, b = pub.records
        assert a["message"] == "level=info msg=ok"
        assert a["container"] == {"id": CID[:12], "name": "cart-1",
                                  "image": {"name": "registry:5000/shop/cart:1.4"},
                                  "runtime": "docker"}
        assert b["message"] == "not a docker line" and "container" not in b

    run(main)


def test_gzip_bodies_raw_endpoint_and_other_senders_objects() -> None:
    async def main() -> None:
        pub = ListPublisher()
        rec, base = await serve(pub)
        try:
            data = gzip.compress(body({"event": {"user": "ann", "action": "login"},
                                       "sourcetype": "app", "fields": {"env": "prod"}}))
            s1, _ = await post(f"{base}/services/collector", data,
                               {**AUTH, "Content-Encoding": "gzip"})
            s2, r2 = await post(f"{base}/services/collector/raw?host=web-9&source=nginx",
                                b"first line\n\nsecond line\r\n", AUTH)
        finally:
            await rec.stop()
        assert (s1, s2, r2) == (200, 200, {"text": "Success", "code": 0})
        obj, raw1, raw2 = pub.records
        assert orjson.loads(obj["message"]) == {"user": "ann", "action": "login"}
        assert obj["fields"] == {"env": "prod", "splunk": {"sourcetype": "app"}}
        assert [raw1["message"], raw2["message"]] == ["first line", "second line"]
        assert raw1["source"]["host"] == "web-9"
        assert raw1["fields"] == {"splunk": {"source": "nginx"}}

    run(main)


@pytest.mark.parametrize(("headers", "path", "status", "code", "reason"), [
    ({}, "/services/collector/event", 401, 2, "token_missing"),
    ({"Authorization": f"Bearer {TOKEN}"}, "/services/collector/event", 401, 3, "auth_invalid"),
    ({"Authorization": "Splunk wrong-token"}, "/services/collector/event", 403, 4, "token_invalid"),
    ({"Authorization": "Basic " + base64.b64encode(b"x:wrong").decode()},
     "/services/collector/event", 403, 4, "token_invalid"),
    (AUTH, f"/services/collector/event?token={TOKEN}", 400, 16, "query_token"),
])
def test_bad_credentials_get_hec_errors_and_publish_nothing(headers, path, status, code, reason):
    async def main() -> None:
        pub = ListPublisher()
        rec, base = await serve(pub)
        try:
            got = await post(base + path, body(docker_event("x")), headers)
        finally:
            await rec.stop()
        assert got[0] == status and got[1]["code"] == code
        assert pub.records == []
        assert rec.errors == {reason: 1}

    run(main)


def test_basic_auth_with_the_token_as_password_is_accepted() -> None:
    async def main() -> None:
        pub = ListPublisher()
        rec, base = await serve(pub)
        try:
            auth = {"Authorization": "Basic " + base64.b64encode(f"x:{TOKEN}".encode()).decode()}
            got = await post(f"{base}/services/collector/event", body(docker_event("x")), auth)
        finally:
            await rec.stop()
        assert got == (200, {"text": "Success", "code": 0}) and len(pub.records) == 1

    run(main)


GOOD = body(docker_event("fine"))


@pytest.mark.parametrize(("data", "headers", "status", "reply", "reason"), [
    (GOOD + b'{"event": "cut', {}, 400,
     {"text": "Invalid data format", "code": 6, "invalid-event-number": 1}, "invalid_data"),
    (GOOD + b"[1, 2]", {}, 400,
     {"text": "Invalid data format", "code": 6, "invalid-event-number": 1}, "invalid_data"),
    (GOOD + body({"time": 1}), {}, 400,
     {"text": "Event field is required", "code": 12, "invalid-event-number": 1}, "event_missing"),
    (body({"event": "  "}), {}, 400,
     {"text": "Event field cannot be blank", "code": 13, "invalid-event-number": 0},
     "event_blank"),
    (GOOD + body({"event": "x", "fields": {"a": {"nested": 1}}}), {}, 400,
     {"text": "Error in handling indexed fields", "code": 15, "invalid-event-number": 1},
     "fields_invalid"),
    (GOOD + body({"event": "x", "time": "yesterday"}), {}, 400,
     {"text": "Invalid data format", "code": 6, "invalid-event-number": 1}, "invalid_data"),
    (b"  \n", {}, 400, {"text": "No data", "code": 5}, "no_data"),
    (b"\x1f\x8b not gzip", {"Content-Encoding": "gzip"}, 400,
     {"text": "Invalid data format", "code": 6}, "decompress_error"),
    (b"\xff\xfe", {}, 400,
     {"text": "Invalid data format", "code": 6, "invalid-event-number": 0}, "invalid_data"),
])
def test_malformed_bodies_are_refused_whole(data, headers, status, reply, reason):
    async def main() -> None:
        pub = ListPublisher()
        rec, base = await serve(pub)
        try:
            got = await post(f"{base}/services/collector/event/1.0", data, {**AUTH, **headers})
        finally:
            await rec.stop()
        assert got == (status, reply)
        assert pub.records == []  # the good first event was not published either
        assert rec.errors == {reason: 1}

    run(main)


def test_bodies_over_the_limit_are_refused() -> None:
    async def main() -> None:
        pub = ListPublisher()
        rec, base = await serve(pub, max_body_bytes=4096)
        try:
            big = body(*[docker_event("x" * 100)] * 100)
            s1, _ = await post(f"{base}/services/collector/event", big, AUTH)
            s2, _ = await post(f"{base}/services/collector/event", gzip.compress(big),
                               {**AUTH, "Content-Encoding": "gzip"})
        finally:
            await rec.stop()
        assert (s1, s2) == (413, 413)
        assert pub.records == [] and rec.errors == {"body_too_large": 2}

    run(main)


def test_publish_failure_answers_server_busy() -> None:
    async def main() -> None:
        pub = FailingPublisher()
        rec, base = await serve(pub)
        try:
            got = await post(f"{base}/services/collector/event/1.0", GOOD, AUTH)
        finally:
            await rec.stop()
        assert got == (503, {"text": "Server is busy", "code": 9})
        assert rec.errors["publish_failed"] == 1

    run(main)


def test_indexer_acknowledgement_after_kafka_acked() -> None:
    channel = str(uuid.uuid4())

    async def main() -> None:
        pub = ListPublisher()
        rec, base = await serve(pub, ack=True)
        url = f"{base}/services/collector/event"
        try:
            missing = await post(url, GOOD, AUTH)
            invalid = await post(url, GOOD, {**AUTH, "X-Splunk-Request-Channel": "nope"})
            first = await post(url, GOOD, {**AUTH, "X-Splunk-Request-Channel": channel})
            second = await post(f"{url}?channel={channel}", GOOD, AUTH)
            acks = await post(f"{base}/services/collector/ack?channel={channel}",
                              orjson.dumps({"acks": [0, 1, 7]}), AUTH)
            other = await post(f"{base}/services/collector/ack",
                               orjson.dumps({"acks": [0]}),
                               {**AUTH, "X-Splunk-Request-Channel": str(uuid.uuid4())})
        finally:
            await rec.stop()
        assert missing == (400, {"text": "Data channel is missing", "code": 10})
        assert invalid == (400, {"text": "Invalid data channel", "code": 11})
        assert first == (200, {"text": "Success", "code": 0, "ackId": 0})
        assert second == (200, {"text": "Success", "code": 0, "ackId": 1})
        assert acks == (200, {"acks": {"0": True, "1": True, "7": False}})
        assert other == (200, {"acks": {"0": False}})
        assert len(pub.records) == 2

    run(main)


def test_ack_disabled_health_options_and_unknown_paths() -> None:
    healthy = [True]

    async def main() -> None:
        pub = ListPublisher()
        rec, base = await serve(pub, health=lambda: healthy[0])
        try:
            ack = await post(f"{base}/services/collector/ack", b'{"acks":[0]}', AUTH)
            async with ClientSession() as s:
                async with s.get(f"{base}/services/collector/health") as r:
                    ok = (r.status, await r.json())
                healthy[0] = False
                async with s.get(f"{base}/services/collector/health/1.0") as r:
                    bad = (r.status, await r.json())
                async with s.options(f"{base}/services/collector/event/1.0") as r:
                    options = r.status  # Docker's splunk-verify-connection probe
                async with s.get(f"{base}/nowhere") as r:
                    missing = r.status
        finally:
            await rec.stop()
        assert ack == (400, {"text": "ACK is disabled", "code": 14})
        assert ok == (200, {"text": "HEC is healthy", "code": 17})
        assert bad == (503, {"text": "HEC is unhealthy, queues are full", "code": 18})
        assert (options, missing) == (200, 404)
        assert rec.errors == {"ack_disabled": 1, "not_found": 1}

    run(main)


def test_concatenated_json_values() -> None:
    assert json_objects('{"a":1}{"b":2}\n {"c":[3]} ') == [{"a": 1}, {"b": 2}, {"c": [3]}]
    assert json_objects("") == []


def test_token_settings(tmp_path, monkeypatch) -> None:
    f = tmp_path / "tokens"
    f.write_text("# HEC tokens\nabc-1\n\n  def-2 ack \n")
    assert [(t.secret.reveal(), t.ack) for t in token_settings(str(f), env={})] == [
        ("abc-1", False), ("def-2", True)]
    env = {"LOGRIVER_SPLUNK_HEC_TOKEN": "t"}
    assert [(t.secret.reveal(), t.ack) for t in token_settings(None, env=env)] == [("t", False)]
    with pytest.raises(SecurityConfigError, match="needs a token"):
        token_settings(None, env={})
    f.write_text("two tokens here\n")  # not TOKEN or TOKEN ack
    with pytest.raises(SecurityConfigError, match="line 1") as err:
        token_settings(str(f), env={})
    assert "two tokens" not in str(err.value)


def test_collect_command_builds_the_receiver(tmp_path, monkeypatch) -> None:
    import argparse

    from streams.cli import CliError, collect
    from streams.ops.stats import WorkerStats

    for name in ("LOGRIVER_SPLUNK_HEC_TOKEN", "LOGRIVER_SPLUNK_HEC_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    parser = argparse.ArgumentParser()
    collect.register(parser.add_subparsers())
    stats = WorkerStats(role="collector")

    def build(*argv: str) -> SplunkHecReceiver:
        args = parser.parse_args(["collect", "--splunk-hec", "0", *argv])
        [receiver] = collect.build_receivers(args, ListPublisher(), stats)  # type: ignore[arg-type]
        return receiver

    with pytest.raises(CliError, match="needs a token"):
        build()
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKEN + "\n")
    r = build("--splunk-hec-tokens-file", str(tokens), "--splunk-hec-ack",
              "--docker-tag", "{{.Name}}/{{.ID}}")
    assert r.ack and [t.template for t in r.tag.templates] == ["{{.Name}}/{{.ID}}"]
    assert TOKEN not in repr(r)
    stats.kafka_ok = False
    assert r.health is not None and r.health() is False
    with pytest.raises(CliError, match="cannot read back"):
        build("--splunk-hec-tokens-file", str(tokens), "--docker-tag", "{{.Name | upper}}")


def test_acknowledgement_is_per_token_as_splunk_configures_it() -> None:
    from streams.ops.security import Secret
    from streams.sources.receivers.splunk import HecToken

    async def main() -> None:
        pub = ListPublisher()
        rec = SplunkHecReceiver(pub, tokens=[HecToken(Secret(TOKEN)), HecToken(Secret("acked"), True)])
        await rec.start()
        url = f"http://127.0.0.1:{rec.port}/services/collector/event/1.0"
        try:
            plain = await post(url, GOOD, AUTH)
            acked = await post(url, GOOD, {"Authorization": "Splunk acked"})
        finally:
            await rec.stop()
        assert plain == (200, {"text": "Success", "code": 0})
        assert acked == (400, {"text": "Data channel is missing", "code": 10})

    run(main)


def test_records_fit_the_raw_schema_and_structure_with_container_and_stream() -> None:
    import schemas
    from streams.pipeline import Pipeline
    from streams.transport.records import encode_batch

    class Req:
        remote = "10.0.0.9"

    rec = SplunkHecReceiver(ListPublisher(), tokens=[TOKEN])
    items = rec.event_items(body(docker_event('{"level":"warn","msg":"slow"}', source="stderr")),
                            Req())  # type: ignore[arg-type]
    records = [r for _, r in items]
    schemas.validate("raw_batch", orjson.loads(encode_batch(records)))
    [event] = Pipeline("t", mine_templates=False).structure(records, None).events
    assert event["stream"] == "stderr" and event["container"]["id"] == CID[:12]
    assert event["log"]["level"] == "warn" and event["@timestamp"].startswith("2025-11-25T10:00:00.123")


def test_an_event_posted_again_keeps_its_id_and_identical_ones_stay_distinct() -> None:
    async def main() -> None:
        pub = ListPublisher()
        rec, base = await serve(pub)
        url = f"{base}/services/collector/event/1.0"
        same = docker_event("ping")
        try:
            await post(url, body(same, same), AUTH)
            await post(url, body(same, docker_event("pong"), same), AUTH)  # a retry, re-batched
        finally:
            await rec.stop()
        ids = [r["id"] for r in pub.records]
        assert ids[0] != ids[1]  # two identical lines of one request: two events
        assert {ids[2], ids[4]} == {ids[0], ids[1]}  # the retry: the same two ids again
        assert len(set(ids)) == 3

    run(main)


def test_stop_lets_requests_in_progress_publish_and_reply() -> None:
    import asyncio

    class Slow(ListPublisher):
        async def publish(self, key, records):
            await asyncio.sleep(0.5)
            await super().publish(key, records)

    async def main() -> None:
        pub = Slow()
        rec, base = await serve(pub)
        sending = asyncio.ensure_future(
            post(f"{base}/services/collector/event/1.0", GOOD, AUTH))
        await asyncio.sleep(0.2)  # the request is being published
        await rec.stop()
        assert await sending == (200, {"text": "Success", "code": 0})
        assert len(pub.records) == 1

    run(main)
