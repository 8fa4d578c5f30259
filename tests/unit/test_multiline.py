"""Multiline merge: built-in stack trace rules, user rules, limits and clock-driven flush."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.framing.multiline import (
    FLAG_MULTILINE_SPLIT,
    MultilineMerger,
    MultilineRule,
)
from streams.framing.runtime import Line

JAVA = """Exception in thread "main" java.lang.RuntimeException: outer
\tat com.example.App.run(App.java:21)
\tat com.example.App.main(App.java:9)
Caused by: java.lang.IllegalArgumentException: inner
\tat com.example.Parser.parse(Parser.java:88)
\t... 2 more
\tSuppressed: java.io.IOException: close failed
\t\tat com.example.Res.close(Res.java:5)"""

PYTHON = """Traceback (most recent call last):
  File "/app/main.py", line 10, in <module>
    main()
  File "/app/main.py", line 6, in main
    return d["missing"]
           ~^^^^^^^^^^^
KeyError: 'missing'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/main.py", line 12, in <module>
    raise RuntimeError("wrapped")
RuntimeError: wrapped"""

GO = """panic: runtime error: index out of range [5] with length 3

goroutine 1 [running]:
main.lookup(...)
\t/app/main.go:12
main.main()
\t/app/main.go:7 +0x1d
exit status 2"""

NODE = """TypeError: Cannot read properties of undefined (reading 'x')
    at handler (/app/server.js:14:22)
    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)"""

RUBY = """/app/lib/worker.rb:12:in `perform': undefined method `name' for nil (NoMethodError)
\tfrom /app/lib/runner.rb:40:in `block in run'
\tfrom /app/lib/runner.rb:38:in `each'"""


def run(text: str, merger: MultilineMerger | None = None, now: float = 0.0) -> list[Line]:
    merger = merger or MultilineMerger()
    out: list[Line] = []
    for i, msg in enumerate(text.split("\n")):
        out += merger.feed("k", Line(msg, i * 100, "stdout"), now)
    return out + [e for _, e in merger.poll(now + merger.flush_timeout)]


@pytest.mark.parametrize(
    ("trace", "rule", "tail"),
    [
        (JAVA, "java", None),
        (PYTHON, "python", None),
        (GO, "go", "exit status 2"),
        (NODE, "node", None),
        (RUBY, "ruby", None),
    ],
)
def test_builtin_trace_is_one_event(trace: str, rule: str, tail: str | None) -> None:
    text = f"INFO before\n{trace}\nINFO after"
    events = run(text)
    body = trace if tail is None else trace[: -len(tail) - 1]
    expected = ["INFO before", body] + ([tail] if tail else []) + ["INFO after"]
    assert [e.message for e in events] == expected
    assert events[1].rule == rule
    assert events[1].offset == 100  # the first line's
    assert events[1].lines == body.count("\n") + 1


def test_header_line_and_trace_of_java_logger() -> None:
    text = "2026-11-25 ERROR request failed\njava.lang.IllegalStateException: bad\n\tat a.B.c(B.java:1)"
    events = run(text)
    assert [e.message for e in events] == [
        "2026-11-25 ERROR request failed",
        "java.lang.IllegalStateException: bad\n\tat a.B.c(B.java:1)",
    ]


def test_plain_lines_pass_through_unmerged() -> None:
    events = run("a\nb\n\nc")
    assert [(e.message, e.lines, e.rule) for e in events] == [
        ("a", 1, None),
        ("b", 1, None),
        ("", 1, None),
        ("c", 1, None),
    ]


def test_user_rule_start_and_continuation() -> None:
    rule = MultilineRule.from_patterns("ts", r"^\d{4}-\d\d-\d\d ", r"^(?!\d{4}-\d\d-\d\d )")
    merger = MultilineMerger([rule])
    text = "2026-01-01 first\n  detail 1\n  detail 2\n2026-01-01 second\nmore"
    events = run(text, merger)
    assert [e.message for e in events] == [
        "2026-01-01 first\n  detail 1\n  detail 2",
        "2026-01-01 second\nmore",
    ]
    assert events[0].rule == "ts"


def test_user_state_machine_rule() -> None:
    rule = MultilineRule.define(
        "sql",
        [("start_state", r"^BEGIN$", "body"), ("body", r"^  ", "body"), ("body", r"^END$", "done")],
    )
    events = run("x\nBEGIN\n  a\n  b\nEND\n  stray", MultilineMerger([rule]))
    assert [e.message for e in events] == ["x", "BEGIN\n  a\n  b\nEND", "  stray"]


def test_rule_without_start_state_is_rejected() -> None:
    with pytest.raises(ValueError):
        MultilineRule.define("bad", [("body", "x", "body")])


def test_max_lines_splits_without_loss() -> None:
    merger = MultilineMerger(max_lines=3)
    text = "boom\n" + "\n".join(f"\tat a.B.m{i}(B.java:{i})" for i in range(7))
    events = run(text, merger)
    assert "\n".join(e.message for e in events) == text
    assert [e.lines for e in events] == [3, 3, 2]
    assert FLAG_MULTILINE_SPLIT in events[0].flags


def test_max_bytes_splits_without_loss() -> None:
    merger = MultilineMerger(max_bytes=60)
    text = "boom\n" + "\n".join(f"\tat a.B.m{i}(B.java:{i})" for i in range(6))
    events = run(text, merger)
    assert "\n".join(e.message for e in events) == text
    assert all(len(e.message.encode()) <= 60 for e in events)


