"""Clustering: the online miner that groups masked messages into templates (see the package
docstring for the algorithm)."""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Iterable
from itertools import islice
from operator import itemgetter
from typing import Any, NamedTuple

from streams.templates.identity import _WILDCARD_ID, WILDCARD, Aliases, template_id
from streams.templates.masking import (
    COMPARISON,
    FormCache,
    merge_runs,
    span_params,
    split_tokens,
    unit_suffix,
    variables_of,
)

_SNAPSHOT_VERSION = 2
_new_tuple = tuple.__new__

_EARLIER_TEXTS = 5  # earlier texts kept per template
_FALLBACK_SCAN = 2000  # templates of one token count scanned at most, when no first tokens match


class TemplateChange(NamedTuple):
    """A template's text generalized (``previous_template``) and/or another cluster was found
    to be the same template (``absorbed_id``, an alias of ``template_id`` from now on)."""

    template_id: str
    template: str
    previous_template: str | None
    absorbed_id: str | None = None

    def record(self, pipeline: str, time: str) -> dict[str, Any]:
        """The message on ``logs.templates``: type ``change`` (the text of ``template_id``
        generalized) or ``alias`` (``alias_id`` counts under ``template_id`` from now on)."""
        if self.absorbed_id is not None:
            return {"type": "alias", "alias_id": self.absorbed_id, "template_id": self.template_id,
                    "template": self.template, "time": time, "pipeline": pipeline}
        return {"type": "change", "template_id": self.template_id, "template": self.template,
                "previous_template": self.previous_template, "time": time, "pipeline": pipeline}


class TemplateMatch(NamedTuple):
    """The template a message belongs to."""

    template: str
    template_id: str
    params: list[str]
    is_new: bool
    change: TemplateChange | None = None


def _generalize(a: str, b: str) -> str:
    """The common form of two differing tokens: the common text around one ``<*>``
    (``key=<*>``, ``(uid=<*>)``) when there is some, else ``<*>``."""
    n = min(len(a), len(b))
    p = 0
    while p < n and a[p] == b[p]:
        p += 1
    s = 0
    while s < n - p and a[-1 - s] == b[-1 - s]:
        s += 1
    prefix, suffix = a[:p], a[len(a) - s:] if s else ""
    # cut inside a wildcard or a word: back to a delimiter
    while prefix and (prefix[-1].isalnum() or prefix.endswith(("<", "<*"))):
        prefix = prefix[:-1]
    while suffix and (suffix[0].isalnum() or suffix.startswith((">", "*>"))):
        suffix = suffix[1:]
    if not prefix and not suffix:
        return WILDCARD
    prefix = prefix.removesuffix(WILDCARD)
    suffix = suffix.removeprefix(WILDCARD)
    return f"{prefix}{WILDCARD}{suffix}"


def _soft_equal(a: str, b: str) -> bool:
    """Two tokens that differ only in a value: the value of the same ``key=``, or a value
    where the other token has none (``(<*>)`` and ``()``)."""
    eq = a.find("=")
    if eq > 0 and a[: eq + 1] == b[: eq + 1] and len(a) > eq + 1 and len(b) > eq + 1:
        return True
    return (WILDCARD in a or WILDCARD in b) and a.replace(WILDCARD, "") == b.replace(WILDCARD, "")


class _Cluster:
    __slots__ = ("count", "earlier", "id", "key", "key2", "seq", "template", "tokens", "version",
                 "wildcards")

    def __init__(self, tid: str, tokens: list[str], key: tuple[Any, ...], seq: int,
                 count: int = 0, earlier: list[str] | None = None,
                 key2: tuple[Any, ...] | None = None) -> None:
        self.id = tid
        self.tokens = tokens
        self.key = key
        self.key2 = key2 if key2 is not None else _second_key(tokens)
        self.seq = seq
        self.count = count
        self.template = " ".join(tokens)
        self.wildcards = tokens.count(WILDCARD)
        self.earlier = earlier or []
        self.version = 0  # +1 at each generalization; -1 once evicted or merged away


