"""Clustering: the online miner that groups masked messages into templates (see the package
docstring for the algorithm)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

from streams.templates.identity import _WILDCARD_ID, WILDCARD, template_id
from streams.templates.masking import _TOKEN_CACHE_SIZE, _TokenCache, split_tokens

_SNAPSHOT_VERSION = 1


@dataclass(slots=True, frozen=True)
class TemplateMatch:
    """The template a message belongs to."""

    template: str
    template_id: str
    params: list[str]
    is_new: bool
    previous_id: str | None


def _generalize(a: str, b: str) -> str:
    """The common form of two differing tokens: ``key=<*>`` when they share ``key=``."""
    eq = a.find("=")
    if eq > 0 and a[: eq + 1] == b[: eq + 1]:
        return a[: eq + 1] + WILDCARD
    return WILDCARD


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
