"""Masking: one log message to its generic tokens and the variables they hold.

Rules from general knowledge of log formats, the same for every input (no per-source masks):

- A message is split on whitespace; ``key="a quoted value"`` of up to 8 words stays one token.
- Each token is read as ``[openers] core [closers]``: brackets and quotes around it and
  punctuation glued to its end (``(``, ``[``, ``"``... ``)``, ``,``, ``.``, ``:``) are kept as
  they are. A literal ``<*>`` is a variable.
- A core that is a URL (``scheme://...``), a path (``/a/b``, ``./x``, ``~/x``, ``C:\\x``,
  ``a.b/c-d``), an e-mail address or a host name with a known top-level domain is one
  variable, whatever it holds.
- Otherwise the core is cut at ``= , ; | ( ) [ ] { } < > " ' @``: a piece followed by ``=`` or
  an opening bracket is a name and stays (``uid=``, ``jk2_init(``, ``Token{``); the value after
  ``=`` and every other piece is a variable when it holds a digit (numbers, hex ids, UUIDs,
  IPv4/IPv6, host:port, durations and sizes such as ``12ms``, ``1.5GiB``, ``95%``), is a
  month or weekday name (dates inside messages), true/false/null/none/nil, or one of the
  forms above. ``key:value`` keeps the key when the value is variable (``sessionid:<*>``).
- A comparison glued to a number and its unit (``<1 sec``, ``>= 5 ms``) is one variable.
- Adjacent variables separated only by whitespace are one variable (``at Sun Jul 24 02:38:23
  2005`` becomes ``at <*>``; a list of block ids of any length, ``<*>``): the token count of
  a message no longer depends on how many words a value has.

``mask_tokens`` returns the masked tokens and, per masked token, its variables (the
``template_params`` of the message when its template keeps that token).
"""

from __future__ import annotations

import re
from itertools import chain
from operator import itemgetter

from streams.templates.identity import WILDCARD

_TOKEN_CACHE_SIZE = 50_000
_ONCE_SIZE = 20_000
_CACHED_TOKEN_CHARS = 256

