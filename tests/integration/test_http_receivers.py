"""The HTTP receivers (Splunk HEC, CloudWatch Logs) in `logriver collect` against the real
Kafka: refused requests (bad token, bad signature, malformed bodies) get the protocol's error
reply, publish nothing, and are counted in /metrics; accepted ones reach the raw topic."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import UTC, datetime
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import boto3
import orjson
from botocore.config import Config
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families
from test_collectors_kafka import _consume, _free_port, _wait_port

TOKEN = "2d1c0b9a-8f7e-4d6c-5b4a-392817161514"
KEY, SECRET = "AKIDLOGRIVERIT000001", "aW50ZWdyYXRpb24tc2VjcmV0LW9mLWxvZ3JpdmVy"


def _hec(port: int, body: bytes, token: str = TOKEN) -> tuple[int, dict]:
    req = Request(f"http://127.0.0.1:{port}/services/collector/event/1.0", data=body,
                  headers={"Authorization": f"Splunk {token}"}, method="POST")
    try:
        with urlopen(req, timeout=30) as r:
            return r.status, orjson.loads(r.read())
    except HTTPError as exc:  # urllib raises on 4xx/5xx
        return exc.code, orjson.loads(exc.read())


def _code(fn, **kw) -> str:
    try:
        fn(**kw)
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    return "ok"


def _errors(port: int) -> dict[tuple[str, str], float]:
    with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        text = r.read().decode()
    return {(s.labels["stage"], s.labels["reason"]): s.value
            for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == "logriver_errors_total" and s.value}


def test_refused_requests_publish_nothing_and_are_counted(settings, tmp_path):
    hec, cw, metrics = _free_port(), _free_port(), _free_port()
    (tmp_path / "tokens").write_text(TOKEN + "\n")
    (tmp_path / "aws").write_text(f"[it]\naws_access_key_id={KEY}\naws_secret_access_key={SECRET}\n")
    cmd = [sys.executable, "-m", "streams", "collect", "--no-tail", "--root", str(tmp_path),
           "--checkpoint-dir", str(tmp_path / "cp"), "--kafka", settings.kafka_bootstrap,
           "--topic-prefix", settings.topic_prefix, "--metrics-port", str(metrics),
           "--splunk-hec", str(hec), "--splunk-hec-tokens-file", str(tmp_path / "tokens"),
           "--cloudwatch", str(cw), "--cloudwatch-credentials-file", str(tmp_path / "aws")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "agent.log", "wb"))  # noqa: SIM115
    try:
        _wait_port(hec)
        _wait_port(cw)
        good = orjson.dumps({"event": {"line": "hec accepted", "source": "stdout"},
                             "time": f"{time.time():.6f}"})
        refused = [
            _hec(hec, good, token="not-a-token"),
            _hec(hec, good + b'{"event": "cut'),
            _hec(hec, good + orjson.dumps({"time": "1"})),
        ]
        accepted = _hec(hec, good)

        def logs(secret: str = SECRET):
            return boto3.client("logs", endpoint_url=f"http://127.0.0.1:{cw}",
                                region_name="eu-west-1", aws_access_key_id=KEY,
                                aws_secret_access_key=secret,
                                config=Config(retries={"max_attempts": 1}))

        now = int(datetime.now(UTC).timestamp() * 1000)
        logs().create_log_group(logGroupName="/it")
        logs().create_log_stream(logGroupName="/it", logStreamName="app")
        put = {"logGroupName": "/it", "logStreamName": "app"}
        cw_refused = [
            _code(logs("wrong-secret").put_log_events, **put,
                  logEvents=[{"timestamp": now, "message": "bad signature"}]),
            _code(logs().put_log_events, **put, logEvents=[
                {"timestamp": now, "message": "late"}, {"timestamp": now - 5, "message": "early"}]),
            _code(logs().put_log_events, logGroupName="/it", logStreamName="nope",
                  logEvents=[{"timestamp": now, "message": "no stream"}]),
        ]
        cw_accepted = _code(logs().put_log_events, **put, logEvents=[
            {"timestamp": now, "message": "cloudwatch one"},
            {"timestamp": now + 1, "message": "cloudwatch two"}])
        records = asyncio.run(_consume(settings, 4, timeout=30))
        errors = _errors(metrics)
    finally:
        proc.terminate()
        proc.wait(30)
    assert [(s, r["code"]) for s, r in refused] == [(403, 4), (400, 6), (400, 12)]
    assert accepted == (200, {"text": "Success", "code": 0})
    assert cw_refused == ["InvalidSignatureException", "InvalidParameterException",
                          "ResourceNotFoundException"]
    assert cw_accepted == "ok"
    assert sorted(r["message"] for r in records) == [
        "cloudwatch one", "cloudwatch two", "hec accepted"]
    assert {k: v for k, v in errors.items() if k[0] in ("receive_splunk", "receive_cloudwatch")} == {
        ("receive_splunk", "token_invalid"): 1, ("receive_splunk", "invalid_data"): 1,
        ("receive_splunk", "event_missing"): 1, ("receive_cloudwatch", "signature_invalid"): 1,
        ("receive_cloudwatch", "invalid_parameter"): 1,
        ("receive_cloudwatch", "stream_not_found"): 1}
