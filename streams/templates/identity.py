"""Template identity: the wildcard and the id of a template text."""

from __future__ import annotations

import hashlib

WILDCARD = "<*>"


def template_id(template: str) -> str:
    """Deterministic id of a template text."""
    return hashlib.blake2b(template.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


_WILDCARD_ID = template_id(WILDCARD)
