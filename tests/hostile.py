"""A corpus of hostile inputs for the collector, the receivers and the parsers.

``corpus()`` is a list of ``(name, line)`` byte strings: binary, invalid UTF-8, NUL and control
characters, a 10 MiB line, JSON nested deep or with 100,000 keys, timestamps out of range,
runtime framing near misses (docker json-file, CRI), syslog/GELF/fluentd/journald payloads
that lie about themselves. ``all_patterns()`` finds every compiled regular expression the
parsers, runtime decoders, multiline rules, receivers and template miner use (by walking their
modules, so a new pattern is covered without editing this file) and ``adversarial(pattern)``
builds, from the pattern's own syntax tree, long near-miss inputs: the characters each repeat
accepts, repeated to the input size, with a character the pattern cannot accept at the end
(or in the middle), which is what makes a backtracking engine go quadratic or worse.
"""

from __future__ import annotations

import importlib
import json
import random
import re
from collections.abc import Iterator
from typing import Any

try:  # Python 3.11+
    from re import _constants as sre_c  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_constants as sre_c  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

MiB = 1024 * 1024
ADVERSARIAL_BYTES = 100 * 1024

# Modules whose module-level patterns are checked (plus the multiline rules' states).
PATTERN_MODULES = (
    "streams.parse",
    "streams.parse.layouts",
    "streams.parse.timestamps",
    "streams.parse.stacktrace",
    "streams.parse.structured",
    "streams.parse.dissect",
    "streams.parse.grok",
    "streams.parse.levels",
    "streams.framing.runtime",
    "streams.framing.multiline",
    "streams.sources.kubernetes",
    "streams.sources.files",
    "streams.sources.receivers.base",
    "streams.sources.receivers.framing",
    "streams.sources.receivers.syslog",
    "streams.sources.receivers.gelf",
    "streams.sources.receivers.fluentd",
    "streams.sources.receivers.journald",
    "streams.templates.masking",
    "streams.templates.miner",
    "streams.transport.records",
    "streams.steps.redact",
)


# ------------------------------------------------------------------------------ patterns


SEARCH_LIKE = ("search", "sub", "subn", "split", "finditer", "findall")


def uses(module: Any, name: str) -> tuple[str, ...]:
    """How the module's source calls pattern ``name``: the methods to check it with, as
    ``match``/``fullmatch`` (anchored: one start) or ``search`` (every start position). A
    pattern whose use is not found is checked both ways."""
    import inspect

    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return ("match", "search")
    # calls (``NAME.search(``) and bound methods kept for later (``MATCH = NAME.fullmatch``)
    found = set(re.findall(rf"\b{re.escape(name)}\.(\w+)\b", source))
    methods = {"search" if m in SEARCH_LIKE else m for m in found if m in (*SEARCH_LIKE, "match", "fullmatch")}
    return tuple(sorted(methods)) or ("match", "search")


def all_patterns() -> list[tuple[str, re.Pattern[Any]]]:
    """``(module.NAME, pattern)`` for every module-level compiled pattern in
    ``PATTERN_MODULES`` and every transition of the built-in multiline rules."""
    return [(name, pattern) for name, pattern, _m in patterns_with_uses()]


def patterns_with_uses() -> list[tuple[str, re.Pattern[Any], tuple[str, ...]]]:
    """``all_patterns`` with the methods each is used with (see ``uses``); the multiline
    rules' patterns are applied with ``search`` to every line."""
    out: list[tuple[str, re.Pattern[Any], tuple[str, ...]]] = []
    seen: set[tuple[Any, int]] = set()
    for mod_name in PATTERN_MODULES:
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            continue
        for name, value in sorted(vars(mod).items()):
            if isinstance(value, re.Pattern) and (value.pattern, value.flags) not in seen:
                seen.add((value.pattern, value.flags))
                out.append((f"{mod_name}.{name}", value, uses(mod, name)))
    from streams.framing import multiline

    for rule in multiline.BUILTIN_RULES:
        for state, transitions in rule.states.items():
            for i, (pattern, _nxt) in enumerate(transitions):
                if (pattern.pattern, pattern.flags) not in seen:
                    seen.add((pattern.pattern, pattern.flags))
                    out.append((f"multiline.{rule.name}.{state}[{i}]", pattern, ("search",)))
    return out


