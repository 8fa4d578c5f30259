"""The tailer on real files with an in-memory publisher: ids, checkpoints, rotation, limits."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import orjson
import pytest

from streams.sources.base import ListPublisher
from streams.sources.checkpoints import CheckpointStore
from streams.sources.files import FileTailer, default_node_globs, rotation_stem

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
    writer = open(f, "ab")  # noqa: SIM115 - kept open across the rename, as an app does
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


# -- node layout: globs, symlinks, rotated names -------------------------------------------

POD_DIR = "shop_web-1_6a1b2c3d-0000-4000-8000-000000000001"


def _node(tmp_path: Path) -> tuple[Path, Path, Path]:
    root = tmp_path / "log"
    d = root / "pods" / POD_DIR / "nginx"
    d.mkdir(parents=True)
    (root / "containers").mkdir()
    link = root / "containers" / f"web-1_shop_nginx-{CID}.log"
    return root, d, link


def test_rotation_stem_strips_rotation_suffixes():
    assert rotation_stem("0.log") == "0.log"
    assert rotation_stem("0.log.20261126-101500") == "0.log"
    assert rotation_stem("0.log.1") == "0.log"
    assert rotation_stem(f"web-1_shop_nginx-{CID}.log") == f"web-1_shop_nginx-{CID}.log"
    assert rotation_stem("app.log-20261126") == "app.log"
    assert rotation_stem("messages.3") == "messages"


def test_default_globs_cover_kubelet_rotated_and_copytruncate_names_not_compressed(tmp_path):
    import glob
    root, d, link = _node(tmp_path)
    for name in ("0.log", "0.log.20261126-101500", "0.log.20261126-091500.gz", "0.log.1",
                 "0.log.20261126-081500.tmp"):
        (d / name).write_bytes(docker(f"first line of {name}"))
    link.symlink_to(d / "0.log")
    matched = {p for g in default_node_globs(str(root)) for p in glob.glob(g)}
    assert str(d / "0.log.20261126-101500") in matched and str(d / "0.log.1") in matched
    pub = ListPublisher()
    t = tailer(default_node_globs(str(root)), pub, tmp_path / "cp.json")
    drain(t)
    msgs = sorted(r["message"] for r in pub.records)
    # each file once (0.log through the symlink and pods/ is one file); .gz and .tmp skipped
    assert msgs == sorted(f"first line of {n}" for n in ("0.log", "0.log.20261126-101500", "0.log.1"))
    cur = next(r for r in pub.records if r["message"] == "first line of 0.log")
    assert cur["container"]["id"] == CID and cur["source"]["path"] == str(link)
    # a rotated file found only under pods/ inherits the container id (same key, same stream)
    rot = next(r for r in pub.records if r["message"] == "first line of 0.log.1")
    assert rot["container"]["id"] == CID and rot["kubernetes"]["pod"]["name"] == "web-1"
    assert {k for k, _ in pub.batches} == {CID.encode()}


def test_kubelet_rename_rotation_while_agent_down_resumes_in_rotated_file(tmp_path):
    root, d, link = _node(tmp_path)
    (d / "0.log").write_bytes(b"".join(docker(f"a{i}") for i in range(3)))
    link.symlink_to(d / "0.log")
    pub1 = ListPublisher()
    t1 = tailer(default_node_globs(str(root)), pub1, tmp_path / "cp.json")
    drain(t1)
    t1.close()
    with open(d / "0.log", "ab") as fh:  # written while the agent is down, then rotated
        fh.write(docker("a3") + docker("a4"))
    os.rename(d / "0.log", d / "0.log.20261126-101500")
    (d / "0.log").write_bytes(docker("b0"))
    pub2 = ListPublisher()
    t2 = tailer(default_node_globs(str(root)), pub2, tmp_path / "cp.json")
    drain(t2)
    assert sorted(r["message"] for r in pub2.records) == ["a3", "a4", "b0"]
    # ids of the rotated file's lines are those a reader without checkpoint gives them
    pub3 = ListPublisher()
    drain(tailer(default_node_globs(str(root)), pub3, tmp_path / "fresh.json"))
    ids = {r["message"]: r["id"] for r in pub3.records}
    assert all(ids[r["message"]] == r["id"] for r in pub1.records + pub2.records)


def test_copytruncate_rewritten_past_our_offset_before_next_poll(logdir, tmp_path):
    f = logdir / "app.log"
    f.write_bytes(docker("old0"))
    pub = ListPublisher()
    t = tailer([logdir / "app.log*"], pub, tmp_path / "cp.json")
    drain(t)
    with open(f, "ab") as fh:
        fh.write(docker("old1"))
    shutil.copy(f, logdir / "app.log.1")
    # truncated and rewritten beyond the old offset before the tailer looks again
    f.write_bytes(b"".join(docker(f"new{i}") for i in range(20)))
    drain(t)
    msgs = sorted(r["message"] for r in pub.records)
    assert msgs == sorted(["old0", "old1"] + [f"new{i}" for i in range(20)])
    assert len({r["id"] for r in pub.records}) == 22



def test_copytruncate_between_opening_a_file_and_its_first_read(logdir, tmp_path):
    """The agent opens a file (its identity: the first line then), and before it reads it the
    file is copied, truncated and rewritten. The first read must not attribute the new content
    to the old identity: the old content is read from the copy, the new one as a new file.
    (test_collector_durability lost 500 to 5,879 lines this way with a slow agent.)"""
    f = logdir / "app.log"
    old = [f"old{i}" for i in range(50)]
    new = [f"new{i}" for i in range(80)]
    f.write_bytes(b"".join(docker(x) for x in old))
    pub = ListPublisher()
    t = tailer([logdir / "app.log*"], pub, tmp_path / "cp.json")
    t._discover()  # opened: identity of the old content, nothing read yet
    shutil.copy(f, logdir / "app.log.1")
    with open(f, "r+b") as fh:
        fh.truncate(0)
    with open(f, "ab") as fh:
        fh.write(b"".join(docker(x) for x in new))
    drain(t)
    msgs = [r["message"] for r in pub.records]
    assert sorted(msgs) == sorted(old + new), (set(old + new) - set(msgs), len(msgs))
    assert len(msgs) == len(set(msgs))

# -- backpressure and publish failures -----------------------------------------------------
class Flaky:
    """Fails ``fail`` times, then accepts; records every attempt."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.attempts: list[list[str]] = []
        self.ok = ListPublisher()

    async def publish(self, key, records):
        self.attempts.append([r["id"] for r in records])
        if self.fail > 0:
            self.fail -= 1
            raise ConnectionError("kafka down")
        await self.ok.publish(key, records)