# How the parameters of a message come out of its tokens, decided once per masked form (an
# exact-cache entry: (cluster, the cluster's version, how, a, b)):
#   NONE: no parameters;  WHOLE: ``a`` picks the tokens that are variables as a whole
#   (``operator.itemgetter`` over the token list: a loop in C);  SLICED: ``a`` picks tokens
#   and runs of tokens, ``b`` holds the function per pick that makes it a parameter: as it
#   is, sliced (a token masked as ``(uid=<*>)`` is its text with one value replaced:
#   ``itemgetter(slice(5, -1))``) or joined by spaces, also in C; SLICED_JOINED: the same
#   with two functions per pick (joined, then sliced: ``[<*> <*>]``);  STEPS: ``a`` is
#   steps, one per template token holding variables: (0, i): the variables of token i;
#   (1, s, e): the text of tokens s:e; (2, s, e): the variables of tokens s:e merged into one;
#   (3, s, e, prefix, suffix): the text of tokens s:e within the template token's constant
#   prefix and suffix; (4, i, a, b): token i but its first a and last b characters.
NONE, WHOLE, SLICED, SLICED_JOINED, STEPS = 0, 1, 2, 4, 3
Entry = tuple["_Cluster", int, int, Any, Any]
Steps = tuple[tuple[Any, ...], ...]
_call = operator.call