_OPENERS = frozenset("([{<\"'`")
_CLOSERS = frozenset(")]}>\"'`,;:.!?")
_TRAILING = ",;:.!?)]}"
_SPLIT = re.compile(r"([=,;|()\[\]{}<>\"'@])")
_BRACKET_OPEN = frozenset("([{<")
_LIST_SEPARATORS = frozenset(",;|")
_WORD_VALUES = frozenset(("true", "false", "null", "none", "nil", "nan", "undefined"))
# Month and weekday names: parts of dates inside messages.
_DATE_WORDS = frozenset(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "January", "February", "March", "April", "June", "July", "August", "September", "October", "November", "December", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    + ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"])
# Top-level domains that end host names in logs (generic ones, private-network suffixes and
# common country codes; left out: codes that are also common words or file extensions,
# such as in, is, it, to, me, my, no, so, sh, py, pl, rs, md, js, id, am, at, be, do).
_TLDS = frozenset(
    ["com", "net", "org", "edu", "gov", "mil", "int", "io", "co", "info", "biz", "dev", "app", "cloud", "ai", "local", "localdomain", "localhost", "internal", "intranet", "lan", "home", "corp", "arpa", "svc", "cluster", "online", "site", "tech", "xyz", "us", "uk", "de", "fr", "jp", "cn", "hk", "tw", "kr", "ru", "br", "au", "ca", "nl", "se", "ch", "es", "eu", "cz", "dk", "fi", "pt", "gr", "hu", "ie", "nz", "sg", "za", "ar", "mx", "cl", "tr", "ua", "il", "ro", "sk", "si", "lt", "lv", "ee", "bg", "hr", "rs", "vn", "th", "my", "tv", "cc", "ly", "ws"])
_HOST_LABELS = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\.?")
_EMAIL = re.compile(r"[\w.+-]+@(?:[\w-]++\.)++[A-Za-z]{2,24}")
# A comparison and a number, or a number, followed by a unit word as the next token.
_COMPARISON = re.compile(r"(?:[<>]=?|~|≈|≤|≥)\d[\d.,]*")
_UNITS = frozenset(
    ["ns", "us", "µs", "ms", "s", "sec", "secs", "second", "seconds", "m", "min", "mins", "minute", "minutes", "h", "hr", "hrs", "hour", "hours", "d", "day", "days", "b", "B", "byte", "bytes", "k", "K", "kb", "KB", "kB", "KiB", "m", "M", "mb", "MB", "MiB", "g", "G", "gb", "GB", "GiB", "t", "T", "tb", "TB", "TiB", "%"])


# Decisions of the masking, each checked leave-one-system-out (benchmarks/bench_templates.py
# switches them one at a time); the values here are the one configuration that ships.
RULES = {
    "merge_runs": True,     # adjacent variables are one (a date of 5 words, a list of ids)
    "host_port": False,     # 10.0.0.1:80 -> <*>:<*> (else one <*>)
    "name_prefix": False,   # core.3426 -> core.<*>, node-12 -> node-<*> (else <*>)
}
_HOSTPORT = re.compile(r"(/?(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]|"
                       r"(?:[A-Za-z0-9-]++\.)++[A-Za-z]{2,}|localhost)):(\d{1,5})")
_NAME_PREFIX = re.compile(r"([A-Za-z]{2,})([.-])([^\d]*\d.*)")
_HEX = re.compile(r"(?:0[xX])?(?:[0-9a-f]{8,}|[0-9A-F]{8,})")


_DIGIT_RE = re.compile(r"[0-9]")
_DIGIT = _DIGIT_RE.search


def has_digit(text: str) -> bool:
    return _DIGIT(text) is not None


def _is_host(core: str) -> bool:
    """A host name ending in a known top-level domain (``proxy.example.edu.hk``)."""
    dot = core.rfind(".", 0, len(core) - 1)
    if dot <= 0:
        return False
    if core[dot + 1:].rstrip(".").lower() not in _TLDS:
        return False
    return _HOST_LABELS.fullmatch(core) is not None


def _is_pathlike(core: str) -> bool:
    """URLs, absolute/relative/home/Windows paths, and ``a.b/c`` names joined by slashes
    where some part is more than a plain word (``com.example/.Main``, ``ns/pod-1``)."""
    if _is_path_start(core):
        return True
    if "/" in core and "\\" not in core:
        parts = core.split("/")
        return len(parts) <= 64 and all(parts) and any(not p.isalpha() for p in parts)
    return "\\" in core and core.count("\\") >= 2


def _is_variable_word(word: str) -> bool:
    """A word (letters only) that is a value: a month or weekday name, true/false/null...,
    or a hex number of 8 digits or more."""
    return word in _DATE_WORDS or (len(word) <= 9 and word.lower() in _WORD_VALUES) or (
        len(word) >= 8 and _HEX.fullmatch(word) is not None)


def is_variable(core: str) -> bool:
    """A value that varies between messages of one statement."""
    if not core:
        return False
    if has_digit(core):
        return True
    if _is_variable_word(core):
        return True
    if ("/" in core or "\\" in core) and _is_pathlike(core):
        return True
    if "." in core:
        return _is_host(core) or ("@" in core and _EMAIL.fullmatch(core) is not None)
    return False


def _is_name(piece: str) -> bool:
    """Looks like an identifier: the name of a key, function or class (``uid``, ``jk2_init``,
    ``a.b-c``, ``Foo$Bar``)."""
    if not piece or not (piece[0].isalpha() or piece[0] in "_$"):
        return False
    return piece.replace("_", "a").replace("-", "a").replace(".", "a").replace("$", "a") \
        .replace(":", "a").replace("#", "a").isalnum()


def _mask_value(piece: str) -> tuple[str, list[str]]:
    """One piece of a core that is not a name: a ``key:value`` keeps its key when the value
    is variable (``sessionid:<*>``); otherwise the whole piece is or is not a variable."""
    if piece.isalpha():  # the common cases first
        if _is_variable_word(piece):
            return WILDCARD, [piece]
        return piece, []
    if piece.isdigit():
        return WILDCARD, [piece]
    if RULES["host_port"] and ":" in piece:
        m = _HOSTPORT.fullmatch(piece)
        if m is not None:
            return f"{WILDCARD}:{WILDCARD}", [m.group(1), m.group(2)]
    if piece[0] == ":" and len(piece) > 1:  # ]:443 (after an IPv6 address)
        form, variables = _mask_value(piece[1:])
        return ":" + form, variables
    colon = piece.find(":")
    if 0 < colon < len(piece) - 1 and "://" not in piece:
        key, value = piece[:colon], piece[colon + 1:]
        if _is_name(key) and not has_digit(key) and not is_variable(key):  # (host:port is one)
            if is_variable(value):
                return f"{key}:{WILDCARD}", [value]
            return piece, []
    if is_variable(piece):
        if RULES["name_prefix"]:
            m = _NAME_PREFIX.fullmatch(piece)
            if m is not None and not is_variable(m.group(1)):
                return f"{m.group(1)}{m.group(2)}{WILDCARD}", [m.group(3)]
        return WILDCARD, [piece]
    return piece, []


def _is_path_start(core: str) -> bool:
    """A URL, or a path from the root, home, here or a drive: one value, whatever it holds."""
    if "://" in core:
        return True
    c0 = core[0]
    if c0 == "/" or c0 == "\\":
        return len(core) > 1 and core[1] not in "/\\ "
    if c0 in ".~" and len(core) > 2 and (core[1] == "/" or core[1:3] == "./"):
        return True
    return len(core) > 2 and core[1] == ":" and core[2] == "\\" and c0.isalpha()


_PIECE_MEMO_SIZE = 20_000
_concat = str.__add__
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)
_DELIMITERS = frozenset("=,;|()[]{}<>\"'@")