def test_flush_timeout_is_driven_by_the_callers_clock() -> None:
    merger = MultilineMerger(flush_timeout=5.0)
    assert merger.feed("k", Line("boom", 0), now=10.0) == []
    assert merger.feed("k", Line("\tat a.B(B.java:1)", 5), now=11.0) == []
    assert merger.pending_offset("k") == 0
    assert merger.poll(now=15.9) == []
    [(key, event)] = merger.poll(now=16.0)
    assert key == "k" and event.message == "boom\n\tat a.B(B.java:1)"
    assert merger.pending_offset("k") is None


def test_keys_are_independent_and_flush() -> None:
    merger = MultilineMerger()
    merger.feed("a", Line("boom-a", 0), 0)
    merger.feed("b", Line("boom-b", 0), 0)
    merger.feed("a", Line("\tat x.Y(Y.java:1)", 1), 0)
    assert [e.message for e in merger.flush("a")] == ["boom-a\n\tat x.Y(Y.java:1)"]
    assert [(k, e.message) for k, e in merger.flush_all()] == [("b", "boom-b")]


def test_flags_are_united() -> None:
    merger = MultilineMerger()
    merger.feed("k", Line("boom", 0, flags=["invalid_utf8"]), 0)
    merger.feed("k", Line("\tat x.Y(Y.java:1)", 1, flags=["truncated"]), 0)
    [event] = merger.flush("k")
    assert event.flags == ["invalid_utf8", "truncated"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("ab \t:.()0Tat"), max_size=30), max_size=40))
def test_merge_never_loses_or_reorders_text(messages: list[str]) -> None:
    merger = MultilineMerger(max_lines=5)
    out: list[Line] = []
    for i, msg in enumerate(messages):
        out += merger.feed("k", Line(msg, i), 0)
    out += [e for _, e in merger.flush_all()]
    assert "\n".join(e.message for e in out) == "\n".join(messages)
    assert sum(e.lines for e in out) == len(messages)


@pytest.mark.parametrize("indent", ["", " ", "  ", "\t", "    ", "        ", "\t\t"])
def test_java_frames_at_any_indentation(indent: str) -> None:
    cause = f"{indent}Caused by: java.io.IOException: closed"
    lines = ["java.lang.IllegalStateException: boom", f"{indent}at com.example.A.run(A.java:10)",
             f"{indent}at com.example.A.main(A.java:5)", cause,
             f"{indent}at com.example.B.read(B.java:7)", f"{indent}... 2 more"]
    trace = "\n".join(lines)
    events = run(f"INFO before\n{trace}\nINFO after")
    assert [e.message for e in events] == ["INFO before", trace, "INFO after"]
    assert events[1].rule == "java"


def test_go_goroutine_dump_after_sigquit_is_one_event() -> None:
    lines = [
        "SIGQUIT: quit", "PC=0x46e5a1 m=0 sigcode=0", "",
        "goroutine 0 [idle]:", "runtime.futex(0x5a8f68, 0x80, 0x0)", "\t/usr/local/go/src/runtime/sys_linux_amd64.s:553 +0x21",
        "", "goroutine 1 [chan receive]:", "main.main()", "\t/app/main.go:12 +0x45",
        "created by main.init in goroutine 1", "\t/app/main.go:3 +0x1a",
        "", "rax    0xca", "rbx    0x0",
    ]
    dump = "\n".join(lines)
    events = run(f"starting\n{dump}\nafter")
    assert [e.message for e in events] == ["starting", dump, "after"]
    assert events[1].rule == "go"


def _one_by_one(merger: MultilineMerger) -> MultilineMerger:
    """The same merger testing each transition's regex alone (no joined regexes)."""
    merger._check_of = lambda candidates: None  # type: ignore[method-assign]
    merger._started.clear()
    merger._rare = None
    return merger


_TRACE_LINES = [*JAVA.splitlines(), *PYTHON.splitlines(), "", "plain line", "panic: boom",
                "goroutine 1 [running]:", "main.main()", "\tat x (y.js:1:2)",
                "  from app.rb:3:in `x'", "   ", "ERROR failed"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_TRACE_LINES), max_size=60))
def test_joined_regexes_merge_as_one_by_one(messages: list[str]) -> None:
    """The merger searches one joined regex for the transitions out of an open event
    (most lines continue none); it merges exactly as testing each regex alone."""
    fast, slow = MultilineMerger(), _one_by_one(MultilineMerger())
    got: list[list[tuple[str, int, str | None]]] = [[], []]
    for merger, out in ((fast, got[0]), (slow, got[1])):
        for i, msg in enumerate(messages):
            out += [(e.message, e.offset, e.rule) for e in merger.feed("k", Line(msg, i), 0)]
        out += [(e.message, e.offset, e.rule) for _, e in merger.flush_all()]
    assert got[0] == got[1]


def test_rules_with_group_references_are_not_joined() -> None:
    """A back-reference numbers groups per regex: such rules are tested one by one."""
    quoted = MultilineRule.define("quoted", [("start_state", r"^(['\"])", "open"),
                                             ("open", r"^(x)\1", "open"), ("open", r"^y", "open")])
    merger = MultilineMerger([quoted])
    out = [e for i, m in enumerate(["'a", "xx", "y", "xy"]) for e in merger.feed("k", Line(m, i), 0)]
    out += [e for _, e in merger.flush_all()]
    assert [e.message for e in out] == ["'a\nxx\ny", "xy"]
    assert merger._check_of([(quoted, "open")]) is None
