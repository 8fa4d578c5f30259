"""Multiline merge per container stream: stack traces and user-declared multiline events.

Runs after partial-line reassembly (``runtime.PartialAssembler``). A rule is a small state
machine in the style of Fluent Bit's multiline parsers: transitions ``(state, regex,
next_state)`` from the state ``"start_state"``; a line matching a start transition opens an
event, each following line that matches a transition out of the current state joins it, the
first line that matches none closes it (and is considered afresh). Several rules run at once:
an open event keeps every rule still able to continue it, so e.g. a line followed by
``\\tat ...`` frames becomes a Java trace while one followed by ``from x.rb:3:in`` becomes a
Ruby one.

The merger does no I/O and reads no clock: callers pass ``now`` (seconds, any monotonic
origin) to ``feed`` and ``poll``, so flush timeouts are testable without sleeping.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from streams.framing.runtime import Line

START = "start_state"
# An event cut because it reached max_lines or max_bytes (its next line starts a new event).
FLAG_MULTILINE_SPLIT = "multiline_split"

DEFAULT_MAX_LINES = 500
DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_FLUSH_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class MultilineRule:
    """A named state machine: ``states[state] = [(compiled regex, next_state), ...]``."""

    name: str
    states: dict[str, list[tuple[re.Pattern[str], str]]]

    @classmethod
    def define(cls, name: str, transitions: Iterable[tuple[str, str, str]]) -> MultilineRule:
        """Build from ``(state, regex, next_state)`` triples, Fluent Bit style."""
        states: dict[str, list[tuple[re.Pattern[str], str]]] = {}
        for state, pattern, nxt in transitions:
            states.setdefault(state, []).append((re.compile(pattern), nxt))
        if START not in states:
            raise ValueError(f"multiline rule {name!r} has no {START!r} transition")
        for nxt in {n for trans in list(states.values()) for _, n in trans}:
            states.setdefault(nxt, [])  # a state without transitions ends the event
        return cls(name, states)

    @classmethod
    def from_patterns(cls, name: str, start: str, continuation: str) -> MultilineRule:
        """An event starts at a line matching ``start``; lines matching ``continuation`` join
        it (like Vector's ``start_pattern``/``condition_pattern`` with ``continue_through``)."""
        return cls.define(name, [(START, start, "cont"), ("cont", continuation, "cont")])


# Frames at any indentation (or none, as some formatters print them), "... N more",
# "Caused by:"/"Suppressed:" (nested traces), "--- End of inner exception stack trace ---".
_JAVA_FRAME = (
    r"^\s+at\s|^at [\w$.<>/-]+\(.*\)$|^\s*\.\.\. \d+ (more|common frames omitted)\s*$"
    r"|^\s*(Caused by|Suppressed): |^\s*--- End of inner exception stack trace ---$"
)
_PY_CHAIN = (
    r"^(During handling of the above exception, another exception occurred:"
    r"|The above exception was the direct cause of the following exception:)$"
)
_GO_GOROUTINE = r"^goroutine \d+ \[.*\]:$"
_GO_REGISTER = r"^[a-z0-9]{1,8} {1,8}0x[0-9a-f]{1,16}$"

JAVA = MultilineRule.define(
    "java",
    [(START, r"\S", "head"), ("head", _JAVA_FRAME, "frames"), ("frames", _JAVA_FRAME, "frames")],
)
# "[^(]*\(" takes the first "(" (any later one is absorbed by the ".*"): same language as
# ".*\(.*:\d+:\d+\)" without its quadratic backtracking on a line of many "(".
_NODE_FRAME = r"^\s+at ([^(]*\(.*:\d+:\d+\)|\S+:\d+:\d+|.*\(native\)|.*\(<anonymous>\))$"
NODE = MultilineRule.define(
    "node",
    [(START, r"\S", "head"), ("head", _NODE_FRAME, "frames"), ("frames", _NODE_FRAME, "frames")],
)
RUBY = MultilineRule.define(
    "ruby",
    [
        (START, r"\S", "head"),
        ("head", r"^\s+from \S.*:\d+:in ", "frames"),
        ("frames", r"^\s+from \S.*:\d+:in ", "frames"),
    ],
)
PYTHON = MultilineRule.define(
    "python",
    [
        (START, r"^Traceback \(most recent call last\):$", "frames"),
        ("frames", r"^\s+\S", "frames"),
        ("frames", r"^[A-Za-z_][\w.]*(: .*|:)?$", "error"),
        ("error", r"^$", "gap"),
        ("error", _PY_CHAIN, "gap"),
        ("gap", r"^$", "gap"),
        ("gap", _PY_CHAIN, "gap"),
        ("gap", r"^Traceback \(most recent call last\):$", "frames"),
    ],
)
GO = MultilineRule.define(
    "go",
    [
        (START, r"^(panic|fatal error): ", "panic"),
        (START, r"^SIG[A-Z]{2,8}: ", "panic"),  # a goroutine dump (SIGQUIT)
        (START, _GO_GOROUTINE, "frames"),
        ("panic", r"^$|^\s+\S|^\[signal |^\[recovered\]|^PC=", "panic"),
        ("panic", _GO_GOROUTINE, "frames"),
        (
            "frames",
            r"^\S[^(]*\(.*\)$|^\s+\S|^created by |^\.\.\.additional frames elided\.\.\.$",
            "frames",
        ),
        ("frames", r"^$", "gap"),
        ("gap", r"^$", "gap"),
        ("gap", _GO_GOROUTINE, "frames"),
        ("gap", _GO_REGISTER, "registers"),  # after a SIGQUIT dump's goroutines
        ("registers", _GO_REGISTER, "registers"),
    ],
)
BUILTIN_RULES: tuple[MultilineRule, ...] = (NODE, JAVA, PYTHON, GO, RUBY)


Candidates = list[tuple[MultilineRule, str]]  # (rule, state) pairs; shared, never mutated


@dataclass(slots=True)
class _Open:
    first: Line
    messages: list[str]
    candidates: Candidates
    size: int
    last: float
    flags: list[str] = field(default_factory=list)
    # one regex matching where any transition out of ``candidates`` matches (None: test them
    # one by one): most lines continue no event, and this says so with one search
    check: re.Pattern[str] | None = None


def _any_of(patterns: list[re.Pattern[str]]) -> re.Pattern[str] | None:
    """One regex that matches a text if and only if one of ``patterns`` does (``search``);
    None when they cannot be joined safely (group references, inline flags, mixed flags)."""
    distinct = list({_same(p): p for p in patterns}.values())
    if len(distinct) < 2 or len({p.flags for p in distinct}) != 1:
        return None
    if any(not isinstance(p.pattern, str) or _GROUP_REF.search(p.pattern) for p in distinct):
        return None
    try:
        return re.compile("|".join(f"(?:{p.pattern})" for p in distinct), distinct[0].flags)
    except re.error:  # e.g. inline global flags, a group name used twice
        return None


def _same(rx: re.Pattern[str]) -> tuple[object, ...]:
    """Regexes that match the same texts (same pattern, same flags)."""
    return type(rx.pattern), rx.pattern, rx.flags


_GROUP_REF = re.compile(r"\\[1-9]|\(\?P=|\(\?\(")


class MultilineMerger:
    """Merges lines into events per key (one key per container stream).

    An open event is held until a line that cannot continue it arrives, it reaches
    ``max_lines``/``max_bytes`` (then it is emitted with the ``multiline_split`` flag and the
    next line starts a new event: nothing is dropped), or ``flush_timeout`` seconds pass
    without a line (``poll``). Emitted events carry the first line's offset and time.
    """

    def __init__(
        self,
        rules: Iterable[MultilineRule] = BUILTIN_RULES,
        *,
        max_lines: int = DEFAULT_MAX_LINES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        flush_timeout: float = DEFAULT_FLUSH_TIMEOUT,
    ) -> None:
        self.rules = tuple(rules)
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.flush_timeout = flush_timeout
        self._open: dict[Hashable, _Open] = {}
        self.held = self._open.keys()  # live view: the keys holding an open event
        # The start transitions, each distinct regex searched once per line (the built-in
        # rules share ``\S``); what a set of matching regexes starts is computed once.
        starts = [(rx, r, n) for r in self.rules for rx, n in r.states[START]]
        distinct = list({_same(rx): rx for rx, _, _ in starts})
        self._start_tests = [(1 << i, starts[[_same(x) for x, _, _ in starts].index(k)][0])
                             for i, k in enumerate(distinct)]
        self._start_bits = [(1 << distinct.index(_same(rx)), r, n) for rx, r, n in starts]
        # the start regexes after the first, joined: most lines match none of them (the
        # built-ins: a traceback, a panic or a goroutine header), and one search says so
        self._rare = _any_of([rx for _, rx in self._start_tests[1:]])
        self._started: dict[int, tuple[Candidates, bool, re.Pattern[str] | None]] = {}
        self._checks: dict[tuple[tuple[int, str], ...], re.Pattern[str] | None] = {}

    def feed(self, key: Hashable, line: Line, now: float) -> list[Line]:
        """Add one whole line; returns the events it completes (0, 1 or 2)."""
        out: list[Line] = []
        message = line.message
        cur = self._open.get(key)
        if cur is not None:
            check = cur.check
            if check is not None and check.search(message) is None:
                nxt: Candidates = []
            else:
                nxt = self._advance(cur.candidates, message)
            if nxt:
                size = _utf8_len(message) + 1
                if len(cur.messages) < self.max_lines and cur.size + size <= self.max_bytes:
                    cur.messages.append(message)
                    cur.candidates = nxt
                    cur.check = self._check_of(nxt)
                    cur.size += size
                    cur.last = now
                    for f in line.flags:
                        if f not in cur.flags:
                            cur.flags.append(f)
                    if self._ended(cur.candidates):
                        out.append(self._emit(self._open.pop(key)))
                    return out
            del self._open[key]
            out.append(self._emit(cur, split=bool(nxt)))
        hits = 0
        tests = self._start_tests
        if self._rare is not None:
            if tests[0][1].search(message):
                hits = tests[0][0]
            tests = tests[1:] if self._rare.search(message) else []
        for bit, rx in tests:
            if rx.search(message):
                hits |= bit
        started = self._started.get(hits)
        if started is None:
            started = self._started[hits] = self._start(hits)
        starts, ended, check = started
        if ended:
            out.append(line)
        else:
            self._open[key] = _Open(
                line, [message], starts, _utf8_len(message), now, list(line.flags), check
            )
        return out

    def _start(self, hits: int) -> tuple[Candidates, bool, re.Pattern[str] | None]:
        """What a line matching the start regexes ``hits`` (bits) starts: the candidates,
        whether that is no event at all, the candidates' joined regex."""
        starts = [(r, n) for bit, r, n in self._start_bits if hits & bit]
        return starts, not starts or self._ended(starts), self._check_of(starts)

    def _check_of(self, candidates: Candidates) -> re.Pattern[str] | None:
        key = tuple((id(rule), state) for rule, state in candidates)
        if key not in self._checks:
            self._checks[key] = _any_of(
                [rx for rule, state in candidates for rx, _ in rule.states[state]])
        return self._checks[key]

    @staticmethod
    def _ended(candidates: list[tuple[MultilineRule, str]]) -> bool:
        """No candidate can take another line: the event is complete."""
        return all(not rule.states[state] for rule, state in candidates)

    @staticmethod
    def _advance(
        candidates: list[tuple[MultilineRule, str]], message: str
    ) -> list[tuple[MultilineRule, str]]:
        nxt: list[tuple[MultilineRule, str]] = []
        for rule, state in candidates:
            for rx, target in rule.states[state]:
                if rx.search(message):
                    nxt.append((rule, target))
                    break
        return nxt

    def _emit(self, cur: _Open, split: bool = False) -> Line:
        first = cur.first
        if len(cur.messages) == 1:
            first.flags = cur.flags
            if split:
                first.flags.append(FLAG_MULTILINE_SPLIT)
            return first
        flags = cur.flags + [FLAG_MULTILINE_SPLIT] if split else cur.flags
        rule = cur.candidates[0][0].name
        return Line(
            "\n".join(cur.messages),
            first.offset,
            first.stream,
            first.time,
            flags,
            cur.size,
            len(cur.messages),
            rule,
        )

    def poll(self, now: float) -> list[tuple[Hashable, Line]]:
        """Emit events idle for ``flush_timeout`` or more."""
        idle = [k for k, o in self._open.items() if now - o.last >= self.flush_timeout]
        return [(k, self._emit(self._open.pop(k))) for k in idle]

    def flush(self, key: Hashable) -> list[Line]:
        """Emit the open event of ``key`` now (e.g. its file was released)."""
        cur = self._open.pop(key, None)
        return [] if cur is None else [self._emit(cur)]

    def flush_all(self) -> list[tuple[Hashable, Line]]:
        out = [(k, self._emit(o)) for k, o in self._open.items()]
        self._open.clear()
        return out

    def pending_offset(self, key: Hashable) -> int | None:
        """Offset of the first line held for ``key``: checkpoint no further than this."""
        cur = self._open.get(key)
        return None if cur is None else cur.first.offset


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