class TemplateMiner:
    """Learns templates online; ``match`` returns the template of each message."""

    __slots__ = ("_by_second", "_by_text", "_clusters", "_exact", "_form", "_forms", "_journal",
                 "_leaves", "_seq", "_touch", "aliases", "cache_size", "failures",
                 "fallback_threshold", "journaling", "max_message_chars", "max_templates",
                 "max_tokens", "prefix_tokens", "sim_threshold")

    def __init__(self, *, max_templates: int = 10_000, max_message_chars: int = 4096,
                 max_tokens: int = 256, sim_threshold: float = 0.75, prefix_tokens: int = 1,
                 fallback_threshold: float = 0.9, cache_size: int = 50_000,
                 max_aliases: int = 100_000) -> None:
        self.max_templates = max_templates
        self.max_message_chars = max_message_chars
        self.max_tokens = max_tokens
        self.sim_threshold = sim_threshold
        self.prefix_tokens = prefix_tokens
        self.fallback_threshold = fallback_threshold
        self.cache_size = cache_size
        # LRU order: least recently matched first.
        self._clusters: OrderedDict[str, _Cluster] = OrderedDict()
        self._leaves: dict[tuple[Any, ...], list[_Cluster]] = {}
        # (token count, second constant token at birth) -> templates: where a message whose
        # first constant token is unknown (a variable the masking missed) finds its own
        self._by_second: dict[tuple[Any, ...], dict[str, _Cluster]] = {}
        self._by_text: dict[str, _Cluster] = {}
        # masked tokens (before merging) -> Entry; insertion order, trimmed when full
        self._exact: dict[tuple[str, ...], Entry] = {}
        self._seq = 0
        # births, new texts and merges since the journal was last taken: what the store
        # writes down before the events that show them are acknowledged (see take_journal);
        # kept only once someone takes it (journaling)
        self._journal: list[list[Any]] = []
        self.journaling = False
        self.failures = 0  # messages a bug kept from being mined (see match_fields)
        self.aliases = Aliases(max_aliases)
        # Masking of single tokens repeats a lot (words, keys); cleared when full.
        self._forms = FormCache()
        self._form = self._forms.__getitem__
        self._touch = self._clusters.move_to_end

    # -- public API -------------------------------------------------------------------------

    def match(self, message: str) -> TemplateMatch:
        """Learn from ``message`` and return its template (never raises)."""
        return _new_tuple(TemplateMatch, self.match_fields(message))

    def match_fields(self, message: str) -> tuple[str, str, list[str], bool, TemplateChange | None]:
        """``match`` as a plain tuple ``(template, template_id, params, is_new, change)``,
        cheaper to build than a TemplateMatch (the per-line hot path). Never raises: a bug
        gives the catch-all template and counts in ``failures``."""
        try:
            if message.__class__ is not str:
                message = str(message)
            if len(message) > self.max_message_chars:
                message = message[: self.max_message_chars]
            raw = message.split()
            if len(raw) > self.max_tokens or ('"' in message and '="' in message):
                raw = split_tokens(message, self.max_tokens)
            key = tuple(map(self._form, raw))  # (map: a loop in C; misses in FormCache)
            entry = self._exact.get(key)
            change = None
            if entry is None or entry[1] != entry[0].version:
                entry, change = self._learn(key, raw)
            cluster, _, how, a, b = entry
            cluster.count += 1
            self._touch(cluster.id)
            if how == WHOLE:  # the usual cases: the variables are tokens or slices of tokens
                params = list(a(raw))
            elif how == SLICED:
                params = list(map(_call, b, a(raw)))
            elif how == SLICED_JOINED:
                params = list(map(_call, b[1], map(_call, b[0], a(raw))))
            elif how == NONE:
                params = []
            else:
                params = self._run(a, raw, key)
            return cluster.template, cluster.id, params, cluster.count == 1 or change is not None, change
        except Exception:  # noqa: BLE001 - mining must never stop the stream
            self.failures += 1
            return WILDCARD, _WILDCARD_ID, [], False, None

    def templates(self) -> list[tuple[str, str, int]]:
        """(id, template, count) of every template held, most recently matched last."""
        return [(c.id, c.template, c.count) for c in self._clusters.values()]

    def earlier_texts(self, tid: str) -> list[str]:
        """Earlier texts of a template held (oldest first, at most a few)."""
        c = self._clusters.get(tid)
        return list(c.earlier) if c is not None else []

    def resolve(self, tid: str) -> str:
        """The id that ``tid`` counts under now (itself unless it was merged into another)."""
        return self.aliases.resolve(tid)

    def take_journal(self) -> list[list[Any]]:
        """The structural changes since the last call: ``["born", id, tokens, seq]``,
        ``["text", id, tokens]``, ``["alias", absorbed id, surviving id]``, ``["rename", old
        id, new id]``. Written down
        (with ``apply_journal`` to replay them on a ``restore``d snapshot), they make every
        id given out durable between two snapshots."""
        self.journaling = True
        taken, self._journal = self._journal, []
        return taken

    def apply_journal(self, entries: Iterable[list[Any]]) -> None:
        """Replay ``take_journal`` output (after ``restore`` of an older snapshot)."""
        for entry in entries:
            kind = entry[0]
            if kind == "born" and entry[1] not in self._clusters:
                tokens = [str(t) for t in entry[2]]
                self._seq = max(self._seq, int(entry[3]))
                # (born with its first event: the next one is not new any more)
                self._add(_Cluster(str(entry[1]), tokens, self._leaf_key(tokens), int(entry[3]), 1))
            elif kind == "text" and entry[1] in self._clusters:
                cluster = self._clusters[entry[1]]
                self._retext(cluster, [str(t) for t in entry[2]])
                other = self._by_text.setdefault(cluster.template, cluster)
                if other is not cluster:
                    self._merge(other, cluster)
            elif kind == "alias":
                absorbed, survivor = self._clusters.get(entry[1]), self._clusters.get(entry[2])
                if absorbed is not None and survivor is not None:
                    self._merge(survivor, absorbed)
                self.aliases.add(str(entry[1]), str(entry[2]))
            elif kind == "rename":
                cluster = self._clusters.get(entry[1])
                if cluster is not None and entry[2] not in self._clusters:
                    self._relabel(cluster, str(entry[2]))
                else:
                    self.aliases.add(str(entry[1]), str(entry[2]))
        self._journal.clear()

    def rename(self, old: str, new: str) -> TemplateChange | None:
        """The template ``old`` is the same as ``new`` (known elsewhere, e.g. another
        partition's miner, with the same text): it answers to ``new`` from now on and ``old``
        becomes an alias. None when there is nothing to rename."""
        cluster = self._clusters.get(old)
        if cluster is None or old == new or new in self._clusters:
            return None
        self._relabel(cluster, new)
        if self.journaling:
            self._journal.append(["rename", old, new])
        return TemplateChange(new, cluster.template, None, old)

    def _relabel(self, cluster: _Cluster, new: str) -> None:
        old = cluster.id
        del self._clusters[old]
        second = self._by_second[cluster.key2]
        del second[old]
        cluster.id = new
        self._clusters[new] = cluster
        second[new] = cluster
        self.aliases.add(old, new)

    def snapshot(self) -> dict[str, Any]:
        """JSON-serializable state: config, templates in LRU order (id, tokens, count,
        earlier texts, birth order, first and second constant tokens at birth), aliases."""
        return {
            "version": _SNAPSHOT_VERSION,
            "config": {"max_templates": self.max_templates,
                       "max_message_chars": self.max_message_chars,
                       "max_tokens": self.max_tokens, "sim_threshold": self.sim_threshold,
                       "prefix_tokens": self.prefix_tokens,
                       "fallback_threshold": self.fallback_threshold, "cache_size": self.cache_size,
                       "max_aliases": self.aliases.limit},
            "templates": [[c.id, c.tokens, c.count, c.earlier, c.seq, list(c.key[1:]), c.key2[1]]
                          for c in self._clusters.values()],
            "aliases": self.aliases.items(),
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> TemplateMiner:
        """A miner from ``snapshot()`` output (also of the version before birth ids, whose
        templates keep the ids they had: the hash of their text)."""
        version = state.get("version")
        if version not in (1, _SNAPSHOT_VERSION):
            raise ValueError(f"unknown template snapshot version {version!r}")
        config = dict(state["config"])
        if version == 1:
            config["prefix_tokens"] = cls().prefix_tokens  # the old default anchored on two
        miner = cls(**config)
        for entry in state["templates"]:
            if version == 1:
                tokens, count = [str(t) for t in entry[0]], int(entry[1])
                cluster = _Cluster(template_id(" ".join(tokens)), tokens, miner._leaf_key(tokens),
                                   miner._next_seq(), count)
            else:
                tid, tokens, count = str(entry[0]), [str(t) for t in entry[1]], int(entry[2])
                key = (len(tokens), *(str(t) for t in entry[5]))
                key2 = (len(tokens), entry[6]) if len(entry) > 6 else None
                cluster = _Cluster(tid, tokens, key, int(entry[4]), count, [str(t) for t in entry[3]], key2)
                miner._seq = max(miner._seq, cluster.seq)
            miner._add(cluster)
        for alias, survivor in state.get("aliases", ()):
            miner.aliases.add(str(alias), str(survivor))
        return miner

    # -- internals --------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _leaf_key(self, tokens: list[str]) -> tuple[Any, ...]:
        """Where a template's candidates are: its token count and first ``prefix_tokens``
        constant tokens (a value the masking found, such as an address first, is skipped)."""
        if len(tokens) <= self.prefix_tokens or WILDCARD not in tokens[: self.prefix_tokens]:
            return (len(tokens), *tokens[: self.prefix_tokens])
        return (len(tokens), *[t for t in tokens if t != WILDCARD][: self.prefix_tokens])

    def _add(self, cluster: _Cluster) -> None:
        self._clusters[cluster.id] = cluster
        self._leaves.setdefault(cluster.key, []).append(cluster)
        self._by_second.setdefault(cluster.key2, {})[cluster.id] = cluster
        self._by_text.setdefault(cluster.template, cluster)
        while len(self._clusters) > self.max_templates:
            _, old = self._clusters.popitem(last=False)
            self._unlink(old)

    def _unlink(self, cluster: _Cluster) -> None:
        leaf = self._leaves[cluster.key]
        leaf.remove(cluster)
        if not leaf:
            del self._leaves[cluster.key]
        second = self._by_second[cluster.key2]
        del second[cluster.id]
        if not second:
            del self._by_second[cluster.key2]
        if self._by_text.get(cluster.template) is cluster:
            del self._by_text[cluster.template]
        cluster.version = -1

    def _learn(self, key: tuple[str, ...], raw: list[str]) -> tuple[Entry, TemplateChange | None]:
        """The cluster of masked tokens not in the exact-repeat cache (or whose cluster changed
        since), how to read their parameters, and what changed."""
        forms, spans = merge_runs(key)
        cluster = self._best(forms)
        change = None
        if cluster is None:
            cluster = self._by_text.get(" ".join(forms))
        if cluster is None:
            cluster = self._born(forms)
        else:
            merged = [a if a == b else _generalize(a, b) for a, b in zip(cluster.tokens, forms)]
            if merged != cluster.tokens:
                cluster, change = self._generalize(cluster, merged)
        entry = (cluster, cluster.version, *_plan(cluster.tokens, forms, spans, key))
        exact = self._exact
        if len(exact) >= self.cache_size and key not in exact:
            for k in list(islice(exact, max(1, self.cache_size // 8))):
                del exact[k]
        exact[key] = entry
        return entry, change

    def _run(self, steps: Steps, raw: list[str], forms: tuple[str, ...]) -> list[str]:
        """The parameters of a message by ``steps`` (see ``Steps``)."""
        out: list[str] = []
        for step in steps:
            kind = step[0]
            if kind == 4:
                text = raw[step[1]]
                out.append(text[step[2]: len(text) - step[3]])
            elif kind == 0:
                i = step[1]
                out.extend(variables_of(forms[i], raw[i]))
            elif kind == 1:
                s, e = step[1], step[2]
                out.append(raw[s] if e - s == 1 else " ".join(raw[s:e]))
            elif kind == 2:
                out.extend(span_params(forms, raw, step[1], step[2]))
            else:
                _, s, e, pre, suf = step
                text = raw[s] if e - s == 1 else " ".join(raw[s:e])
                if text.startswith(pre) and text.endswith(suf) and len(text) >= len(pre) + len(suf):
                    out.append(text[len(pre): len(text) - len(suf)])
                else:
                    for i in range(s, e):
                        out.extend(variables_of(forms[i], raw[i]))
        return out

    def _born(self, forms: list[str]) -> _Cluster:
        form = " ".join(forms)
        tid = template_id(form)
        n = 1
        while tid in self._clusters or tid in self.aliases:  # the same birth form twice
            n += 1
            tid = template_id(f"{form}\x00{n}")
        cluster = _Cluster(tid, list(forms), self._leaf_key(forms), self._next_seq())
        self._add(cluster)
        if self.journaling:
            self._journal.append(["born", tid, cluster.tokens, cluster.seq])
        return cluster

    def _best(self, forms: list[str]) -> _Cluster | None:
        """The most similar template with the same token count and first tokens (at or above
        ``sim_threshold``), else with the same token count only (at or above
        ``fallback_threshold``: a variable the masking missed among the first tokens)."""
        consts = [i for i, t in enumerate(forms) if t != WILDCARD]
        if not consts:
            return None
        leaf = self._leaves.get(self._leaf_key(forms))
        best = _most_similar(leaf, forms, consts, self.sim_threshold) if leaf else None
        anchors = consts[: self.prefix_tokens]
        if best is None and self.fallback_threshold <= 1.0 and (
                int((1.0 - self.fallback_threshold) * len(consts) + 1e-9) > 0
                or any("=" in forms[i] for i in anchors)):
            # (no mismatch allowed: only a first token of the same key= can differ from a
            # template that has the same constants elsewhere)
            others = self._by_second.get(_second_key(forms))
            if others and len(others) <= _FALLBACK_SCAN:
                best = _most_similar(others.values(), forms, consts, self.fallback_threshold)
        return best

    def _generalize(self, cluster: _Cluster, tokens: list[str]) -> tuple[_Cluster, TemplateChange]:
        previous = cluster.template
        self._retext(cluster, tokens)
        if self.journaling:
            self._journal.append(["text", cluster.id, tokens])
        text = cluster.template
        other = self._by_text.get(text)
        if other is None or other is cluster:
            self._by_text[text] = cluster
            return cluster, TemplateChange(cluster.id, text, previous)
        # Two clusters generalized into one template: the older id survives, the other
        # becomes its alias; counts add up.
        survivor, absorbed = self._merge(other, cluster)
        if self.journaling:
            self._journal.append(["alias", absorbed.id, survivor.id])
        return survivor, TemplateChange(survivor.id, text, previous, absorbed.id)

    def _retext(self, cluster: _Cluster, tokens: list[str]) -> None:
        """The cluster's template becomes ``tokens`` (its id stays)."""
        previous = cluster.template
        if self._by_text.get(previous) is cluster:
            del self._by_text[previous]
        cluster.tokens = tokens
        cluster.version += 1
        cluster.wildcards = tokens.count(WILDCARD)
        cluster.template = " ".join(tokens)
        cluster.earlier.append(previous)
        del cluster.earlier[:-_EARLIER_TEXTS]

    def _merge(self, a: _Cluster, b: _Cluster) -> tuple[_Cluster, _Cluster]:
        """One cluster of two with the same template: the older survives (with both counts),
        the other's id becomes its alias. (survivor, absorbed)"""
        survivor, absorbed = (a, b) if a.seq < b.seq else (b, a)
        self._clusters.pop(absorbed.id, None)
        self._unlink(absorbed)
        survivor.count += absorbed.count
        self._by_text[survivor.template] = survivor
        self.aliases.add(absorbed.id, survivor.id)
        return survivor, absorbed

def _second_key(tokens: list[str]) -> tuple[Any, ...]:
    """The token count and the second constant token (see ``TemplateMiner._by_second``)."""
    second = None
    seen = 0
    for t in tokens:
        if t != WILDCARD:
            seen += 1
            if seen == 2:
                second = t
                break
    return (len(tokens), second)


def _most_similar(clusters: Iterable[_Cluster], forms: list[str], consts: list[int],
                  threshold: float) -> _Cluster | None:
    best, best_sim, best_vars = None, -1.0, -1
    for c in clusters:
        tokens = c.tokens
        same = 0
        for i in consts:
            t, f = tokens[i], forms[i]
            if t == f or _soft_equal(t, f):
                same += 1
        sim = same / len(consts)
        if sim > best_sim or (sim == best_sim and c.wildcards > best_vars):
            best, best_sim, best_vars = c, sim, c.wildcards
    return best if best is not None and best_sim >= threshold else None


def _plan(tokens: list[str], forms: list[str], spans: list[tuple[int, int]],
          key: tuple[str, ...]) -> tuple[int, Any, Any]:
    """How to read the parameters of messages with masked tokens ``key`` (merged: ``forms``
    over ``spans``) in a template of ``tokens`` (see ``NONE``, ``WHOLE``...)."""
    steps: list[tuple[Any, ...]] = []
    for t, f, (s, e) in zip(tokens, forms, spans):
        if t == f:
            if e - s == 1:
                if t == WILDCARD:
                    steps.append((1, s, e))
                elif WILDCARD in t:
                    steps.append(_one_token(t, s))
            elif all(k == WILDCARD for k in key[s:e]):
                steps.append((1, s, e))
            else:
                steps.append((2, s, e))
        elif t == WILDCARD:
            steps.append((1, s, e))
        elif WILDCARD in t:
            pre, _, suf = t.partition(WILDCARD)
            if WILDCARD not in suf:
                steps.append((3, s, e, pre, suf))
            elif e - s == 1:  # the template's token holds several variables: the message's
                steps.append(_one_token(f, s) if WILDCARD in f else (1, s, e))
            else:
                steps.append((2, s, e))
    if not steps:
        return NONE, None, None
    if all(st[0] == 1 and st[2] - st[1] == 1 for st in steps):
        positions = [st[1] for st in steps]
        return WHOLE, (itemgetter(slice(positions[0], positions[0] + 1)) if len(positions) == 1
                       else itemgetter(*positions)), None
    picks = [_pick(st, key) for st in steps]
    if all(p is not None for p in picks):
        items = [p[0] for p in picks]  # type: ignore[index]
        # (one item: a second one that map() never reaches keeps itemgetter's result a tuple)
        getter = itemgetter(*items) if len(items) > 1 else itemgetter(items[0], 0)
        if all(p[1] is _AS_IS or p[2] is _AS_IS for p in picks):  # type: ignore[index]
            # one function per pick: the slice or the join
            return SLICED, getter, tuple(p[2] if p[1] is _AS_IS else p[1] for p in picks)  # type: ignore[index]
        return SLICED_JOINED, getter, (tuple(p[1] for p in picks), tuple(p[2] for p in picks))  # type: ignore[index]
    return STEPS, tuple(steps), None


def _one_token(form: str, i: int) -> tuple[Any, ...]:
    """The step of a token holding variables among constant text."""
    if form.count(WILDCARD) == 1:  # (uid=<*>): the text between the constant parts
        pre, _, suf = form.partition(WILDCARD)
        return (4, i, len(pre), len(suf))
    return (0, i)


def _slicer(a: int, b: int) -> itemgetter[Any]:
    return _AS_IS if not a and not b else itemgetter(slice(a, -b or None))


def _pick(step: tuple[Any, ...], key: tuple[str, ...]) -> tuple[Any, Any, Any] | None:
    """A step as (item of the token list, then a function of it, then another), when it is
    one: a token or tokens joined by spaces, sliced. None otherwise."""
    kind = step[0]
    if kind == 1:
        s, e = step[1], step[2]
        return (s, _AS_IS, _AS_IS) if e - s == 1 else (slice(s, e), _JOIN, _AS_IS)
    if kind == 4:
        return step[1], _AS_IS, _slicer(step[2], step[3])
    if kind == 2:  # [<*> <*>]: joined, without the first token's prefix and the last's suffix
        s, e = step[1], step[2]
        first, last = key[s], key[e - 1]
        if first.count(WILDCARD) == 1 and first.endswith(WILDCARD) and all(
                k == WILDCARD for k in key[s + 1:e - 1]):
            if last.count(WILDCARD) == 1 and last.startswith(WILDCARD):
                return slice(s, e), _JOIN, _slicer(len(first) - 3, len(last) - 3)
            if WILDCARD not in last and first in (WILDCARD, COMPARISON):  # a unit word
                return slice(s, e), _JOIN, _slicer(0, len(unit_suffix(last) or ""))
    return None


_AS_IS = itemgetter(slice(None))  # (a str sliced whole is the same str)
_JOIN = " ".join
