"""Online template mining: one generic configuration for every source.

How a message is mined:

1. Only its first ``max_message_chars`` characters (and ``max_tokens`` tokens) are read.
2. Tokens are split on whitespace (a ``key="quoted value"`` stays one token), then cut at
   ``,``/``;``/``|`` into pieces, and each piece is masked generically: the value of
   ``key=value``, the value of ``key:value`` when it looks variable, and any piece that holds a
   digit, is true/false/null/none/nil, a month or weekday abbreviation, an absolute path or a
   URL become ``<*>``. No per-source masks exist.
3. Exact repeats of the masked token sequence hit a dictionary (no search at all).
4. Otherwise candidates are the templates with the same token count and first two masked
   tokens (Drain's prefix tree, flattened into one dict). Similarity is the share of the
   message's non-wildcard tokens the template has at the same position; the best template
   at or above ``sim_threshold`` (0.75) absorbs the message, positions that differ become
   ``<*>`` (``key=<*>`` when they share ``key=``): the template generalizes, gets a new id and
   the old id is reported in ``previous_id``. Otherwise a new template starts.

Ids are the first 16 hex digits of BLAKE2b over the template text, so they are the same on
every worker and after a restart. The store is bounded: beyond ``max_templates`` the least
recently matched template is evicted (LRU); the exact-repeat cache is LRU-bounded too.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

WILDCARD = "<*>"
_SNAPSHOT_VERSION = 1
_TOKEN_CACHE_SIZE = 100_000
_CACHED_TOKEN_CHARS = 64
_OPEN = "([{<\"'"
_CLOSE = ")]}>\"',;:.!?"


@dataclass(slots=True, frozen=True)
class TemplateMatch:
    """The template a message belongs to."""

    template: str
    template_id: str
    params: list[str]
    is_new: bool
    previous_id: str | None


def template_id(template: str) -> str:
    """Deterministic id of a template text."""
    return hashlib.blake2b(template.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


_WILDCARD_ID = template_id(WILDCARD)
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


def _generalize(a: str, b: str) -> str:
    """The common form of two differing tokens: ``key=<*>`` when they share ``key=``."""
    eq = a.find("=")
    if eq > 0 and a[: eq + 1] == b[: eq + 1]:
        return a[: eq + 1] + WILDCARD
    return WILDCARD


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


_FORM = itemgetter(0)
_PARAMS = itemgetter(2)


class _Cluster:
    __slots__ = ("count", "id", "key", "template", "tokens", "wildcards")

    def __init__(self, tokens: list[str], key: tuple[Any, ...], count: int = 0) -> None:
        self.tokens = tokens
        self.key = key
        self.count = count
        self.template = " ".join(tokens)
        self.id = template_id(self.template)
        self.wildcards = tokens.count(WILDCARD)


class TemplateMiner:
    """Learns templates online; ``match`` returns the template of each message."""

    def __init__(self, *, max_templates: int = 10_000, max_message_chars: int = 4096,
                 max_tokens: int = 256, sim_threshold: float = 0.75, prefix_tokens: int = 2,
                 cache_size: int = 50_000) -> None:
        self.max_templates = max_templates
        self.max_message_chars = max_message_chars
        self.max_tokens = max_tokens
        self.sim_threshold = sim_threshold
        self.prefix_tokens = prefix_tokens
        self.cache_size = cache_size
        # LRU order: least recently matched first.
        self._clusters: OrderedDict[str, _Cluster] = OrderedDict()
        self._leaves: dict[tuple[Any, ...], list[_Cluster]] = {}
        self._exact: OrderedDict[tuple[str, ...], _Cluster] = OrderedDict()
        # Masking of single tokens repeats a lot (words, keys); cleared when full.
        self._token_cache = _TokenCache()

    # -- public API -------------------------------------------------------------------------

    def match(self, message: str) -> TemplateMatch:
        """Learn from ``message`` and return its template (never raises)."""
        return TemplateMatch(*self.match_fields(message))

    def match_fields(self, message: str) -> tuple[str, str, list[str], bool, str | None]:
        """``match`` as a plain tuple ``(template, template_id, params, is_new, previous_id)``,
        cheaper to build than a TemplateMatch (for the per-line hot path)."""
        try:
            return self._match_fields(message if isinstance(message, str) else str(message))
        except Exception:  # noqa: BLE001 - mining must never stop the stream
            return WILDCARD, _WILDCARD_ID, [], False, None

    def templates(self) -> list[tuple[str, str, int]]:
        """(id, template, count) of every template held, most recently matched last."""
        return [(c.id, c.template, c.count) for c in self._clusters.values()]

    def snapshot(self) -> dict[str, Any]:
        """JSON-serializable state (config and templates in LRU order)."""
        return {
            "version": _SNAPSHOT_VERSION,
            "config": {"max_templates": self.max_templates,
                       "max_message_chars": self.max_message_chars,
                       "max_tokens": self.max_tokens, "sim_threshold": self.sim_threshold,
                       "prefix_tokens": self.prefix_tokens, "cache_size": self.cache_size},
            "templates": [[c.tokens, c.count] for c in self._clusters.values()],
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> TemplateMiner:
        """A miner from ``snapshot()`` output."""
        if state.get("version") != _SNAPSHOT_VERSION:
            raise ValueError(f"unknown template snapshot version {state.get('version')!r}")
        miner = cls(**state["config"])
        for tokens, count in state["templates"]:
            tokens = [str(t) for t in tokens]
            cluster = _Cluster(tokens, miner._leaf_key(tokens), int(count))
            miner._add(cluster)
        return miner

    # -- internals --------------------------------------------------------------------------

    def _leaf_key(self, tokens: list[str]) -> tuple[Any, ...]:
        return (len(tokens), *tokens[: self.prefix_tokens])

    def _add(self, cluster: _Cluster) -> None:
        self._clusters[cluster.id] = cluster
        self._leaves.setdefault(cluster.key, []).append(cluster)
        while len(self._clusters) > self.max_templates:
            _, old = self._clusters.popitem(last=False)
            self._leaves[old.key].remove(old)
            if not self._leaves[old.key]:
                del self._leaves[old.key]

    def _match(self, message: str) -> TemplateMatch:
        """``match`` without its guard."""
        return TemplateMatch(*self._match_fields(message))

    def _match_fields(self, message: str) -> tuple[str, str, list[str], bool, str | None]:
        raw = split_tokens(message[: self.max_message_chars], self.max_tokens)
        cache = self._token_cache
        if len(cache) > _TOKEN_CACHE_SIZE:
            cache.clear()
        hits = list(map(cache.__getitem__, raw))  # (map: a loop in C, misses in __missing__)
        masked = list(map(_FORM, hits))
        key = tuple(masked)
        cluster = self._exact.get(key)
        if cluster is not None and self._clusters.get(cluster.id) is cluster:
            self._exact.move_to_end(key)
            previous = None
        else:
            cluster, previous = self._learn(masked, key)
        cluster.count += 1
        self._clusters.move_to_end(cluster.id)
        tokens = cluster.tokens
        if tokens == masked:  # the usual case: each token gives its precomputed parameters
            params = list(chain.from_iterable(map(_PARAMS, hits)))
        else:  # a wildcard of the template takes the whole token, others their variables
            params = []
            for t, r, h in zip(tokens, raw, hits):
                if t == WILDCARD:
                    params.append(r)
                elif h[1]:
                    params.extend(h[1])
        is_new = cluster.count == 1 or previous is not None
        return cluster.template, cluster.id, params, is_new, previous

    def _learn(self, masked: list[str], key: tuple[str, ...]) -> tuple[_Cluster, str | None]:
        """The cluster of a masked message not in the exact-repeat cache, and the id it had
        before absorbing the message when that generalized it."""
        cluster = self._best(masked)
        previous = None
        if cluster is None:
            cluster = self._clusters.get(template_id(" ".join(masked)))
        if cluster is None:
            cluster = _Cluster(masked, self._leaf_key(masked))
            self._add(cluster)
        else:
            merged = [a if a == b else _generalize(a, b) for a, b in zip(cluster.tokens, masked)]
            if merged != cluster.tokens:
                previous = cluster.id
                self._generalize(cluster, merged)
        self._exact[key] = cluster
        if len(self._exact) > self.cache_size:
            self._exact.popitem(last=False)
        return cluster, previous

    def _best(self, masked: list[str]) -> _Cluster | None:
        leaf = self._leaves.get(self._leaf_key(masked))
        if not leaf:
            return None
        best, best_sim, best_vars = None, -1.0, -1
        consts = [i for i, t in enumerate(masked) if t != WILDCARD]
        if not consts:
            return None
        for c in leaf:
            tokens = c.tokens
            same = sum(1 for i in consts if tokens[i] == masked[i])
            sim = same / len(consts)
            if sim > best_sim or (sim == best_sim and c.wildcards > best_vars):
                best, best_sim, best_vars = c, sim, c.wildcards
        return best if best is not None and best_sim >= self.sim_threshold else None

    def _generalize(self, cluster: _Cluster, tokens: list[str]) -> None:
        del self._clusters[cluster.id]
        cluster.tokens = tokens
        cluster.wildcards = tokens.count(WILDCARD)
        cluster.template = " ".join(tokens)
        cluster.id = template_id(cluster.template)
        existing = self._clusters.get(cluster.id)
        if existing is not None and existing is not cluster:
            # Two templates generalized into the same text: keep one, sum the counts.
            cluster.count += existing.count
            self._leaves[existing.key].remove(existing)
            del self._clusters[existing.id]
        self._clusters[cluster.id] = cluster
