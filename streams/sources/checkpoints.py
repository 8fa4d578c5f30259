"""Checkpoints of the file tailer: file identity -> byte offset of the next unpublished line.

Written atomically (temporary file, fsync, rename), so a SIGKILL leaves either the previous
or the new checkpoint, never a torn one. The offset advances only after the publisher
acknowledged the lines before it, so a restart re-sends at most the last unacknowledged
batch, with the same ids.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson


@dataclass
class Checkpoint:
    offset: int
    path: str
    updated: float


class CheckpointStore:
    def __init__(self, path: Path | str, *, min_interval: float = 0.2) -> None:
        self.path = Path(path)
        self.min_interval = min_interval
        self._data: dict[str, Checkpoint] = {}
        self._dirty = False
        # None until the first write: monotonic time counts from boot, so on a machine up
        # for less than ``min_interval`` a 0.0 start would hold back the first flush.
        self._last_write: float | None = None
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        raw: dict[str, Any] = orjson.loads(self.path.read_bytes())
        for key, value in raw.get("files", {}).items():
            self._data[key] = Checkpoint(int(value["offset"]), value.get("path", ""), value.get("updated", 0.0))

    def get(self, identity: str) -> Checkpoint | None:
        return self._data.get(identity)

    def set(self, identity: str, offset: int, path: str) -> None:
        cp = self._data.get(identity)
        if cp is None or cp.offset != offset or cp.path != path:
            self._data[identity] = Checkpoint(offset, path, time.time())
            self._dirty = True

    def prune(self, active: set[str], max_age: float, now: float | None = None) -> int:
        """Drop checkpoints of files gone for good, so pod churn does not grow the store
        forever: not open now (``active``), unchanged for ``max_age`` seconds, and either their
        path no longer exists or a newer identity took the path (a rotated-away copy).
        Returns how many were dropped. Should a pruned file be found again, it is read from
        its start with the same record ids, so Elasticsearch drops the repeats."""
        now = time.time() if now is None else now
        newest: dict[str, float] = {}
        for cp in self._data.values():
            newest[cp.path] = max(newest.get(cp.path, 0.0), cp.updated)
        doomed = [
            identity for identity, cp in self._data.items()
            if identity not in active and now - cp.updated > max_age
            and (cp.updated < newest[cp.path] or not os.path.exists(cp.path))
        ]
        for identity in doomed:
            del self._data[identity]
        if doomed:
            self._dirty = True
        return len(doomed)

    def forget(self, identity: str) -> None:
        if self._data.pop(identity, None) is not None:
            self._dirty = True

    def flush(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self._dirty or (
            not force and self._last_write is not None
            and now - self._last_write < self.min_interval
        ):
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        body = orjson.dumps(
            {"v": 1, "files": {k: vars(v) for k, v in self._data.items()}},
            option=orjson.OPT_INDENT_2,
        )
        with open(tmp, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self._dirty = False
        self._last_write = now

    def __len__(self) -> int:
        return len(self._data)
