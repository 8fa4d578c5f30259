"""Kubernetes metadata from container log file names (works without API access).

- ``/var/log/containers/<pod>_<namespace>_<container>-<container id>.log``
- ``/var/log/pods/<namespace>_<pod>_<pod uid>/<container>/<restart>.log[.<rotation suffix>]``
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

# Pod names are DNS subdomains (no underscore); namespaces are DNS labels; the container id
# is 64 hex characters.
_CONTAINERS = re.compile(
    r"^(?P<pod>[a-z0-9][-a-z0-9.]{0,252})_(?P<namespace>[a-z0-9][-a-z0-9]{0,62})_"
    r"(?P<container>[a-z0-9][-a-z0-9]{0,62})-(?P<cid>[0-9a-f]{64})\.log$"
)
_PODS_DIR = re.compile(
    r"^(?P<namespace>[a-z0-9][-a-z0-9]{0,62})_(?P<pod>[a-z0-9][-a-z0-9.]{0,252})_(?P<uid>[-0-9a-f]{1,64})$"
)


def metadata_from_path(path: str | PurePath) -> dict[str, Any]:
    """Return ``{"kubernetes": {...}, "container": {...}}`` parts known from the path,
    or an empty dict when the path is not a Kubernetes log file."""
    p = PurePath(path)
    m = _CONTAINERS.match(p.name)
    if m:
        return {
            "kubernetes": {
                "namespace": m["namespace"],
                "pod": {"name": m["pod"]},
                "container": {"name": m["container"]},
            },
            "container": {"id": m["cid"]},
        }
    if len(p.parts) >= 3:
        d = _PODS_DIR.match(p.parts[-3])
        if d and re.match(r"^\d+\.log", p.name):
            return {
                "kubernetes": {
                    "namespace": d["namespace"],
                    "pod": {"name": d["pod"], "uid": d["uid"]},
                    "container": {"name": p.parts[-2]},
                }
            }
    return {}
