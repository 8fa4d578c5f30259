"""The Kafka client's repeated errors are rate-limited, not lost: the next record that
passes says how many similar ones were held back."""

from __future__ import annotations

import logging

from streams.ops import logfilter


def _record(msg: str, name: str = "aiokafka.conn") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, ("node-1",), None)


def test_repeats_are_held_back_then_counted(monkeypatch) -> None:
    now = [100.0]
    monkeypatch.setattr(logfilter.time, "monotonic", lambda: now[0])
    flt = logfilter.RepeatFilter(interval=30)
    first = _record("Unable connect to node with id %s")
    assert flt.filter(first)
    assert [flt.filter(_record("Unable connect to node with id %s")) for _ in range(5)] == [False] * 5
    assert flt.filter(_record("another message %s"))  # other templates pass
    now[0] += 31
    later = _record("Unable connect to node with id %s")
    assert flt.filter(later)
    assert later.getMessage() == "Unable connect to node with id node-1 (5 similar messages suppressed)"


def test_installed_on_every_aiokafka_module_logger() -> None:
    flt = logfilter.install(interval=30)
    try:
        for name in ("aiokafka", "aiokafka.conn", "aiokafka.client", "aiokafka.producer.sender",
                     "aiokafka.consumer.group_coordinator"):
            assert flt in logging.getLogger(name).filters
    finally:
        for logger in logging.Logger.manager.loggerDict.values():
            if isinstance(logger, logging.Logger) and flt in logger.filters:
                logger.removeFilter(flt)


def test_bounded_memory() -> None:
    flt = logfilter.RepeatFilter(interval=30, max_keys=10)
    for i in range(100):
        flt.filter(_record(f"distinct {i} %s"))
    assert len(flt._last) <= 10