class PieceMemo(dict[str, tuple[str, tuple[str, ...]]]):
    """A piece of a token's core with the delimiter after it -> its masked form and
    variables. Pieces repeat across tokens (keys, words of structured values): one miner
    keeps one memo. Bounded (cleared when full)."""

    __slots__ = ()

    def __missing__(self, pair: str) -> tuple[str, tuple[str, ...]]:
        delim = pair[-1] if pair and pair[-1] in _DELIMITERS else ""
        piece = pair[:-1] if delim else pair
        if piece and _DIGIT(piece) is not None and delim not in "=@" and delim not in _BRACKET_OPEN \
                and ":" not in piece and _CORE_CHARS(piece) is not None:
            return (WILDCARD + delim, (piece,))  # a value as a whole (not kept: nearly all distinct)
        if not piece or delim == "=" or (delim in _BRACKET_OPEN and _is_name(piece)) or (
                delim == "@" and not has_digit(piece)):
            hit: tuple[str, tuple[str, ...]] = (pair, ())  # a name: key=, call(, Type{, Class@
        else:
            form, variables = _mask_value(piece)
            hit = (form + delim, tuple(variables))
        if len(self) >= _PIECE_MEMO_SIZE:
            self.clear()
        self[pair] = hit
        return hit


def _mask_core(core: str, memo: PieceMemo) -> tuple[str, list[str]]:
    if RULES["host_port"] and ":" in core:
        m = _HOSTPORT.fullmatch(core)
        if m is not None:
            return f"{WILDCARD}:{WILDCARD}", [m.group(1), m.group(2)]
    if _is_path_start(core) or ("@" in core and "." in core and _EMAIL.fullmatch(core) is not None):
        return WILDCARD, [core]
    pieces = _SPLIT.split(core)  # text, delimiter, text, ..., text
    if len(pieces) == 1:
        return _mask_value(core)
    pieces.append("")
    masked = list(map(memo.__getitem__, map(_concat, pieces[0::2], pieces[1::2])))
    form = "".join(map(_FIRST, masked))
    variables = list(chain.from_iterable(map(_SECOND, masked)))
    if variables and not form.replace(WILDCARD, "").strip(",;|"):
        return WILDCARD, [core]  # a list of values: one variable
    return form, variables


