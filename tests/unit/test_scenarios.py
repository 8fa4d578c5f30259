"""The anomaly benchmark's scenarios write lines as real loggers do: a message with quotes in
logfmt or klog was written with its quotes unescaped (invalid logfmt: the parser rightly
took the line for plain text, without its level, and a new exception in such a service went
unseen on held-out seed 109)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from benchmarks import scenarios
from streams.parse import Parser

TEXT = 'unhandled java.lang.NullPointerException: Cannot invoke "order.get()" because "batch" is null'


@pytest.mark.parametrize("fmt", ["logfmt", "klog", "json", "python", "java"])
def test_a_message_with_quotes_keeps_its_level_and_text(fmt: str) -> None:
    svc = scenarios.Service("shop", "media", fmt, 60.0, 1, False, "docker", ["ok {}"], ["slow {}"],
                            ["failed {}"], 20.0, (0.0, 60.0))
    [line] = scenarios._render(svc, random.Random(1), datetime(2026, 5, 12, 7, 8, tzinfo=UTC),
                               "error", TEXT)
    parsed = Parser().parse(line)
    assert parsed.message.endswith(TEXT), (fmt, line, parsed)
    assert str(parsed.level).lower() in ("error", "e"), (fmt, line, parsed)