async def _run_until(t: FileTailer, cond, timeout: float = 10.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(t.run(stop))
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    stop.set()
    await task



def test_run_retries_a_failed_batch_with_the_same_ids_without_advancing(logdir, tmp_path):
    (logdir / "app.log").write_bytes(b"".join(docker(f"l{i}") for i in range(200)))
    pub = Flaky(fail=4)
    t = tailer([logdir / "*.log"], pub, tmp_path / "cp.json", read_size=1024, multiline=None)
    t.retry_max_delay = 0.05
    seen_offsets = []

    async def main():
        async def watch():
            while len(pub.attempts) < 5:
                if t.files:
                    tf = next(iter(t.files.values()))
                    seen_offsets.append((tf.offset, (t.checkpoints.get(tf.identity) or 0)
                                         and t.checkpoints.get(tf.identity).offset))
                await asyncio.sleep(0.001)
        w = asyncio.create_task(watch())
        await _run_until(t, lambda: len(pub.ok.records) == 200)
        w.cancel()

    asyncio.run(main())
    assert [r["message"] for r in pub.ok.records] == [f"l{i}" for i in range(200)]
    assert pub.attempts[0] == pub.attempts[1] == pub.attempts[4]  # the same batch, same ids
    assert t.publish_failures == 4
    # while failing, reading paused after the first chunk and nothing was checkpointed
    assert all(off <= 1024 and cp == 0 for off, cp in seen_offsets)
    assert t.checkpoints.get(next(iter(t.files.values())).identity).offset == (logdir / "app.log").stat().st_size


def test_slow_publisher_pauses_reading_with_bounded_memory(logdir, tmp_path):
    (logdir / "app.log").write_bytes(b"".join(docker(f"l{i}") for i in range(2000)))
    gate = asyncio.Event
    state = {"in_flight": 0, "max_lines": 0}

    class Slow:
        def __init__(self):
            self.ok = ListPublisher()
            self.gate = None

        async def publish(self, key, records):
            state["max_lines"] = max(state["max_lines"], len(records))
            state["in_flight"] += 1
            await self.gate.wait()  # the broker does not acknowledge yet
            state["in_flight"] -= 1
            await self.ok.publish(key, records)

    pub = Slow()
    t = tailer([logdir / "*.log"], pub, tmp_path / "cp.json", read_size=4096, multiline=None)

    async def main():
        pub.gate = gate()
        stop = asyncio.Event()
        task = asyncio.create_task(t.run(stop))
        await asyncio.sleep(0.3)  # Kafka "slow": nothing acknowledged for a while
        tf = next(iter(t.files.values()))
        assert state["in_flight"] == 1 and tf.offset <= 4096  # one chunk read, then paused
        assert t.checkpoints.get(tf.identity) is None or t.checkpoints.get(tf.identity).offset == 0
        pub.gate.set()  # Kafka back: reading resumes by itself
        deadline = time.monotonic() + 10
        while len(pub.ok.records) < 2000 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(main())
    assert [r["message"] for r in pub.ok.records] == [f"l{i}" for i in range(2000)]
    assert state["max_lines"] <= 4096 // len(docker("l0")) + 1


def test_stop_while_kafka_down_keeps_the_checkpoint_and_restart_resends(logdir, tmp_path):
    (logdir / "app.log").write_bytes(b"".join(docker(f"l{i}") for i in range(50)))
    pub = Flaky(fail=10**9)
    t = tailer([logdir / "*.log"], pub, tmp_path / "cp.json", multiline=None)
    t.retry_max_delay = 0.05
    asyncio.run(_run_until(t, lambda: len(pub.attempts) >= 3))  # run() returns, no exception
    t.close()
    pub2 = ListPublisher()
    drain(tailer([logdir / "*.log"], pub2, tmp_path / "cp.json", multiline=None))
    assert [r["message"] for r in pub2.records] == [f"l{i}" for i in range(50)]
    assert [r["id"] for r in pub2.records] == pub.attempts[0]


# -- discovery and release -----------------------------------------------------------------
def _open_fds() -> set[str]:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return out


def test_new_file_is_picked_up_within_two_seconds_by_run(logdir, tmp_path):
    pub = ListPublisher()
    t = FileTailer([str(logdir / "*.log")], pub, CheckpointStore(tmp_path / "cp.json"),
                   host="node-1", multiline=None)  # default poll interval
    took = {}

    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(t.run(stop))
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        (logdir / f"new-pod_shop_app-{CID}.log").write_bytes(docker("hello"))
        while not pub.records and time.monotonic() - t0 < 5:
            await asyncio.sleep(0.01)
        took["s"] = time.monotonic() - t0
        stop.set()
        await task

    asyncio.run(main())
    t.close()
    assert [r["message"] for r in pub.records] == ["hello"]
    assert took["s"] < 2.0


def test_deleted_pod_files_are_drained_then_released(tmp_path):
    root, d, link = _node(tmp_path)
    f = d / "0.log"
    writer = open(f, "ab")  # noqa: SIM115 - the app's handle, closed mid-test
    writer.write(docker("l0"))
    writer.flush()
    link.symlink_to(f)
    pub = ListPublisher()
    t = tailer(default_node_globs(str(root)), pub, tmp_path / "cp.json", multiline=None)
    t.release_after = 0.2
    asyncio.run(t.poll_once())
    assert str(f) in _open_fds()
    # the pod is deleted: its last lines land, then kubelet removes the files
    writer.write(docker("l1") + docker("l2"))
    writer.close()
    shutil.rmtree(root / "pods" / POD_DIR)
    link.unlink()
    asyncio.run(t.poll_once())

    async def until_released():
        deadline = time.monotonic() + 5
        while t.files and time.monotonic() < deadline:
            await t.poll_once()
            await asyncio.sleep(0.05)
    asyncio.run(until_released())
    assert [r["message"] for r in pub.records] == ["l0", "l1", "l2"]
    assert not t.files
    assert not [p for p in _open_fds() if str(tmp_path) in p]


def test_rotated_file_keeps_the_container_id_while_the_symlink_dangles(tmp_path):
    """An agent (re)started between a rename rotation and the runtime creating the new file
    sees a dangling containers/ symlink: the rotated file it finds under pods/ still gets
    the container id from it."""
    root, d, link = _node(tmp_path)
    link.symlink_to(d / "0.log")  # 0.log was just renamed; the new one does not exist yet
    (d / "0.log.20261126-101500").write_bytes(docker("before the rotation"))
    pub = ListPublisher()
    drain(tailer(default_node_globs(str(root)), pub, tmp_path / "cp.json"))
    (rec,) = pub.records
    assert rec["message"] == "before the rotation"
    assert rec["container"]["id"] == CID and rec["kubernetes"]["pod"]["name"] == "web-1"