def mask_token(token: str, memo: PieceMemo | None = None) -> tuple[str, list[str]]:
    """(masked form, variable parts) of one whitespace-delimited token (see the module
    docstring for the rules). Brackets, quotes and punctuation around the core are kept.
    ``memo`` keeps the masking of the pieces of tokens across calls."""
    if token.isdigit() or token == WILDCARD or _COMPARISON.fullmatch(token) is not None:
        return WILDCARD, [token]  # (a comparison's form is COMPARISON in form_of)
    start, end = 0, len(token)
    while start < end and token[start] in _OPENERS:
        start += 1
    while end > start and token[end - 1] in _CLOSERS:
        end -= 1
    if start == end:
        return token, []
    core = token[start:end]
    form, variables = _mask_core(core, PieceMemo() if memo is None else memo)
    if form is core:
        return token, []
    return f"{token[:start]}{form}{token[end:]}", variables


# key=" and the next quote after whitespace: a quoted value of several words
_OPEN_QUOTED_VALUE = re.compile(r'="[^"\s]*+\s')


def split_tokens(text: str, max_tokens: int) -> list[str]:
    """Whitespace tokens, except that a ``key="quoted value"`` of up to 8 words stays one token."""
    words = text.split(None, max_tokens)
    if len(words) > max_tokens:
        del words[max_tokens:]
    if '"' not in text or _OPEN_QUOTED_VALUE.search(text) is None:
        return words
    out: list[str] = []
    i, n = 0, len(words)
    while i < n:
        w = words[i]
        if w.count('"') == 1 and '="' in w:
            end = next((j for j in range(i + 1, min(i + 8, n)) if '"' in words[j]), None)
            if end is not None and words[end].count('"') == 1:
                out.append(" ".join(words[i:end + 1]))
                i = end + 1
                continue
        out.append(w)
        i += 1
    return out


# Shortcuts for the common shapes of tokens, which need none of the rules above: brackets or
# quotes before, punctuation after, around either a word (letters only) or a value as a whole:
# a number, an id, an address or a time (word characters and slashes, with dots, colons,
# plus and minus signs between them). Possessive: linear time on any token.
_OPEN_RUN = r"([(\[{<\"'`]*+)"
_CLOSE_RUN = r"([)\]}>\"'`,;:.!?]*+)"
_SIMPLE_WORD = re.compile(_OPEN_RUN + r"([A-Za-z]++)" + _CLOSE_RUN)
_SIMPLE_VALUE = re.compile(_OPEN_RUN + r"((?:[\w/]|[.:+-]++(?=[\w/]))++)" + _CLOSE_RUN)
_VARIABLE_START = frozenset("0123456789/+-")
# The form of a comparison glued to a number (``<1``, ``>=5``): a variable that also takes a
# unit word after it (``<1 sec``). It never reaches a template: ``merge_runs`` makes it ``<*>``.
COMPARISON = WILDCARD + "\x00"
_CORE_CHARS_RE = re.compile(r"[\w.:+/-]+")
_CORE_CHARS = _CORE_CHARS_RE.fullmatch
# A token that is a value as a whole (``_simple_form`` with nothing around it), in one call: a
# digit somewhere, word characters with dots, colons (not after a letter first: key:value),
# plus, minus and slashes, ending in a word character or a slash.
_VALUE_TOKEN_RE = re.compile(r"(?=[^0-9]*+[0-9])(?:[0-9/+-][\w.:+/-]*+|[A-Za-z_][\w.+/-]*+)(?<=[\w/])")
_VALUE_TOKEN = _VALUE_TOKEN_RE.fullmatch
# A run of digits and the hex letters after them (numbers, hex ids): the shape of a token
# replaces each by 0; masking never looks inside one (see FormCache)
_NUMBER_RUNS_RE = re.compile(r"[0-9][0-9a-fA-F]*")
_NUMBER_RUNS = _NUMBER_RUNS_RE.sub
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_DIGITS = frozenset("0123456789")
_NUMERIC = "0123456789.:+-/"  # a token of these, between digits: a number, address or time


