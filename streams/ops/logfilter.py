"""Keep the Kafka clients from flooding the log while a broker is away.

aiokafka logs every failed connection attempt (several a second per node while Kafka is
down); Faust adds its own. The filter lets the first record of each message template
through, then at most one per ``interval`` seconds, and says how many it held back."""

from __future__ import annotations

import logging
import pkgutil
import time

NOISY_PACKAGES = ("aiokafka",)


class RepeatFilter(logging.Filter):
    """At most one record per (logger, level, message template) per ``interval`` seconds;
    the next one that passes carries ``(N similar messages suppressed)``."""

    def __init__(self, interval: float = 30.0, max_keys: int = 1000) -> None:
        super().__init__()
        self.interval = interval
        self.max_keys = max_keys
        self._last: dict[tuple[str, int, str], float] = {}
        self._held: dict[tuple[str, int, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        if len(self._last) >= self.max_keys and key not in self._last:
            self._last.clear()  # bounded: forget old templates rather than grow
            self._held.clear()
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} ({held} similar messages suppressed)"
        return True


def install(interval: float = 30.0) -> RepeatFilter:
    """Attach one filter to every module logger of the Kafka client. A logger's filters see
    only the records created on that logger (not those its children propagate), and
    aiokafka logs through ``logging.getLogger(__name__)`` in each module."""
    flt = RepeatFilter(interval)
    for package in NOISY_PACKAGES:
        try:
            mod = __import__(package)
        except ImportError:
            continue
        names = [package] + [m.name for m in pkgutil.walk_packages(mod.__path__, package + ".")]
        for name in names:
            logging.getLogger(name).addFilter(flt)
    return flt
