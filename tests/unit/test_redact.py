"""streams.steps.redact: each kind redacted, near misses kept, counts per kind, and the step in a
pipeline before indexing."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from streams.parse import Parser
from streams.pipeline import Pipeline
from streams.replay.runner import structure_lines
from streams.steps.redact import KINDS, Redactor, luhn_ok, mask, redaction_step

R = Redactor()

POSITIVE = [
    ("card", "paid with 4111 1111 1111 1111 today", "paid with [REDACTED:card] today"),
    ("card", "card=4111-1111-1111-1111", "card=[REDACTED:card]"),
    ("card", "amex 378282246310005.", "amex [REDACTED:card]."),
    ("card", "visa 4222222222222", "visa [REDACTED:card]"),
    ("card", "discover 6011000990139424;", "discover [REDACTED:card];"),
    ("email", "mail bob.smith+x@mail.example.co.uk now", "mail [REDACTED:email] now"),
    ("email", "<ops_team@corp-1.io>", "<[REDACTED:email]>"),
    ("bearer", "Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig-_x", "Authorization: Bearer [REDACTED:bearer]"),
    ("bearer", "authorization=bearer abcdefgh12345678", "authorization=bearer [REDACTED:bearer]"),
    ("cloud_key", "key AKIAIOSFODNN7EXAMPLE used", "key [REDACTED:cloud_key] used"),
    ("cloud_key", "ASIAY34FZKBOKMUTVV7A", "[REDACTED:cloud_key]"),
    (
        "cloud_key",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key = [REDACTED:cloud_key]",
    ),
    ("cloud_key", "gcp AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI!", "gcp [REDACTED:cloud_key]!"),
    ("cloud_key", "token ya29.a0AfH6SMBx-abcdefghijklmnop_qrs", "token [REDACTED:cloud_key]"),
    ("url_password", "dsn postgres://admin:hunter2@db:5432/x", "dsn postgres://admin:[REDACTED:url_password]@db:5432/x"),
    ("url_password", "amqp+ssl://u:p%40ss@mq", "amqp+ssl://u:[REDACTED:url_password]@mq"),
]

NEGATIVE = [
    "pay 4111 1111 1111 1112 (not Luhn)",
    "digits continuing a run: 3 4222222222222",
    "16 digits 1234567812345678",  # not Luhn-valid
    "epoch ms 1732600000123",
    "long id 41111111111111111111111",  # 23 digits: not a card
    "version 4.111111111111111",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "date 2026-11-25 10:00:00.123",
    "user@host",  # no domain
    "http://example.com:8080/path@v2",
    "https://user@host/path",  # no password
    "the bearer of bad news",
    "AKIA is a prefix",
    "aws_secret_access_key=short",
    "plain line with nothing to hide",
]


@pytest.mark.parametrize("kind, text, expected", POSITIVE)
def test_positive(kind: str, text: str, expected: str) -> None:
    c: Counter[str] = Counter()
    assert R.text(text, c) == expected
    assert c[kind] == 1 and sum(c.values()) == 1


@pytest.mark.parametrize("text", NEGATIVE)
def test_negative_is_kept(text: str) -> None:
    c: Counter[str] = Counter()
    assert R.text(text, c) == text
    assert not c


def test_a_16_digit_non_luhn_number_is_kept() -> None:
    assert not luhn_ok("4111111111111112")
    assert luhn_ok("4111111111111111")
    assert R.text("n=4111111111111112") == "n=4111111111111112"
    assert R.text("n=4111111111111111") == "n=" + mask("card")


def test_kinds_can_be_selected() -> None:
    only_email = Redactor(["email"])
    text = "a@b.io 4111111111111111"
    assert only_email.text(text) == "[REDACTED:email] 4111111111111111"
    with pytest.raises(ValueError, match="unknown"):
        Redactor(["ssn"])
    assert set(KINDS) == {"email", "card", "bearer", "cloud_key", "url_password"}


def test_event_fields_and_counts() -> None:
    event = {
        "message": "login bob@example.com card 4111111111111111",
        "event": {"id": "x", "original": "raw bob@example.com"},
        "log": {"template": "login bob@example.com card <*>", "template_params": ["4111111111111111", 3]},
        "attributes": {
            "user": {"email": "alice@example.org", "n": 4},
            "list": ["Bearer abcdefgh12345678", None],
            "dsn": "mysql://root:toor@db",
        },
        "logriver": {"pipeline": "p"},
    }
    out = R(event)
    text = json.dumps(out)
    for secret in ("bob@example.com", "4111111111111111", "alice@example.org", "abcdefgh12345678", "toor"):
        assert secret not in text
    assert out["logriver"]["redactions"] == {"email": 4, "card": 2, "bearer": 1, "url_password": 1}
    assert out["attributes"]["user"]["n"] == 4 and out["log"]["template_params"][1] == 3


def test_deep_attributes_are_bounded_and_flagged() -> None:
    node: dict = {"v": "x@y.io"}
    for _ in range(100):
        node = {"k": node}
    out = R({"message": "m", "attributes": node, "logriver": {}})
    assert "redaction_depth" in out["logriver"]["flags"]


def test_step_in_a_pipeline_before_indexing() -> None:
    pipeline = Pipeline(name="redacting", parser=Parser(), steps=[redaction_step()])
    line = json.dumps(
        {"level": "info", "msg": "paid by bob@example.com with 5555555555554444", "user": {"email": "a@b.io"}}
    ).encode()
    (event,) = structure_lines(pipeline, [line])
    text = json.dumps(event)
    assert "bob@example.com" not in text and "5555555555554444" not in text and "a@b.io" not in text
    assert event["logriver"]["redactions"]["email"] >= 2
    assert event["logriver"]["redactions"]["card"] >= 1
    assert "step_error" not in event["logriver"].get("flags", [])


def test_lines_without_hints_are_returned_as_is() -> None:
    s = "GET /api/v1/items 200 12ms"
    assert R.text(s) is s
