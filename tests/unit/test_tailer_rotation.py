"""The node agent against every rotation it can meet (issue 17, item 3): dockerd's json-file
rotation (``<id>-json.log`` -> ``.1`` -> ``.2``) behind kubelet's symlinks, copytruncate copies
outside the globs, and compressed rotations (skipped, counted)."""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
from pathlib import Path

import orjson

from streams.sources.base import ListPublisher
from streams.sources.checkpoints import CheckpointStore
from streams.sources.files import FileTailer, default_docker_root, default_node_globs

CID = "d" * 64
POD_DIR = "shop_web-1_11111111-2222-3333-4444-555555555555"


def docker(msg: str, stream: str = "stdout") -> bytes:
    return orjson.dumps({"log": msg + "\n", "stream": stream,
                         "time": "2026-11-25T10:00:00.000000001Z"}) + b"\n"


def tailer(globs, pub, cp_path, **kw) -> FileTailer:
    return FileTailer([str(g) for g in globs], pub, CheckpointStore(cp_path, min_interval=0),
                      host="node-1", release_after=0.0, poll_interval=0.0, **kw)


def drain(t: FileTailer) -> None:
    asyncio.run(t.drain())


def poll(t: FileTailer, n: int = 1) -> None:
    async def go() -> None:
        for _ in range(n):
            await t.poll_once()

    asyncio.run(go())


def _dockerd_node(tmp_path: Path) -> tuple[Path, Path]:
    """kubelet's symlinks into dockerd's data root, as with dockershim / cri-dockerd:
    containers/<pod>_<ns>_<c>-<id>.log -> pods/<ns>_<pod>_<uid>/<c>/0.log ->
    /var/lib/docker/containers/<id>/<id>-json.log. Returns (log root, the docker file)."""
    root = tmp_path / "var" / "log"
    ddir = tmp_path / "var" / "lib" / "docker" / "containers" / CID
    ddir.mkdir(parents=True)
    f = ddir / f"{CID}-json.log"
    f.touch()
    pod = root / "pods" / POD_DIR / "nginx"
    pod.mkdir(parents=True)
    (pod / "0.log").symlink_to(f)
    (root / "containers").mkdir()
    (root / "containers" / f"web-1_shop_nginx-{CID}.log").symlink_to(pod / "0.log")
    return root, f


def _dockerd_rotate(f: Path) -> None:
    """dockerd's json-file rotation (max-file): .k-1 -> .k, the file -> .1, a new file."""
    k = 1
    while f.with_name(f"{f.name}.{k}").exists():
        k += 1
    for j in range(k, 1, -1):
        os.rename(f.with_name(f"{f.name}.{j - 1}"), f.with_name(f"{f.name}.{j}"))
    os.rename(f, f.with_name(f"{f.name}.1"))
    f.touch()


def test_docker_root_defaults_beside_the_log_root():
    assert default_docker_root("/var/log") == "/var/lib/docker"
    assert default_docker_root("/var/log/") == "/var/lib/docker"
    assert any(g.startswith("/var/lib/docker/containers/") for g in default_node_globs("/var/log"))
    assert all(not g.startswith("/var/lib/docker")
               for g in default_node_globs("/var/log", "/data/docker"))


