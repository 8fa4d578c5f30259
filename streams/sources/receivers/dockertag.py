"""Docker's log tag, read back: the ``tag`` log option is a Go template over the container
(``{{.ID}}`` by default; Docker's docs suggest ``{{.ImageName}}/{{.Name}}/{{.ID}}``), and a
receiver that knows the template can turn a tag back into ECS ``container.*`` fields.

``TagTemplates([...])`` tries several templates in order (a collector may receive from
containers started with different ones). ``TagTemplate(template).match(tag)`` returns ``{"id": ..., "name": ..., "image": {"name":
...}}`` (the parts the template names) or None when the tag does not fit. The placeholders are
Docker's: ``{{.ID}}`` (12 hex digits), ``{{.FullID}}`` (64), ``{{.Name}}`` (the container name,
without dockerd's leading ``/``), ``{{.ImageID}}`` (12 hex digits), ``{{.ImageFullID}}``
(``sha256:`` and 64), ``{{.ImageName}}`` (as the user named it: ``registry:5000/shop/cart:1.4``)
and ``{{.DaemonName}}``. Templates with functions or other actions are refused: their output
cannot be read back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

DEFAULT = "{{.ID}}"  # loggerutils.DefaultTemplate

# Placeholder -> (regular expression, where the value goes).
_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ID": (r"[0-9a-f]{12}", ("id",)),
    "FullID": (r"[0-9a-f]{64}", ("id",)),
    "Name": (r"[A-Za-z0-9][A-Za-z0-9_.-]*", ("name",)),
    "ImageID": (r"[0-9a-f]{12}", ("image", "id")),
    "ImageFullID": (r"(?:sha256:)?[0-9a-f]{64}", ("image", "id")),
    "ImageName": (r"[^\s]+?", ("image", "name")),
    "DaemonName": (r"[^\s/]+?", ("daemon",)),
}
_ACTION = re.compile(r"\{\{\s*(.*?)\s*\}\}")


class TagTemplate:
    """A Docker tag template compiled into a matcher (see the module doc)."""

    def __init__(self, template: str = DEFAULT) -> None:
        self.template = template
        pattern, pos, self._groups = ["^"], 0, []
        for m in _ACTION.finditer(template):
            pattern.append(re.escape(template[pos : m.start()]))
            field = m.group(1)
            if not field.startswith(".") or field[1:] not in _FIELDS:
                raise ValueError(f"tag template {template!r}: cannot read back {{{{{field}}}}}")
            regex, path = _FIELDS[field[1:]]
            pattern.append(f"({regex})")
            self._groups.append(path)
            pos = m.end()
        pattern.append(re.escape(template[pos:]) + "$")
        if not self._groups:
            raise ValueError(f"tag template {template!r} names no container field")
        self._re = re.compile("".join(pattern))
        self._prefix = re.compile("".join(pattern)[:-1] + " ")

    def match(self, tag: str) -> dict[str, Any] | None:
        """The container fields the tag gives, or None when it does not fit the template."""
        m = self._re.match(tag)
        return None if m is None else self._fields(m)

    def split(self, text: str) -> tuple[dict[str, Any], str] | None:
        """``text`` starting with a tag and a space (Docker's splunk ``raw`` format): the
        container fields and the rest, or None."""
        m = self._prefix.match(text)
        return None if m is None else (self._fields(m), text[m.end() :])

    def _fields(self, m: re.Match[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for path, value in zip(self._groups, m.groups(), strict=True):
            node = out
            for part in path[:-1]:
                node = node.setdefault(part, {})
            if path == ("image", "id") and value.startswith("sha256:"):
                value = value[len("sha256:"):]
            node[path[-1]] = value
        out.pop("daemon", None)
        return out


class TagTemplates:
    """Several templates, tried in order; the first that fits wins."""

    def __init__(self, templates: Sequence[str] | None = None, cache: int = 4096) -> None:
        self.templates = [TagTemplate(t) for t in (templates or [DEFAULT])]
        self._cache: dict[str, dict[str, Any] | None] = {}  # a container sends one tag
        self._cache_size = cache

    def match(self, tag: str) -> dict[str, Any] | None:
        """The fields of the first template that fits (a fresh dict: callers may keep it)."""
        try:
            found = self._cache[tag]
        except KeyError:
            found = next((f for t in self.templates if (f := t.match(tag)) is not None), None)
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[tag] = found
        return _copy(found)

    def split(self, text: str) -> tuple[dict[str, Any], str] | None:
        for t in self.templates:
            if (found := t.split(text)) is not None:
                return found
        return None


def _copy(fields: dict[str, Any] | None) -> dict[str, Any] | None:
    if fields is None:
        return None
    return {k: dict(v) if isinstance(v, dict) else v for k, v in fields.items()}