_CATEGORY_CHARS = {
    sre_c.CATEGORY_DIGIT: "7",
    sre_c.CATEGORY_NOT_DIGIT: "a",
    sre_c.CATEGORY_SPACE: " ",
    sre_c.CATEGORY_NOT_SPACE: "a",
    sre_c.CATEGORY_WORD: "a",
    sre_c.CATEGORY_NOT_WORD: " ",
}


def _class_char(items: list[tuple[Any, Any]]) -> str | None:
    """One character the character class ``[...]`` accepts (None if unsure)."""
    negate = any(op is sre_c.NEGATE for op, _ in items)
    if negate:
        banned: set[int] = set()
        for op, av in items:
            if op is sre_c.LITERAL:
                banned.add(av)
            elif op is sre_c.RANGE:
                banned.update(range(av[0], av[1] + 1))
            elif op is sre_c.CATEGORY:
                return None
        for c in "aZ7 .-_:/x":
            if ord(c) not in banned:
                return c
        return None
    for op, av in items:
        if op is sre_c.LITERAL:
            return chr(av)
        if op is sre_c.RANGE:
            return chr(av[0])
        if op is sre_c.CATEGORY:
            return _CATEGORY_CHARS.get(av)
    return None


_REPEATS = (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, getattr(sre_c, "POSSESSIVE_REPEAT", None))


def _gen(tree: Any, big: int, pick: int, target: int = -1, counter: list[int] | None = None) -> str:
    """A string the (sub)pattern accepts; ``pick`` chooses among alternatives. Repeats are
    numbered in order: the ``target``-th is expanded to ``big`` times (bounded by its maximum),
    the others to their minimum (at least once); ``target=-1`` expands every repeat."""
    counter = counter if counter is not None else [0]
    out: list[str] = []
    for op, av in tree:
        if op is sre_c.LITERAL:
            out.append(chr(av))
        elif op is sre_c.NOT_LITERAL:
            out.append("a" if av != ord("a") else "b")
        elif op is sre_c.ANY:
            out.append("a")
        elif op is sre_c.IN:
            out.append(_class_char(av) or "a")
        elif op is sre_c.CATEGORY:
            out.append(_CATEGORY_CHARS.get(av, "a"))
        elif op is sre_c.BRANCH:
            branches = av[1]
            out.append(_gen(branches[pick % len(branches)], big, pick, target, counter))
        elif op is sre_c.SUBPATTERN:
            out.append(_gen(av[-1], big, pick, target, counter))
        elif op in _REPEATS:
            lo, hi, sub = av
            index = counter[0]
            counter[0] += 1
            if target in (-1, index):
                n = max(lo, min(hi, big))
                inner_big = max(1, big // max(n, 1)) if target == -1 else 1
            else:
                n, inner_big = max(lo, min(hi, 1)), 1
            out.append(_gen(sub, inner_big, pick, target if target != index else -2, counter) * n)
        elif op is getattr(sre_c, "ATOMIC_GROUP", None):
            out.append(_gen(av, big, pick, target, counter))
        # AT, ASSERT, ASSERT_NOT, GROUPREF, GROUPREF_EXISTS: nothing to emit
    return "".join(out)


def _walk(tree: Any) -> Iterator[tuple[Any, Any]]:
    """Every (op, av) of a parsed pattern, depth first."""
    for op, av in tree:
        yield op, av
        if op is sre_c.BRANCH:
            for b in av[1]:
                yield from _walk(b)
        elif op is sre_c.SUBPATTERN:
            yield from _walk(av[-1])
        elif op in _REPEATS:
            yield from _walk(av[2])
        elif op in (sre_c.ASSERT, sre_c.ASSERT_NOT):
            yield from _walk(av[1])
        elif op is getattr(sre_c, "ATOMIC_GROUP", None):
            yield from _walk(av)


def _count_repeats(tree: Any) -> int:
    counter = [0]
    _gen(tree, 1, 0, -2, counter)
    return counter[0]


def _repeat_alphabets(tree: Any, acc: list[str]) -> None:
    """The strings each repeat accepts once (what a long run of would make it backtrack)."""
    for op, av in tree:
        if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, getattr(sre_c, "POSSESSIVE_REPEAT", None)):
            acc.append(_gen(av[2], 1, 0) or "a")
            _repeat_alphabets(av[2], acc)
        elif op is sre_c.SUBPATTERN:
            _repeat_alphabets(av[-1], acc)
        elif op is sre_c.BRANCH:
            for b in av[1]:
                _repeat_alphabets(b, acc)


