"""Masking: one token of a log message to its generic form and the variables it holds.

No per-source masks: a piece of a token is a variable when it holds a digit, is a
boolean/null word, a month or weekday abbreviation, an absolute path or a URL; the value of
``key=value`` always is, the value of ``key:value`` when it looks variable.
"""

from __future__ import annotations

import re

from streams.templates.identity import WILDCARD

_TOKEN_CACHE_SIZE = 100_000
_CACHED_TOKEN_CHARS = 64
_OPEN = "([{<\"'"
_CLOSE = ")]}>\"',;:.!?"

# A token's masking: (masked form, its variables, the parameters it gives when the template
# has the masked form at its position).
_Masked = tuple[str, tuple[str, ...], tuple[str, ...]]


_PIECES = re.compile(r"([,;|])")
_SEPARATORS = frozenset(",;|")
_WORD_VALUES = frozenset(("true", "false", "null", "none", "nil"))
# Month and weekday abbreviations: parts of dates inside messages.
_DATE_WORDS = frozenset(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                         "Nov", "Dec", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))


def _is_variable(core: str) -> bool:
    """A generic variable: holds a digit, is a boolean/null word, a month or weekday
    abbreviation, an absolute path or a URL."""
    if not core:
        return False
    if core in _DATE_WORDS:
        return True
    for ch in core:
        if ch.isdigit():
            return True
    return ((core[0] == "/" and len(core) > 1) or "://" in core
            or (len(core) <= 5 and core.lower() in _WORD_VALUES))


def _is_key(key: str) -> bool:
    return bool(key) and key[-1] not in "\\\"'" and (key.replace("_", "a").replace("-", "a")
                                                   .replace(".", "a").replace(":", "a").isalnum())


def _mask_piece(token: str) -> tuple[str, list[str]]:
    start, end = 0, len(token)
    while start < end and token[start] in _OPEN:
        start += 1
    while end > start and token[end - 1] in _CLOSE:
        end -= 1
    core = token[start:end]
    if not core:
        return token, []
    eq = core.find("=")
    if 0 < eq < len(core) - 1 and _is_key(core[:eq]):
        value = core[eq + 1:]
        q = value[0] if value[0] in "\"'" else ""
        if q and len(value) > 1 and value.endswith(q):
            return f"{token[:start]}{core[:eq + 1]}{q}{WILDCARD}{q}{token[end:]}", [value[1:-1]]
        if q and token[end:].startswith(q):  # the closing quote went with the trailing punctuation
            return f"{token[:start]}{core[:eq + 1]}{q}{WILDCARD}{token[end:]}", [value[1:]]
        return f"{token[:start]}{core[:eq + 1]}{WILDCARD}{token[end:]}", [value]
    colon = core.find(":")
    if 0 < colon < len(core) - 1 and _is_variable(core[colon + 1:]) and _is_key(core[:colon]) \
            and not _is_variable(core[:colon]):
        return f"{token[:start]}{core[:colon + 1]}{WILDCARD}{token[end:]}", [core[colon + 1:]]
    if _is_variable(core):
        return f"{token[:start]}{WILDCARD}{token[end:]}", [core]
    return token, []


def mask_token(token: str) -> tuple[str, list[str]]:
    """(masked form, variable parts) of one token. The token is cut at ``,``, ``;`` and ``|``;
    in each piece the value of ``key=value`` is a variable, as is the value of ``key:value`` or
    the whole piece when it looks variable (see ``_is_variable``). Surrounding brackets, quotes
    and punctuation are kept."""
    if token.isdigit():  # the most common variable, and what the general path gives for it
        return WILDCARD, [token]
    if len(token) > 2 and ("," in token[:-1] or ";" in token[:-1] or "|" in token):
        pieces = _PIECES.split(token)
        if len(pieces) > 1:
            forms, variables = [], []
            for piece in pieces:
                if piece in _SEPARATORS or not piece:
                    forms.append(piece)
                    continue
                form, var = _mask_piece(piece)
                forms.append(form)
                variables.extend(var)
            if all(f == WILDCARD or f in _SEPARATORS or not f for f in forms):
                return WILDCARD, [token]
            return "".join(forms), variables
    return _mask_piece(token)


def split_tokens(text: str, max_tokens: int) -> list[str]:
    """Whitespace tokens, except that a ``key="quoted value"`` of up to 8 words stays one token."""
    words = text.split(None, max_tokens)
    if len(words) > max_tokens:
        del words[max_tokens:]
    if '"' not in text:
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


class _TokenCache(dict[str, _Masked]):
    """token -> its ``_Masked``; a missing one is computed (and usually kept)."""

    __slots__ = ()

    def __missing__(self, token: str) -> _Masked:
        form, variables = mask_token(token)
        # A wildcard token's parameter is the token itself (also for a literal "<*>", whose
        # variables are empty); other tokens contribute their variables. (Tuples of strings:
        # the garbage collector stops tracking them.)
        parts = tuple(variables)
        hit = (form, parts, (token,) if form == WILDCARD else parts)
        # Not kept: long tokens, and plain numbers (nearly all distinct, and masked at once;
        # keeping them only fills the cache and gives the garbage collector work).
        if len(token) <= _CACHED_TOKEN_CHARS and not token.isdigit():
            self[token] = hit
        return hit
