"""Template identity: ids given once, when a cluster is born, and aliases of merged ones.

A template's id is the first 16 hex digits of BLAKE2b over its *birth form*: the masked
tokens of the first message of its cluster, joined by single spaces. It never changes
afterwards, however the template text generalizes, so every event indexed under it stays
grouped with the later ones. It is deterministic: the same logging statement gives the same
id on every partition and worker, and after a restart that lost the cluster, whenever its
first message there masks to the same form (the masking turns every value it recognizes into
``<*>``; a value it does not recognize, such as a user name, makes the birth form and so the
id differ).

When two clusters turn out to be one (their texts generalized to the same template), the
older id survives and the other becomes its *alias*: ``Aliases`` maps it to the survivor, and
everything that counts by template resolves through it.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable

WILDCARD = "<*>"


def template_id(text: str) -> str:
    """Deterministic id of a text (a birth form)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


_WILDCARD_ID = template_id(WILDCARD)


class Aliases:
    """alias id -> surviving id, bounded (least recently recorded first out)."""

    __slots__ = ("_map", "limit")

    def __init__(self, limit: int = 100_000, items: Iterable[tuple[str, str]] = ()) -> None:
        self.limit = limit
        self._map: OrderedDict[str, str] = OrderedDict()
        for alias, survivor in items:
            self.add(alias, survivor)

    def add(self, alias: str, survivor: str) -> None:
        if alias == survivor or self.resolve(survivor) == alias:
            return
        self._map[alias] = survivor
        self._map.move_to_end(alias)
        while len(self._map) > self.limit:
            self._map.popitem(last=False)

    def resolve(self, tid: str) -> str:
        """The id that ``tid`` counts under now (itself when it is no alias)."""
        seen = 0
        get = self._map.get
        nxt = get(tid)
        while nxt is not None and seen < 64:
            tid, seen = nxt, seen + 1
            nxt = get(tid)
        return tid

    def __contains__(self, tid: object) -> bool:
        return tid in self._map

    def __len__(self) -> int:
        return len(self._map)

    def items(self) -> list[tuple[str, str]]:
        return list(self._map.items())

    def of(self, survivor: str) -> list[str]:
        """Ids that resolve to ``survivor``."""
        return [a for a in self._map if self.resolve(a) == survivor]