def adversarial(pattern: re.Pattern[Any], size: int = ADVERSARIAL_BYTES) -> list[Any]:
    """Near-miss inputs of about ``size`` characters for ``pattern`` (bytes for a bytes
    pattern): long witnesses of the pattern with a wrong character at the end or the middle,
    and long runs of what each repeat accepts, alone and after the pattern's prefix."""
    tree = sre_parse.parse(pattern.pattern, pattern.flags)
    texts: list[str] = []
    branches = 1
    for op, av in tree:
        if op is sre_c.BRANCH:
            branches = max(branches, len(av[1]))
    targets = [-1, *range(min(_count_repeats(tree), 12))]
    for pick in range(min(branches, 6)):
        for target in targets:
            w = _gen(tree, size, pick, target)
            if not w:
                continue
            w = (w * (size // max(len(w), 1) + 1))[:size] if len(w) < size // 2 else w[:size]
            texts += [w[:-1] + "\x00", w + "\x00", w[: len(w) // 2] + "\x00" + w[len(w) // 2:]]
    alphabets: list[str] = []
    _repeat_alphabets(tree, alphabets)
    prefix = _gen(tree, 1, 0)[:64]
    for alpha in dict.fromkeys(alphabets):
        run = (alpha * (size // max(len(alpha), 1) + 1))[:size]
        texts += [run, run + "\x00", prefix + run + "\x00"]
        texts.append(("(" + alpha) * (size // (len(alpha) + 1)))  # nested-group style runs
    for c in " :(.-=[\"\\":  # separators the parsers care about
        texts.append(("a" + c) * (size // 2))
    # Runs of each literal the pattern names, after each prefix of a minimal witness that
    # ends on a literal (how ".*\\(.*\\)$" or "(?:x.){1,20}" are made to backtrack).
    literals = sorted({chr(av) for op, av in _walk(tree) if op is sre_c.LITERAL})
    minimal = _gen(tree, 1, 0, -2)
    cuts = [0] + [k + 1 for k, ch in enumerate(minimal[:64]) if ch in literals][:8]
    for k in dict.fromkeys(cuts):
        for c in literals:
            texts.append(minimal[:k] + c * (size - k))
            texts.append(minimal[:k] + (c + "a") * ((size - k) // 2) + "\x00")
            texts.append(minimal[:k] + (c + "a") * ((size - k) // 2) + "\n")
    texts = list(dict.fromkeys(texts))
    if isinstance(pattern.pattern, bytes):
        return [t.encode("utf-8", "surrogateescape") for t in texts]
    return texts


# -------------------------------------------------------------------------------- corpus


def deep_json(depth: int, kind: str = "list") -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def many_keys(n: int = 100_000) -> bytes:
    return json.dumps({f"k{i}": i for i in range(n)}, separators=(",", ":")).encode()


def docker(log: bytes | str, time: str = "2026-11-25T10:00:00.000000001Z", stream: str = "stdout") -> bytes:
    text = log.decode("utf-8", "surrogateescape") if isinstance(log, bytes) else log
    return json.dumps({"log": text, "stream": stream, "time": time}, ensure_ascii=True).encode()


def raw_docker(line: bytes, time: str = "2026-11-25T10:00:00.000000001Z") -> bytes:
    """A docker json-file line holding ``line``'s bytes as they are (invalid UTF-8 kept raw,
    as a broken writer would): only quotes, backslashes and control characters escaped."""
    out = bytearray()
    for b in line:
        if b in (0x22, 0x5C):
            out += b"\\" + bytes([b])
        elif b < 0x20:
            out += b"\\u%04x" % b
        else:
            out.append(b)
    return b'{"log":"' + bytes(out) + b'\\n","stream":"stdout","time":"' + time.encode() + b'"}'


def corpus(seed: int = 8, big: int = 10 * MiB) -> list[tuple[str, bytes]]:
    """Bad input lines (no trailing newline). ``big`` sizes the very long lines."""
    rnd = random.Random(seed)
    items: list[tuple[str, bytes]] = []

    def add(name: str, data: bytes) -> None:
        items.append((name, data))

    # binary and encodings
    add("all_bytes", bytes(range(256)).replace(b"\n", b""))
    for i in range(8):
        add(f"random_binary_{i}", bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 4096))).replace(b"\n", b"\r"))
    add("nul_only", b"\x00" * 4096)
    add("nul_in_text", b"ERROR db\x00 failed\x00\x00 at x")
    add("controls", bytes(range(1, 32)).replace(b"\n", b"") * 64)
    add("ansi_escapes", b"\x1b[31mERROR\x1b[0m \x1b]0;title\x07 \x1b[2J\x1b[?1049h boom")
    add("del_and_c1", b"\x7f\x80\x81\x9f text")
    add("bom", b"\xef\xbb\xbf{\"level\":\"info\",\"msg\":\"bom\"}")
    add("utf16le", "ERROR utf16 line".encode("utf-16-le"))
    add("lone_continuation", b"ERROR \x80\x80\x80 bad")
    add("overlong_slash", b"GET /\xc0\xaf\xc0\xafetc/passwd")
    add("surrogate_utf8", b"msg \xed\xa0\x80\xed\xb0\x80 surrogates")
    add("truncated_multibyte", b"caf\xc3")
    add("five_byte_seq", b"\xf8\x88\x80\x80\x80 old utf8")
    add("invalid_utf8_in_json", b'{"msg":"\xff\xfe bad","level":"error"}')
    add("escaped_lone_surrogate_json", b'{"msg":"\\ud800 lone","level":"warn"}')
    add("cr_only", b"line one\rline two\r")
    add("only_spaces", b" " * 100_000)
    add("empty", b"")
    add("rtl_and_zero_width", "\u202eevil\u200b\u200d\ufeff text".encode())
    add("emoji_flood", ("\U0001f4a5" * 50_000).encode())
    # size
    add("line_10MiB", b"A" * big)
    add("line_10MiB_words", (b"ERROR x=1 " * (big // 10)))
    add("json_string_10MiB", b'{"msg":"' + b"x" * big + b'"}')
    add("docker_10MiB", docker("y" * big))
    # JSON structure
    add("json_nested_list_100k", deep_json(100_000))
    add("json_nested_obj_10k", deep_json(10_000, "obj"))
    add("json_nested_unclosed", b"[" * 200_000)
    add("json_100k_keys", many_keys())
    add("json_dup_keys", b'{"level":"info",' + b'"a":1,' * 50_000 + b'"a":2}')
    add("json_huge_int", b'{"n":' + b"9" * 100_000 + b"}")
    add("json_huge_float", b'{"n":1e999999,"m":-1e999999}')
    add("json_nan", b'{"n":NaN,"i":Infinity,"level":"info"}')
    add("json_long_key", b'{"' + b"k" * 1_000_000 + b'":1}')
    add("json_weird_types", b'{"level":["error"],"msg":{"a":1},"time":true,"@timestamp":[]}')
    add("json_top_level_scalar", b"12345678901234567890")
    add("json_truncated", b'{"level":"error","msg":"cut')
    # timestamps out of range / nonsense
    for ts in ("0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "99999-01-01T00:00:00Z",
               "2026-13-45T25:61:61Z", "2026-02-30T10:00:00Z", "2026-11-25T10:00:00+99:99",
               "-2026-11-25T10:00:00Z", "1969-12-31T23:59:59Z", "2026-11-25T10:00:00.1234567890123Z"):
        add(f"ts_{ts}", f"{ts} ERROR out of range".encode())
        add(f"docker_time_{ts}", docker("x\n", time=ts))
        add(f"json_time_{ts}", json.dumps({"time": ts, "level": "info", "msg": "m"}).encode())
    for epoch in (0, -1, 10**19, 2**63, 2**64, 10**30, 1e308):
        add(f"json_epoch_{epoch}", json.dumps({"ts": epoch, "timestamp": epoch, "msg": "e"}).encode())
        add(f"text_epoch_{epoch}", f"{epoch} INFO epoch".encode())
    add("klog_bad_date", b"E9999 99:99:99.999999    1 x.go:1] bad")
    add("syslog_bad_date", b"Feb 31 25:61:61 host app[1]: bad")
    add("clf_bad_date", b'1.2.3.4 - - [99/Foo/0000:99:99:99 +9999] "GET / HTTP/1.1" 200 1')
    # runtime framing near misses
    add("docker_log_not_string", b'{"log":123,"stream":"stdout","time":"2026-11-25T10:00:00Z"}')
    add("docker_missing_fields", b'{"log":"x"}')
    add("docker_stream_weird", b'{"log":"x\\n","stream":"' + b"s" * 10_000 + b'","time":"z"}')
    add("docker_attrs_deep", b'{"log":"x\\n","stream":"stdout","time":"2026-11-25T10:00:00Z","attrs":' + deep_json(50_000) + b"}")
    add("cri_garbage", b"2026-11-25T10:00:00Z stdout X garbage")
    add("cri_no_message", b"2026-11-25T10:00:00.000000001Z stderr F")
    add("cri_partial_flood", b"2026-11-25T10:00:00Z stdout P " + b"p" * 1_000_000)
    add("cri_bad_time", b"9999-99-99Tnot-a-time stdout F msg")
    # parser near misses
    add("logfmt_equals_flood", b"a=" * 200_000)
    add("logfmt_unclosed_quote", b'level=error msg="' + b"q" * 100_000)
    add("logfmt_backslashes", b'msg="' + b"\\" * 100_001 + b'"')
    add("access_log_unclosed", b'1.2.3.4 - - [25/Nov/2026:10:00:00 +0000] "' + b"\\\"" * 50_000)
    add("bracket_flood", b"[" * 200_000)
    add("paren_flood", b"   at " + b"(" * 100_000 + b":1:")
    add("colon_flood", b"a:" * 200_000)
    add("dot_exception_flood", b"a." * 100_000 + b"Exceptio")
    add("stack_frames_flood", b"java.lang.Error: x\n" + b"\tat a.b(C.java:1)\n" * 10)
    add("percent_braces", b"%{" * 100_000)
    add("syslog_pri_overflow", b"<99999999999999999999>1 2026-11-25T10:00:00Z h a p m - x")
    add("syslog_sd_unclosed", b'<34>1 2026-11-25T10:00:00Z h a p m [id k="' + b"v" * 100_000)
    add("syslog_sd_flood", b"<34>1 2026-11-25T10:00:00Z h a p m " + b"[a]" * 50_000 + b" msg")
    add("gelf_bad_json", b'{"version":"1.1","host":' + b"[" * 10_000)
    add("format_string", b"%s%s%s%n%x {0} {__class__} ${jndi:ldap://x/a} {{7*7}}")
    add("sql_and_html", b"'; DROP TABLE logs;-- <script>alert(1)</script>")
    return items


def count_bad_inputs(patterns: list[tuple[str, re.Pattern[Any]]] | None = None) -> dict[str, int]:
    """How many bad inputs the suite tries (for the report)."""
    pats = patterns if patterns is not None else all_patterns()
    return {
        "corpus_lines": len(corpus(big=1024)),
        "patterns": len(pats),
        "adversarial_inputs": sum(len(adversarial(p, 1024)) for _, p in pats),
    }


def iter_adversarial(size: int = ADVERSARIAL_BYTES) -> Iterator[tuple[str, re.Pattern[Any], Any]]:
    for name, pattern in all_patterns():
        for text in adversarial(pattern, size):
            yield name, pattern, text
