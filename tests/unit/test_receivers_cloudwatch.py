"""CloudWatch Logs-compatible receiver: SigV4 verified against botocore's own signer, the
operations through boto3 (its typed errors come from our replies), and refused requests
publish nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import orjson
import pytest
from aiohttp import ClientSession
from aiotest import run
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from streams.ops.security import Secret, SecurityConfigError
from streams.sources.base import ListPublisher
from streams.sources.receivers.cloudwatch import CloudWatchReceiver, credential_settings
from streams.sources.receivers.sigv4 import AwsCredential, SigV4Error, verify

KEY, SECRET = "AKIDLOGRIVERTEST0001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
CREDS = [AwsCredential(KEY, Secret(SECRET))]
CID = "4f0c2f8b9a1e" + "0123456789abcdef" * 3 + "0123"
NOW_MS = int(datetime.now(UTC).timestamp() * 1000)


def signed(body: bytes, target: str, *, key: str = KEY, secret: str = SECRET,
           token: str | None = None, url: str = "http://127.0.0.1:4566/") -> AWSRequest:
    req = AWSRequest("POST", url, data=body, headers={
        "X-Amz-Target": f"Logs_20140328.{target}",
        "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(key, secret, token), "logs", "eu-west-1").add_auth(req)
    return req


def check(req: AWSRequest, creds: list[AwsCredential] = CREDS, **kw: Any):
    from urllib.parse import urlsplit

    u = urlsplit(req.url)
    headers = {"Host": u.netloc, **dict(req.headers.items())}  # as the HTTP client adds it
    return verify("POST", u.path, u.query, headers, req.body, {c.access_key_id: c for c in creds},
                  "logs", **kw)


def test_botocore_signatures_verify() -> None:
    scope = check(signed(b'{"logGroupName":"g"}', "CreateLogGroup"))
    assert (scope.access_key_id, scope.region, scope.service) == (KEY, "eu-west-1", "logs")
    temp = [AwsCredential(KEY, Secret(SECRET), Secret("session-1"))]
    assert check(signed(b"{}", "DescribeLogGroups", token="session-1"), temp).region == "eu-west-1"


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda r: r.__setattr__("data", b'{"logGroupName":"h"}'), "InvalidSignatureException"),
    (lambda r: r.headers.__setitem__("X-Amz-Target", "Logs_20140328.DeleteLogGroup"),
     "InvalidSignatureException"),
    (lambda r: r.headers.__delitem__("Authorization"), "MissingAuthenticationTokenException"),
    (lambda r: r.headers.replace_header("Authorization", "AWS4-HMAC-SHA256 Credential=x"),
     "IncompleteSignatureException"),
])
def test_tampered_requests_are_refused(mutate, expected) -> None:
    req = signed(b'{"logGroupName":"g"}', "CreateLogGroup")
    mutate(req)
    with pytest.raises(SigV4Error) as err:
        check(req)
    assert err.value.type == expected


def test_wrong_keys_tokens_and_old_signatures_are_refused() -> None:
    with pytest.raises(SigV4Error, match="signature we calculated") as err:
        check(signed(b"{}", "DescribeLogGroups", secret="not-the-secret"))
    assert err.value.status == 403
    with pytest.raises(SigV4Error) as err:
        check(signed(b"{}", "DescribeLogGroups", key="AKIDUNKNOWN"))
    assert err.value.type == "UnrecognizedClientException"
    with pytest.raises(SigV4Error) as err:
        check(signed(b"{}", "DescribeLogGroups", token="a-session"))  # none configured
    assert err.value.type == "UnrecognizedClientException"
    with pytest.raises(SigV4Error, match="Signature expired"):
        check(signed(b"{}", "DescribeLogGroups"), now=datetime.now(UTC) + timedelta(minutes=6))


class FailingPublisher(ListPublisher):
    async def publish(self, key, records):
        raise ConnectionError("kafka is away")


async def serve(pub: ListPublisher, **kw: Any) -> CloudWatchReceiver:
    rec = CloudWatchReceiver(pub, credentials=CREDS, **kw)
    await rec.start()
    return rec


def client(rec: CloudWatchReceiver, secret: str = SECRET) -> Any:
    return boto3.client("logs", endpoint_url=f"http://127.0.0.1:{rec.port}",
                        region_name="eu-west-1", aws_access_key_id=KEY,
                        aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}))


async def call(fn: Any, **kw: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(**kw))


async def error_code(fn: Any, **kw: Any) -> str:
    try:
        await call(fn, **kw)
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    return "no error"


def test_boto3_creates_describes_and_puts() -> None:
    async def main() -> None:
        pub = ListPublisher()
        rec = await serve(pub)
        logs = client(rec)
        try:
            await call(logs.create_log_group, logGroupName="/ecs/shop")
            await call(logs.create_log_stream, logGroupName="/ecs/shop", logStreamName=CID)
            await call(logs.create_log_stream, logGroupName="/ecs/shop", logStreamName="web-2")
            got = await call(logs.describe_log_streams, logGroupName="/ecs/shop", limit=1)
            page2 = await call(logs.describe_log_streams, logGroupName="/ecs/shop",
                               nextToken=got["nextToken"])
            groups = await call(logs.describe_log_groups, logGroupNamePrefix="/ecs")
            put = await call(logs.put_log_events, logGroupName="/ecs/shop", logStreamName=CID,
                             logEvents=[{"timestamp": NOW_MS, "message": "GET / 200"},
                                        {"timestamp": NOW_MS + 5, "message": "GET / 200"}])
            again = await error_code(logs.create_log_group, logGroupName="/ecs/shop")
            missing = await error_code(logs.put_log_events, logGroupName="/ecs/shop",
                                       logStreamName="nope",
                                       logEvents=[{"timestamp": NOW_MS, "message": "x"}])
        finally:
            await rec.stop()
        assert [s["logStreamName"] for s in got["logStreams"]] == [CID]
        assert [s["logStreamName"] for s in page2["logStreams"]] == ["web-2"]
        assert [g["logGroupName"] for g in groups["logGroups"]] == ["/ecs/shop"]
        assert put["nextSequenceToken"]
        assert (again, missing) == ("ResourceAlreadyExistsException", "ResourceNotFoundException")
        a, b = pub.records
        assert (a["message"], b["message"]) == ("GET / 200", "GET / 200")
        assert a["id"] != b["id"]
        assert a["aws"] == {"cloudwatch": {"log_group": "/ecs/shop", "log_stream": CID}}
        assert a["cloud"] == {"provider": "aws", "region": "eu-west-1"}
        assert a["container"] == {"id": CID, "runtime": "docker"}
        assert a["time"].endswith("Z") and a["source"]["type"] == "cloudwatch"
        assert rec.errors == {"group_exists": 1, "stream_not_found": 1}

    run(main)


def test_refused_batches_publish_nothing() -> None:
    async def main() -> None:
        pub = ListPublisher()
        rec = await serve(pub)
        logs = client(rec)
        try:
            await call(logs.create_log_group, logGroupName="g")
            await call(logs.create_log_stream, logGroupName="g", logStreamName="s")
            put = {"logGroupName": "g", "logStreamName": "s"}
            order = await error_code(logs.put_log_events, **put, logEvents=[
                {"timestamp": NOW_MS, "message": "b"}, {"timestamp": NOW_MS - 1, "message": "a"}])
            big = await error_code(logs.put_log_events, **put, logEvents=[
                {"timestamp": NOW_MS, "message": "x" * 300_000}])
            bad_secret = await error_code(client(rec, "wrong").put_log_events, **put,
                                          logEvents=[{"timestamp": NOW_MS, "message": "x"}])
        finally:
            await rec.stop()
        assert (order, big) == ("InvalidParameterException", "InvalidParameterException")
        assert bad_secret == "InvalidSignatureException"
        assert pub.records == []
        assert rec.errors == {"invalid_parameter": 2, "signature_invalid": 1}

    run(main)


def test_raw_protocol_errors() -> None:
    async def main() -> None:
        pub = ListPublisher()
        rec = await serve(pub)
        url = f"http://127.0.0.1:{rec.port}/"
        out = []
        try:
            async with ClientSession() as s:
                for body, target in ((b"{not json", "PutLogEvents"), (b"{}", "DeleteLogGroup"),
                                     (b"[1]", "CreateLogGroup")):
                    req = signed(body, target, url=url)
                    async with s.post(url, data=body, headers=dict(req.headers.items())) as r:
                        out.append((r.status, r.headers["X-Amzn-ErrorType"],
                                    orjson.loads(await r.read())["__type"]))
                async with s.post(url, data=b"{}") as r:  # unsigned
                    out.append((r.status, r.headers["X-Amzn-ErrorType"], ""))
        finally:
            await rec.stop()
        assert out == [(400, "SerializationException", "SerializationException"),
                       (400, "UnknownOperationException", "UnknownOperationException"),
                       (400, "SerializationException", "SerializationException"),
                       (400, "MissingAuthenticationTokenException", "")]
        assert rec.errors == {"serialization": 2, "unknown_operation": 1, "auth_missing": 1}

    run(main)


def test_publish_failure_is_service_unavailable_and_a_resent_batch_keeps_its_ids(tmp_path) -> None:
    async def main() -> None:
        state = tmp_path / "cw.json"
        rec = await serve(FailingPublisher(), state_path=state)
        logs = client(rec)
        events = [{"timestamp": NOW_MS, "message": "one"}, {"timestamp": NOW_MS, "message": "one"}]
        try:
            await call(logs.create_log_group, logGroupName="g")
            await call(logs.create_log_stream, logGroupName="g", logStreamName="s")
            failed = await error_code(logs.put_log_events, logGroupName="g", logStreamName="s",
                                      logEvents=events)
        finally:
            await rec.stop()
        pub = ListPublisher()
        rec2 = await serve(pub, state_path=state)  # a restart keeps groups and streams
        logs = client(rec2)
        try:
            for _ in range(2):
                await call(logs.put_log_events, logGroupName="g", logStreamName="s",
                           logEvents=events, sequenceToken="anything")
        finally:
            await rec2.stop()
        assert failed == "ServiceUnavailableException"
        ids = [r["id"] for r in pub.records]
        assert len(ids) == 4 and ids[:2] == ids[2:] and ids[0] != ids[1]

    run(main)


def test_credential_settings(tmp_path) -> None:
    f = tmp_path / "credentials"
    f.write_text(f"[default]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n"
                 "[ci]\naws_access_key_id=AKID2\naws_secret_access_key=s2\naws_session_token=t\n")
    got = credential_settings(str(f), env={})
    assert [(c.access_key_id, c.secret_access_key.reveal()) for c in got] == [
        (KEY, SECRET), ("AKID2", "s2")]
    assert got[1].session_token is not None and SECRET not in repr(got)
    env = {"LOGRIVER_CLOUDWATCH_ACCESS_KEY_ID": "AKID3",
           "LOGRIVER_CLOUDWATCH_SECRET_ACCESS_KEY": "s3"}
    assert [c.access_key_id for c in credential_settings(None, env=env)] == ["AKID3"]
    with pytest.raises(SecurityConfigError, match="needs credentials"):
        credential_settings(None, env={})
    with pytest.raises(SecurityConfigError, match="both"):
        credential_settings(None, env={"LOGRIVER_CLOUDWATCH_ACCESS_KEY_ID": "AKID3"})
    f.write_text("[p]\naws_access_key_id=AKID\n")
    with pytest.raises(SecurityConfigError, match="profile 'p'"):
        credential_settings(str(f), env={})


def test_collect_command_builds_the_receiver(tmp_path, monkeypatch) -> None:
    import argparse

    from streams.cli import CliError, collect

    for name in ("LOGRIVER_CLOUDWATCH_ACCESS_KEY_ID", "LOGRIVER_CLOUDWATCH_SECRET_ACCESS_KEY",
                 "LOGRIVER_CLOUDWATCH_SECRET_ACCESS_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    parser = argparse.ArgumentParser()
    collect.register(parser.add_subparsers())

    def build(*argv: str) -> CloudWatchReceiver:
        args = parser.parse_args(["collect", "--cloudwatch", "0", "--checkpoint-dir",
                                  str(tmp_path / "cp"), *argv])
        [receiver] = collect.build_receivers(args, ListPublisher())  # type: ignore[arg-type]
        return receiver

    with pytest.raises(CliError, match="needs credentials"):
        build()
    monkeypatch.setenv("LOGRIVER_CLOUDWATCH_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("LOGRIVER_CLOUDWATCH_SECRET_ACCESS_KEY", SECRET)
    r = build("--docker-tag", "{{.Name}}")
    assert list(r.credentials) == [KEY] and SECRET not in repr(r)
    assert r.state_path == tmp_path / "cp" / "cloudwatch-state.json"
    assert r.tag.match("web-1") == {"name": "web-1"} and r.tag.match(CID) == {"id": CID}


def test_records_structure_into_ecs_and_fit_the_raw_schema() -> None:
    import schemas
    from streams.pipeline import Pipeline
    from streams.transport.records import encode_batch

    rec = CloudWatchReceiver(ListPublisher(), credentials=CREDS)
    items = rec.records("/ecs/shop", CID, [(NOW_MS, '{"level":"error","msg":"boom"}')],
                        "eu-west-1", "10.0.0.7")
    records = [r for _, r in items]
    schemas.validate("raw_batch", orjson.loads(encode_batch(records)))
    [event] = Pipeline("t", mine_templates=False).structure(records, None).events
    assert event["aws"]["cloudwatch"] == {"log_group": "/ecs/shop", "log_stream": CID}
    assert event["cloud"] == {"provider": "aws", "region": "eu-west-1"}
    assert event["container"]["id"] == CID and event["log"]["level"] == "error"