def test_dockerd_rotation_while_agent_down_resumes_in_the_rotated_file(tmp_path):
    root, f = _dockerd_node(tmp_path)
    f.write_bytes(b"".join(docker(f"a{i}") for i in range(3)))
    pub1 = ListPublisher()
    t1 = tailer(default_node_globs(str(root)), pub1, tmp_path / "cp.json")
    drain(t1)
    t1.close()  # the agent is killed ...
    with open(f, "ab") as fh:  # ... lines are written, then dockerd rotates, twice
        fh.write(docker("a3") + docker("a4"))
    _dockerd_rotate(f)
    f.write_bytes(docker("b0") + docker("b1"))
    _dockerd_rotate(f)
    f.write_bytes(docker("c0"))
    pub2 = ListPublisher()
    t2 = tailer(default_node_globs(str(root)), pub2, tmp_path / "cp.json")
    drain(t2)
    assert sorted(r["message"] for r in pub2.records) == ["a3", "a4", "b0", "b1", "c0"]
    # every line keeps its container and Kubernetes metadata (from kubelet's symlink)
    assert {r["container"]["id"] for r in pub2.records} == {CID}
    assert {r["kubernetes"]["namespace"] for r in pub2.records} == {"shop"}
    # ids are those a reader without checkpoint gives the same lines
    pub3 = ListPublisher()
    drain(tailer(default_node_globs(str(root)), pub3, tmp_path / "fresh.json"))
    ids = {r["message"]: r["id"] for r in pub3.records}
    assert len(ids) == 8 and all(ids[r["message"]] == r["id"] for r in pub1.records + pub2.records)


def test_dockerd_rotations_while_running_read_every_line_once(tmp_path):
    root, f = _dockerd_node(tmp_path)
    pub = ListPublisher()
    t = tailer(default_node_globs(str(root)), pub, tmp_path / "cp.json")
    writer = open(f, "ab")  # noqa: SIM115 - dockerd's descriptor
    expected = []
    for r in range(5):
        lines = [f"r{r} l{i}" for i in range(4)]
        expected += lines
        writer.write(b"".join(docker(x) for x in lines[:2]))
        writer.flush()
        poll(t)
        writer.write(b"".join(docker(x) for x in lines[2:]))  # after our last read
        writer.close()
        _dockerd_rotate(f)
        writer = open(f, "ab")  # noqa: SIM115
        if r == 2:  # and once the agent restarts in between
            t.close()
            t = tailer(default_node_globs(str(root)), pub, tmp_path / "cp.json")
    writer.close()
    drain(t)
    msgs = [r["message"] for r in pub.records]
    assert sorted(msgs) == sorted(expected), set(expected) - set(msgs)
    assert len(msgs) == len(set(msgs))


def test_copytruncate_copy_outside_the_globs_is_read_from_the_checkpoint(tmp_path):
    """A sidecar tailing ``app.log`` only: logrotate copies it to ``app.log.1`` (not matched)
    and truncates it. The lines written after our last read and the stack trace held in the
    merger at that moment come from the copy, once."""
    d = tmp_path / "app"
    d.mkdir()
    f = d / "app.log"
    f.write_bytes(docker("first"))
    pub = ListPublisher()
    t = tailer([d / "app.log"], pub, tmp_path / "cp.json")
    poll(t)
    with open(f, "ab") as fh:  # a stack trace: held by the merger, waiting for more lines
        fh.write(docker("java.lang.IllegalStateException: boom")
                 + docker("\tat com.shop.Cart.add(Cart.java:42)"))
    poll(t)
    with open(f, "ab") as fh:  # written after our last read
        fh.write(docker("\tat com.shop.Api.post(Api.java:7)") + docker("unread"))
    shutil.copy(f, d / "app.log.1")
    with open(f, "r+b") as fh:
        fh.truncate(0)
    with open(f, "ab") as fh:
        fh.write(docker("after"))
    poll(t, 3)
    drain(t)
    msgs = [r["message"] for r in pub.records]
    trace = ("java.lang.IllegalStateException: boom\n\tat com.shop.Cart.add(Cart.java:42)\n"
             "\tat com.shop.Api.post(Api.java:7)")
    assert sorted(msgs) == sorted(["first", trace, "unread", "after"]), msgs
    assert not any(r.get("flags") for r in pub.records)
    assert t.copies_missing == 0