def form_of(token: str) -> str:
    """The masked form of one token (``mask_token``'s first half, with shortcuts for the
    common shapes)."""
    if _COMPARISON.fullmatch(token) is not None:
        return COMPARISON
    return _simple_form(token) or mask_token(token)[0]


def _simple_form(token: str) -> str | None:
    """The form of a token of a common shape (see ``_SIMPLE_WORD``), None for others."""
    m = _SIMPLE_WORD.fullmatch(token)
    if m is not None:
        if not _is_variable_word(m.group(2)):
            return token
    else:
        m = _SIMPLE_VALUE.fullmatch(token)
        if m is None:
            return None
        core = m.group(2)
        if _DIGIT(core) is None or not (core[0] in _VARIABLE_START or (
                (core[0].isalpha() or core[0] == "_") and ":" not in core)):
            return None
    if len(m.group(2)) == len(token):
        return WILDCARD
    return f"{m.group(1)}{WILDCARD}{m.group(3)}"


class FormCache(dict[str, str]):
    """token -> its masked form; a missing one is computed and kept (tokens up to
    ``_CACHED_TOKEN_CHARS`` long). Cleared when full: bounded."""

    __slots__ = ("memo", "once", "shapes")

    def __init__(self) -> None:
        super().__init__()
        self.memo = PieceMemo()
        self.shapes: dict[str | bytes, str] = {}
        self.once: dict[str, None] = {}  # values seen once (see __missing__)

    def __missing__(self, token: str) -> str:
        # form_of, with its most common answers first: a miss is most of a new message's cost
        if token.isalpha():
            form = WILDCARD if _is_variable_word(token) else token
        elif token.isdigit() or (token[0] in _DIGITS and token[-1] in _DIGITS and not token.strip(_NUMERIC)) \
                or _VALUE_TOKEN(token) is not None:
            # a number, an id, an address, a time: one variable as a whole. Nearly all are
            # distinct: kept from the second time on only (a date, a status code)
            once = self.once
            if token not in once:
                if len(once) >= _ONCE_SIZE:
                    once.clear()
                once[token] = None
                return WILDCARD
            form = WILDCARD
        else:
            form = self._other(token)
        if len(token) <= _CACHED_TOKEN_CHARS:
            if len(self) >= _TOKEN_CACHE_SIZE:
                self.clear()
            self[token] = form
        return form

    def _other(self, token: str) -> str:
        """Tokens that differ only in their numbers mask alike: the form of one serves the
        others, unless digits remain in it (a name such as jk2_init). Two shapes: each digit
        as 0 (cheap: bytes.translate), then each number (hex included) as 0. Else a
        comparison, a value or a word in brackets, quotes, punctuation, or the whole rules."""
        shapes = self.shapes
        digits = token.encode("utf-8", "surrogatepass").translate(_DIGITS_TO_ZERO)
        form = shapes.get(digits)
        if form is not None:
            return form
        if _COMPARISON.fullmatch(token) is not None:
            return COMPARISON
        shape = _NUMBER_RUNS("0", token)
        form = shapes.get(shape) if shape is not token else None
        if form is None:
            form = _simple_form(token) or mask_token(token, self.memo)[0]
        if shape is not token and _DIGIT(form) is None:
            if len(shapes) >= _TOKEN_CACHE_SIZE:
                shapes.clear()
            shapes[shape] = shapes[digits] = form
        return form


