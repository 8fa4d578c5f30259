"""The tailer on real files with an in-memory publisher: ids, checkpoints, rotation, limits."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import orjson
import pytest

from streams.sources.base import ListPublisher
from streams.sources.checkpoints import CheckpointStore
from streams.sources.files import FileTailer

CID = "b" * 64


def docker(msg: str, stream: str = "stdout") -> bytes:
    return orjson.dumps({"log": msg + "\n", "stream": stream, "time": "2026-11-25T10:00:00.000000001Z"}) + b"\n"


def tailer(globs, pub, cp_path, **kw) -> FileTailer:
    return FileTailer([str(g) for g in globs], pub, CheckpointStore(cp_path, min_interval=0),
                      host="node-1", release_after=0.0, poll_interval=0.0, **kw)


def drain(t: FileTailer) -> None:
    asyncio.run(t.drain())


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    d = tmp_path / "containers"
    d.mkdir()
    return d


def test_docker_lines_become_records_with_metadata(logdir, tmp_path):
    f = logdir / f"web-1_shop_nginx-{CID}.log"
    f.write_bytes(b"".join(docker(f"line {i}") for i in range(5)) + docker("oops", "stderr"))
    pub = ListPublisher()
    t = tailer([logdir / "*.log"], pub, tmp_path / "cp.json")
    drain(t)
    recs = pub.records
    assert [r["message"] for r in recs] == [f"line {i}" for i in range(5)] + ["oops"]
    assert recs[-1]["stream"] == "stderr"
    assert recs[0]["kubernetes"]["namespace"] == "shop" and recs[0]["container"]["id"] == CID
    assert recs[0]["source"]["offset"] == 0 and recs[1]["source"]["offset"] == len(docker("line 0"))
    assert len({r["id"] for r in recs}) == 6
    assert {k for k, _ in pub.batches} == {CID.encode()}


def test_restart_resumes_from_checkpoint_with_same_ids(logdir, tmp_path):
    f = logdir / "app.log"
    f.write_bytes(b"".join(docker(f"a{i}") for i in range(3)))
    pub1 = ListPublisher()
    t1 = tailer([logdir / "*.log"], pub1, tmp_path / "cp.json")
    drain(t1)
    t1.close()
    with open(f, "ab") as fh:
        fh.write(docker("b0"))
    pub2 = ListPublisher()
    t2 = tailer([logdir / "*.log"], pub2, tmp_path / "cp.json")
    drain(t2)
    assert [r["message"] for r in pub2.records] == ["b0"]
    # a fresh tailer without checkpoint re-reads everything with identical ids
    pub3 = ListPublisher()
    drain(tailer([logdir / "*.log"], pub3, tmp_path / "other.json"))
    assert [r["id"] for r in pub3.records] == [r["id"] for r in pub1.records + pub2.records]


def test_publish_failure_does_not_advance_checkpoint(logdir, tmp_path):
    (logdir / "app.log").write_bytes(docker("x"))

    class Down:
        async def publish(self, key, records):
            raise ConnectionError("kafka down")

    t = tailer([logdir / "*.log"], Down(), tmp_path / "cp.json")
    with pytest.raises(ConnectionError):
        asyncio.run(t.drain())
    t.checkpoints.flush(force=True)
    pub = ListPublisher()
    drain(tailer([logdir / "*.log"], pub, tmp_path / "cp.json"))
    assert [r["message"] for r in pub.records] == ["x"]


def test_rotation_by_rename_loses_nothing(logdir, tmp_path):
    f = logdir / "app.log"
    writer = open(f, "ab")
    writer.write(b"".join(docker(f"old{i}") for i in range(3)))
    writer.flush()
    pub = ListPublisher()
    t = tailer([logdir / "*.log"], pub, tmp_path / "cp.json")
    drain(t)
    os.rename(f, logdir / "app.log.1")
    writer.write(docker("late write to the renamed file"))  # the app has not reopened yet
    writer.close()
    (logdir / "app.log").write_bytes(docker("new0") + docker("new1"))
    drain(t)
    msgs = [r["message"] for r in pub.records]
    assert sorted(msgs) == sorted(["old0", "old1", "old2", "late write to the renamed file", "new0", "new1"])
    assert len({r["id"] for r in pub.records}) == 6
    assert not t.files or all(tf.path.endswith("app.log") for tf in t.files.values())


def test_copytruncate_resumes_in_the_rotated_copy(logdir, tmp_path):
    f = logdir / "app.log"
    f.write_bytes(b"".join(docker(f"first{i}") for i in range(3)))
    pub = ListPublisher()
    t = tailer([logdir / "app.log*"], pub, tmp_path / "cp.json")
    drain(t)
    with open(f, "ab") as fh:  # written after our last read, before the rotation
        fh.write(docker("unread0") + docker("unread1"))
    shutil.copy(f, logdir / "app.log.1")
    with open(f, "r+b") as fh:
        fh.truncate(0)
    with open(f, "ab") as fh:
        fh.write(docker("after0"))
    drain(t)
    msgs = sorted(r["message"] for r in pub.records)
    assert msgs == sorted(["first0", "first1", "first2", "unread0", "unread1", "after0"])


def test_overlong_line_is_cut_with_marker_and_flag(logdir, tmp_path):
    f = logdir / "app.log"
    f.write_bytes(b"x" * 50_000 + b"\n" + b"short\n")
    pub = ListPublisher()
    drain(tailer([logdir / "*.log"], pub, tmp_path / "cp.json", fmt="plain", max_line_bytes=4096,
                 read_size=8192))
    recs = pub.records
    assert len(recs) == 2
    assert "truncated" in recs[0]["flags"] and recs[0]["message"].endswith("[truncated by logriver]")
    assert len(recs[0]["message"]) < 4200
    assert recs[1]["message"] == "short" and recs[1]["source"]["offset"] == 50_001


JAVA = [
    "2026-11-25 10:00:00.000 [main] ERROR c.e.Pay - charge failed",
    "java.lang.IllegalStateException: gateway timeout",
    "\tat com.example.Gateway.charge(Gateway.java:87)",
    "\tat com.example.Pay.pay(Pay.java:42)",
    "Caused by: java.io.IOException: reset",
    "\t... 2 more",
    "2026-11-25 10:00:01.000 [main] INFO c.e.Pay - next",
]


def test_stack_trace_lines_merge_into_one_event_with_the_first_offset(logdir, tmp_path):
    f = logdir / "app.log"
    f.write_bytes(b"".join(docker(m, "stderr") for m in JAVA))
    pub = ListPublisher()
    drain(tailer([logdir / "*.log"], pub, tmp_path / "cp.json"))
    msgs = [r["message"] for r in pub.records]
    assert msgs[0] == JAVA[0]
    assert msgs[1] == "\n".join(JAVA[1:6])
    assert msgs[2] == JAVA[6]
    assert pub.records[1]["source"]["offset"] == len(docker(JAVA[0], "stderr"))


def test_idle_multiline_events_are_emitted_by_the_timeout(logdir, tmp_path):
    (logdir / "app.log").write_bytes(docker("only line"))
    pub = ListPublisher()
    t = tailer([logdir / "*.log"], pub, tmp_path / "cp.json", multiline_timeout=3600)
    asyncio.run(t.poll_once())
    assert [r["message"] for r in pub.records] == []  # read, held as a possible trace head
    assert t.checkpoints.get(next(iter(t.files.values())).identity).offset == 0
    t.merger.flush_timeout = 0.0  # as if the timeout elapsed
    asyncio.run(t.poll_once())
    assert [r["message"] for r in pub.records] == ["only line"]
