"""One framing and multiline path for the node agent and replay: framing detected per line,
partial metadata honoured, the pipeline's multiline rules applied by both, and a file read live
(appended in pieces, polled in between) merged exactly as its replay merges it."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import orjson

from streams.framing.multiline import MultilineRule
from streams.framing.runtime import decode_docker
from streams.pipeline import load_pipeline
from streams.replay.runner import LocalRun, replay_file
from streams.sources.base import ListPublisher
from streams.sources.checkpoints import CheckpointStore
from streams.sources.files import FileTailer

T = "2026-11-25T10:00:00.000000001Z"


def docker(log: str, stream: str = "stdout", **extra: object) -> bytes:
    return orjson.dumps({"log": log, "stream": stream, "time": T, **extra}) + b"\n"


def cri(msg: str, tag: str = "F", stream: str = "stdout") -> bytes:
    return f"{T} {stream} {tag} {msg}\n".encode()


def test_framing_is_detected_per_line_not_per_file(tmp_path: Path) -> None:
    # A file that changes framing (a runtime switched under a kept log path, a sidecar
    # glob over mixed files): every line decoded by its own framing.
    f = tmp_path / "mixed.log"
    f.write_bytes(cri("from cri") + docker("from docker\n") + b"plain line\n"
                  + cri("part one ", "P") + cri("part two"))
    pub = ListPublisher()
    t = FileTailer([str(f)], pub, CheckpointStore(tmp_path / "cp.json", min_interval=0),
                   host="h", poll_interval=0.0, release_after=0.0)
    asyncio.run(t.drain())
    assert [r["message"] for r in pub.records] == [
        "from cri", "from docker", "plain line", "part one part two"]
    assert all("flags" not in r for r in pub.records)


def test_docker_partial_metadata_decides_over_the_newline() -> None:
    first = decode_docker(docker("a" * 10, partial_message="true", partial_id="p1",
                                 partial_ordinal=1, partial_last="false"))
    last = decode_docker(docker("b" * 3, partial_message="true", partial_id="p1",
                                partial_ordinal=2, partial_last="true"))
    assert first.partial and not last.partial and last.message == "bbb"
    # the final piece of a split line, newline or not, ends it; a whole line without one too
    assert not decode_docker(docker("x\n", partial_message=True, partial_last=True)).partial
    assert not decode_docker(docker("whole", partial_message="false")).partial
    assert decode_docker(docker("no newline, no metadata")).partial  # json-file's own marking


def _trace_file(path: Path) -> list[bytes]:
    """Chunks of a container log, as a runtime writes them over time: CRI partials, a Java
    trace (frames indented two ways), a Python chained traceback, a Go panic, plain lines."""
    java = ["java.lang.IllegalStateException: boom", "  at a.B.c(B.java:1)",
            "        at a.B.d(B.java:2)", "Caused by: java.io.IOException: closed",
            "\tat a.C.e(C.java:3)", "\t... 2 more"]
    python = ["Traceback (most recent call last):", '  File "a.py", line 1, in <module>',
              "KeyError: 'x'", "", "During handling of the above exception, another exception occurred:",
              "", "Traceback (most recent call last):", '  File "a.py", line 3, in <module>',
              "RuntimeError: wrapped"]
    go = ["panic: runtime error: invalid memory address", "", "goroutine 1 [running]:",
          "main.main()", "\t/app/main.go:9 +0x1d"]
    chunks = [cri("INFO start"), cri("a long ", "P") + cri("line in ", "P"), cri("three parts")]
    chunks += [b"".join(cri(line) for line in java)]
    chunks += [cri(line) for line in python]
    chunks += [b"".join(cri(line) for line in go[:2]), b"".join(cri(line) for line in go[2:])]
    chunks += [cri("INFO done")]
    path.write_bytes(b"")
    return chunks


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def _live(path: Path, chunks: list[bytes], pipeline, tmp: Path) -> list[tuple[int, str]]:
    run = LocalRun(pipeline, windows=False)
    seen: list[tuple[int, str]] = []
    run.on_events.append(lambda evs, _dl: seen.extend((e["log"]["offset"], e["message"]) for e in evs))
    t = FileTailer([str(path)], run, CheckpointStore(tmp / "live-cp.json", min_interval=0),
                   host="h", poll_interval=0.0, release_after=0.0,
                   multiline=pipeline.multiline_rules())

    async def go() -> None:
        for chunk in chunks:  # written piece by piece, polled in between
            _append(path, chunk)
            await t.poll_once()
        await t.flush_pending()

    asyncio.run(go())
    t.close()
    return seen


def test_live_and_replay_merge_identically(tmp_path: Path) -> None:
    pipeline = load_pipeline("kubernetes")
    path = tmp_path / "pod.log"
    chunks = _trace_file(path)
    live = _live(path, chunks, pipeline, tmp_path)
    replayed: list[tuple[int, str]] = []
    replay_file(path, pipeline, on_events=lambda evs, _dl: replayed.extend(
        (e["log"]["offset"], e["message"]) for e in evs))
    assert live == replayed
    messages = [m for _, m in live]
    assert messages[0] == "start" and messages[1] == "a long line in three parts"
    assert messages[2].startswith("java.lang.IllegalStateException: boom\n  at a.B.c")
    assert messages[2].endswith("\t... 2 more")
    assert messages[3].startswith("Traceback") and messages[3].endswith("RuntimeError: wrapped")
    assert messages[4].startswith("panic: ") and messages[4].endswith("+0x1d")
    assert messages[-1] == "done" and len(messages) == 6


def test_replay_applies_the_pipelines_own_multiline_rules(tmp_path: Path) -> None:
    # A pipeline declaring its rule (lines starting with a date open an event): replay must
    # merge with it as the node agent would, not with the built-ins.
    rule = MultilineRule.from_patterns("dated", r"^\d{4}-\d\d-\d\d ", r"^(?!\d{4}-\d\d-\d\d )")
    pipeline = dataclasses.replace(load_pipeline("kubernetes"), multiline=[rule])
    path = tmp_path / "app.log"
    path.write_bytes(b"2026-11-25 10:00:00 ERROR failed\nreason: disk\nretry: no\n"
                     b"2026-11-25 10:00:01 INFO next\n")
    got: list[str] = []
    replay_file(path, pipeline, on_events=lambda evs, _dl: got.extend(e["message"] for e in evs))
    assert got == ["failed\nreason: disk\nretry: no", "next"]  # (level and time parsed off)


def test_replay_keeps_a_last_line_without_newline(tmp_path: Path) -> None:
    # A finished file need not end with a newline (a container killed mid-write, a file cut
    # by hand): replay emits its last line; a live agent keeps waiting for the newline.
    path = tmp_path / "pod.log"
    path.write_bytes(cri("first") + cri("partial ", "P") + cri("piece").rstrip(b"\n")
                     + b"\n" + b"plain last line without newline")
    got: list[str] = []
    replay_file(path, load_pipeline("kubernetes"),
                on_events=lambda evs, _dl: got.extend(e["message"] for e in evs))
    assert got == ["first", "partial piece", "plain last line without newline"]
    pub = ListPublisher()
    t = FileTailer([str(path)], pub, CheckpointStore(tmp_path / "cp.json", min_interval=0),
                   host="h", poll_interval=0.0, release_after=0.0)
    asyncio.run(t.drain())
    assert [r["message"] for r in pub.records] == ["first", "partial piece"]