def variables_of(form: str, token: str) -> tuple[str, ...]:
    """The variables of a token given its form, which is the token with each variable
    replaced by ``<*>``: the text between the form's constant parts. (A variable never holds
    the constant text after it: that starts with a delimiter the masking cuts at.)"""
    if form == WILDCARD or form == COMPARISON:
        return (token,)
    parts = form.split(WILDCARD)
    if len(parts) == 1:
        return ()
    if len(parts) == 2:  # one variable: no search
        return (token[len(parts[0]): len(token) - len(parts[1])],)
    out = []
    pos = len(parts[0])
    for seg in parts[1:-1]:
        end = token.find(seg, pos) if seg else pos
        if end < 0:
            return tuple(mask_token(token)[1])
        out.append(token[pos:end])
        pos = end + len(seg)
    out.append(token[pos: len(token) - len(parts[-1])])
    return tuple(out)


def unit_suffix(form: str) -> str | None:
    """The punctuation after a unit word (``""`` for ``sec``, ``","`` for ``sec,``), None when
    ``form`` is no unit word."""
    if form in _UNITS:
        return ""
    core = form.rstrip(_TRAILING)
    return form[len(core):] if core != form and core in _UNITS else None


def _joins(left: str, right: str) -> bool:
    """Whether two adjacent masked tokens are one variable: a token ending with ``<*>``
    followed by a token starting with ``<*>``; a comparison followed by a unit word or a
    variable (``<1 sec``)."""
    if left == COMPARISON:
        return right.startswith(WILDCARD) or unit_suffix(right) is not None
    return left.endswith(WILDCARD) and right.startswith(WILDCARD)


Span = tuple[int, int]


def merge_runs(forms: list[str] | tuple[str, ...]) -> tuple[list[str], list[Span]]:
    """Adjacent variables separated by whitespace become one: the merged forms and, for each,
    the span of original tokens it covers. (A function of the forms alone.)"""
    n = len(forms)
    if COMPARISON not in forms and ("<*> <*>" not in " ".join(forms) or not RULES["merge_runs"]):
        return list(forms), [(i, i + 1) for i in range(n)]
    out: list[str] = []
    spans: list[Span] = []
    i = 0
    while i < n:
        j = i + 1
        form = WILDCARD if forms[i] == COMPARISON else forms[i]
        while j < n and _joins(forms[j - 1], forms[j]):
            right = forms[j]
            if right.startswith(WILDCARD):
                form += right[len(WILDCARD):]
            else:  # a unit word: its punctuation stays out of the variable
                form += unit_suffix(right) or ""
            j += 1
        out.append(form)
        spans.append((i, j))
        i = j
    return out, spans


def span_params(forms: list[str] | tuple[str, ...], raw: list[str], s: int, e: int) -> tuple[str, ...]:
    """Parameters of the merged token over original tokens ``s:e``: the first token's
    variables but its last, the text from that one to the first variable of the last token
    (or to the end of a unit word), then the last token's other variables."""
    first = variables_of(forms[s], raw[s])
    if e - s == 1:
        return first
    if not forms[e - 1].startswith(WILDCARD):  # a unit word closes the run
        text = " ".join([first[-1] if first else raw[s], *raw[s + 1:e]])
        cut = len(unit_suffix(forms[e - 1]) or "")
        return (*first[:-1], text[: len(text) - cut])
    last = variables_of(forms[e - 1], raw[e - 1])
    middle = raw[s + 1:e - 1]
    joined = " ".join([first[-1] if first else "", *middle, last[0] if last else ""])
    return (*first[:-1], joined, *last[1:])


def mask_tokens(raw: list[str], forms_cache: FormCache | None = None) -> tuple[list[str], list[tuple[str, ...]]]:
    """Masked forms (adjacent variables merged) and parameters of a message's tokens."""
    cache = forms_cache if forms_cache is not None else FormCache()
    forms = [cache[t] for t in raw]
    merged, spans = merge_runs(forms)
    return merged, [span_params(forms, raw, s, e) for s, e in spans]
