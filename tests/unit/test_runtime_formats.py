"""Container runtime line decoding and partial-line reassembly."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.framing.multiline import MultilineMerger
from streams.framing.runtime import (
    FLAG_INCOMPLETE,
    TRUNCATION_MARKER,
    Decoded,
    PartialAssembler,
    cut_utf8,
    decode_cri,
    decode_docker,
    decode_line,
    detect,
)
from streams.transport.records import FLAG_INVALID_UTF8, FLAG_RUNTIME_PARSE_ERROR, FLAG_TRUNCATED

T = "2026-11-25T10:00:00.123456789Z"


def docker_line(log: str, stream: str = "stdout", time: str = T) -> bytes:
    return orjson.dumps({"log": log, "stream": stream, "time": time}) + b"\n"


def docker_chunks(line: str, stream: str = "stdout", size: int = 16 * 1024) -> list[bytes]:
    """A line as docker writes it: 16 KiB pieces, only the last ending with a newline."""
    pieces = [line[i : i + size] for i in range(0, len(line), size)]
    pieces[-1] += "\n"
    return [docker_line(p, stream) for p in pieces]


def cri_chunks(line: bytes, stream: str = "stdout", size: int = 16 * 1024) -> list[bytes]:
    pieces = [line[i : i + size] for i in range(0, len(line), size)] or [b""]
    return [
        f"{T} {stream} {'F' if i == len(pieces) - 1 else 'P'} ".encode() + p + b"\n"
        for i, p in enumerate(pieces)
    ]


def assemble(lines: list[bytes], asm: PartialAssembler | None = None, key: str = "f") -> list:
    asm = asm or PartialAssembler()
    out, offset = [], 0
    for raw in lines:
        line = asm.feed(key, decode_line(raw), offset)
        if line is not None:
            out.append(line)
        offset += len(raw)
    return out


# -- decoding ------------------------------------------------------------------------------


def test_docker_line() -> None:
    d = decode_docker(docker_line("hello world\n", "stderr"))
    assert (d.message, d.stream, d.time, d.partial, d.flags) == (
        "hello world",
        "stderr",
        T,
        False,
        [],
    )


def test_docker_chunk_without_newline_is_partial() -> None:
    assert decode_docker(docker_line("abc")).partial


def test_docker_truncated_json_is_raw_text_flagged() -> None:
    raw = b'{"log":"hello wor'
    d = decode_docker(raw)
    assert d.message == raw.decode()
    assert d.flags == [FLAG_RUNTIME_PARSE_ERROR]
    assert not d.partial


def test_docker_json_that_is_not_a_docker_line() -> None:
    assert decode_docker(b'{"msg": 1}').flags == [FLAG_RUNTIME_PARSE_ERROR]
    assert decode_docker(b"[1,2]").flags == [FLAG_RUNTIME_PARSE_ERROR]


def test_docker_invalid_utf8_inside_json() -> None:
    d = decode_docker(b'{"log":"caf\xe9\\n","stream":"stdout","time":"' + T.encode() + b'"}')
    assert d.message == "caf\ufffd"
    assert d.flags == [FLAG_INVALID_UTF8]
    assert d.stream == "stdout"


def test_docker_nul_bytes_kept() -> None:
    assert decode_docker(docker_line("a\x00b\n")).message == "a\x00b"


def test_cri_full_and_partial() -> None:
    d = decode_cri(f"{T} stderr F boom: x y\n".encode())
    assert (d.message, d.stream, d.time, d.partial) == ("boom: x y", "stderr", T, False)
    assert decode_cri(f"{T} stdout P part".encode()).partial


def test_cri_empty_message_and_tags() -> None:
    assert decode_cri(f"{T} stdout F\n".encode()).message == ""
    assert decode_cri(f"{T} stdout F ".encode()).message == ""
    assert decode_cri(f"{T} stdout P:x hi".encode()).partial


def test_cri_malformed_is_raw_text_flagged() -> None:
    for raw in (b"garbage", f"{T} stdlog F x".encode(), f"{T} stdout Z x".encode()):
        d = decode_cri(raw)
        assert d.message == raw.decode() and FLAG_RUNTIME_PARSE_ERROR in d.flags


def test_cri_invalid_utf8_and_nul() -> None:
    d = decode_cri(f"{T} stdout F ".encode() + b"\xff\x00ok")
    assert d.message == "\ufffd\x00ok"
    assert d.flags == [FLAG_INVALID_UTF8]


def test_detect() -> None:
    assert detect(docker_line("x\n")) == "docker"
    assert detect(f"{T} stdout F x".encode()) == "cri"
    assert detect(b"plain text line") == "plain"
    assert decode_line(b"plain\n").message == "plain"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.sampled_from([None, "docker", "cri", "plain"]))
def test_decoders_never_raise(data: bytes, fmt: str | None) -> None:
    d = decode_line(data, fmt)  # type: ignore[arg-type]
    assert isinstance(d, Decoded) and isinstance(d.message, str)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=20), st.integers(1, 64))
def test_assembler_never_raises_and_stays_bounded(lines: list[bytes], limit: int) -> None:
    asm = PartialAssembler(max_line_bytes=limit)
    for i, raw in enumerate(lines):
        line = asm.feed("k", decode_line(raw), i)
        assert line is None or isinstance(line.message, str)
        assert asm.buffered_bytes <= 2 * limit
    for line in asm.flush("k"):
        assert FLAG_INCOMPLETE in line.flags


# -- reassembly ----------------------------------------------------------------------------


def test_100k_line_in_cri_partials_comes_out_whole() -> None:
    text = ("0123456789abcdef" * 6400)[: 100 * 1024]
    lines = [
        f"{T} stdout F before\n".encode(),
        *cri_chunks(text.encode()),
        f"{T} stdout F after\n".encode(),
    ]
    out = assemble(lines)
    assert [line.message for line in out] == ["before", text, "after"]
    assert out[1].offset == len(lines[0])  # the offset of its first chunk
    assert out[1].flags == []


def test_100k_line_in_docker_chunks_comes_out_whole() -> None:
    text = ("xyz-" * 30000)[: 100 * 1024]
    chunks = docker_chunks(text)
    assert len(chunks) == 7
    out = assemble([docker_line("first\n"), *chunks])
    assert [line.message for line in out] == ["first", text]
    assert out[1].time == T


def test_multibyte_character_split_across_cri_partials() -> None:
    data = "é€😀".encode() * 100
    out = assemble(cri_chunks(data, size=7))
    assert out[0].message == "é€😀" * 100 and out[0].flags == []


def test_interleaved_stdout_and_stderr_partials() -> None:
    lines = [
        f"{T} stdout P out-1 ".encode(),
        f"{T} stderr P err-1 ".encode(),
        f"{T} stdout F out-2".encode(),
        f"{T} stderr F err-2".encode(),
    ]
    out = assemble(lines)
    assert [(line.stream, line.message, line.offset) for line in out] == [
        ("stdout", "out-1 out-2", 0),
        ("stderr", "err-1 err-2", len(lines[0])),
    ]


def test_same_ids_whatever_the_chunking() -> None:
    text = "q" * 40000
    a = assemble([docker_line("x\n"), *docker_chunks(text, size=16384)])
    b = assemble([docker_line("x\n"), *docker_chunks(text, size=1000)])
    assert (a[1].offset, a[1].message) == (b[1].offset, b[1].message)


def test_10_mib_line_is_cut_with_marker_and_bounded() -> None:
    asm = PartialAssembler(max_line_bytes=64 * 1024)
    chunk = b"z" * (16 * 1024)
    total = 10 * 1024 * 1024
    out = []
    for i in range(total // len(chunk)):
        last = i == total // len(chunk) - 1
        raw = f"{T} stdout {'F' if last else 'P'} ".encode() + chunk
        line = asm.feed("k", decode_cri(raw), i * len(raw))
        assert asm.buffered_bytes <= 64 * 1024
        if line is not None:
            out.append(line)
    out += assemble([f"{T} stdout F next".encode()], asm, "k")
    assert len(out) == 2
    cut, nxt = out
    assert cut.message == "z" * (64 * 1024) + TRUNCATION_MARKER
    assert FLAG_TRUNCATED in cut.flags
    assert cut.size == total and cut.offset == 0
    assert nxt.message == "next"


def test_whole_line_over_the_limit_is_cut_on_a_character_boundary() -> None:
    asm = PartialAssembler(max_line_bytes=10)
    line = asm.feed("k", decode_cri(f"{T} stdout F ".encode() + "aaaaaaaaaé€".encode()), 0)
    assert line is not None
    assert line.message == "aaaaaaaaa" + TRUNCATION_MARKER and FLAG_TRUNCATED in line.flags
    assert cut_utf8("aé".encode(), 2) == b"a"


def test_docker_chunks_over_the_limit() -> None:
    out = assemble(docker_chunks("w" * 50000, size=16384), PartialAssembler(max_line_bytes=20000))
    assert out[0].message == "w" * 20000 + TRUNCATION_MARKER and out[0].size == 50000


def test_unfinished_line_is_held_then_flushed_or_expired() -> None:
    asm = PartialAssembler()
    assert asm.feed("k", decode_cri(f"{T} stdout P tail".encode()), 5, now=1.0) is None
    assert asm.pending_offset("k") == 5
    assert asm.expire(now=2.0, timeout=5.0) == []
    [(key, line)] = asm.expire(now=6.0, timeout=5.0)
    assert (key, line.message, line.offset) == ("k", "tail", 5)
    assert FLAG_INCOMPLETE in line.flags
    assert asm.pending_offset("k") is None
    asm.feed("k", decode_docker(docker_line("no newline")), 9)
    [line] = asm.flush("k")
    assert line.message == "no newline"


def test_java_trace_split_across_partials_merges_into_one_event() -> None:
    trace = [
        'Exception in thread "main" java.lang.IllegalStateException: ' + "x" * 20000,
        "\tat com.example.Service.handle(Service.java:42)",
        "\tat com.example.Main.main(Main.java:7)",
        "Caused by: java.lang.NullPointerException: null",
        "\tat com.example.Repo.load(Repo.java:" + "9" * 30000 + ")",
        "\t... 2 more",
    ]
    raw = [f"{T} stdout F INFO starting\n".encode()]
    for line in trace:
        raw += cri_chunks(line.encode(), size=8192)
    raw.append(f"{T} stdout F INFO done\n".encode())
    merger = MultilineMerger()
    events = []
    for line in assemble(raw):
        events += merger.feed(("f", line.stream), line, now=0.0)
    events += [e for _, e in merger.poll(now=100.0)]
    assert [e.message for e in events] == ["INFO starting", "\n".join(trace), "INFO done"]
    assert events[1].offset == len(raw[0]) and events[1].lines == len(trace)
    assert events[1].rule == "java"


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["2026-11-25T10:00:0", "2026-02-29T23:59:5", "2024-02-29T00:00:0",
                        "2026-13-01T00:00:0", "2026-11-25T24:00:0", "0000-01-01T00:00:0"]),
       st.sampled_from("0159"),
       st.text(alphabet=st.sampled_from("0123456789.Zz+:-١ "), max_size=14))
def test_valid_time_fast_path_agrees_with_parsing(head: str, digit: str, tail: str) -> None:
    """Times of a second already found valid skip the datetime parsing: same answers."""
    from streams.framing.runtime import _valid_time, valid_time

    value = head + digit + tail
    expected = _valid_time(value) if 20 <= len(value) <= 40 else None
    assert valid_time(value) == expected
    assert valid_time(value) == expected  # the second time through the cache