def test_copytruncate_without_a_readable_copy_publishes_what_was_held(tmp_path):
    """The copy is compressed at once (logrotate ``compress`` without ``delaycompress``): it
    cannot be read, so the stack trace held when the file was truncated is published, not
    dropped; the compressed copy is counted as skipped, the missing copy as an error."""
    d = tmp_path / "app"
    d.mkdir()
    f = d / "app.log"
    f.write_bytes(docker("first"))
    pub = ListPublisher()
    t = tailer([d / "app.log*"], pub, tmp_path / "cp.json")
    poll(t)
    with open(f, "ab") as fh:
        fh.write(docker("java.lang.IllegalStateException: boom")
                 + docker("\tat com.shop.Cart.add(Cart.java:42)"))
    poll(t)
    with gzip.open(d / "app.log.1.gz", "wb") as gz:
        gz.write(f.read_bytes())
    with open(f, "r+b") as fh:
        fh.truncate(0)
    with open(f, "ab") as fh:
        fh.write(docker("after"))
    poll(t, 3)
    drain(t)
    msgs = sorted(r["message"] for r in pub.records)
    trace = "java.lang.IllegalStateException: boom\n\tat com.shop.Cart.add(Cart.java:42)"
    assert msgs == sorted(["first", trace, "after"]), msgs
    assert t.copies_missing == 1
    assert t.skipped == {"compressed": 1}


def test_compressed_and_unfinished_rotations_are_skipped_and_counted_once(tmp_path):
    from prometheus_client import generate_latest

    from streams.ops.metrics import build_registry
    from streams.ops.stats import WorkerStats

    root = tmp_path / "var" / "log"
    pod = root / "pods" / POD_DIR / "nginx"
    pod.mkdir(parents=True)
    (root / "containers").mkdir()
    (pod / "0.log").write_bytes(docker("live"))
    (root / "containers" / f"web-1_shop_nginx-{CID}.log").symlink_to(pod / "0.log")
    (pod / "0.log.20261126-091500").write_bytes(docker("rotated"))
    for name in ("0.log.20261126-081500.gz", "0.log.20261126-071500.gz",
                 "0.log.20261126-101500.tmp"):
        (pod / name).write_bytes(b"\x1f\x8b compressed")
    _, dfile = _dockerd_node(tmp_path / "d")
    (dfile.parent / f"{CID}-json.log.3.gz").write_bytes(b"\x1f\x8b")
    pub = ListPublisher()
    t = tailer(default_node_globs(str(root)) + default_node_globs(str(tmp_path / "d/var/log")),
               pub, tmp_path / "cp.json")
    poll(t, 4)
    drain(t)
    assert sorted(r["message"] for r in pub.records) == ["live", "rotated"]
    assert t.skipped == {"compressed": 3, "being_written": 1}
    registry = build_registry(WorkerStats(pipeline="collector", role="collector"), [t],
                              process=False)
    text = generate_latest(registry).decode()
    assert 'logriver_files_skipped_total{pipeline="collector",reason="compressed",' \
           'role="collector"} 3.0' in text, [x for x in text.splitlines() if "skipped" in x]



def test_a_rotated_file_ending_without_newline_gives_its_last_line(tmp_path):
    """A plain-text file (a sidecar's app.log) rotated by rename while its writer's last line
    has no newline yet: the writer has moved to the new file, the old one is final, so the
    agent releasing it publishes that line (it is never read again: its checkpoint covers the
    whole file)."""
    d = tmp_path / "app"
    d.mkdir()
    f = d / "app.log"
    f.write_bytes(b"one\ntwo\nthe last line, cut by a crash")
    pub = ListPublisher()
    t = tailer([d / "app.log"], pub, tmp_path / "cp.json")
    poll(t)
    os.rename(f, d / "app.log.1")  # logrotate's create mode, outside the glob
    f.write_bytes(b"three\n")
    poll(t, 4)
    drain(t)  # (the new file's line is held for a continuation until then)
    msgs = [r["message"] for r in pub.records]
    assert msgs == ["one", "two", "the last line, cut by a crash", "three"], msgs
    t.close()
    pub2 = ListPublisher()  # a restart reads nothing twice
    poll(tailer([d / "app.log", d / "app.log.1"], pub2, tmp_path / "cp.json"), 3)
    assert pub2.records == []
