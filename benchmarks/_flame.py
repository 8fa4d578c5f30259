"""A small flame graph (SVG) from collapsed stacks (``py-spy record --format raw``): one box
per frame, width = share of samples, hover for the name and share. Enough to see where the
time goes without an external tool."""

from __future__ import annotations

from collections.abc import Iterator
from html import escape
from pathlib import Path

WIDTH = 1600
ROW = 16
MIN_SHARE = 0.002  # frames narrower than this are not drawn


def read_collapsed(raw: Path) -> Iterator[tuple[list[str], int]]:
    """``(frames root first, samples)`` per line of a collapsed-stacks file."""
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if n.isdigit():
            yield stack.split(";"), int(n)


def _tree(raw: Path) -> tuple[dict, int]:
    root: dict = {"n": 0, "kids": {}}
    total = 0
    for frames, n in read_collapsed(raw):
        total += n
        node = root
        node["n"] += n
        for frame in frames:
            node = node["kids"].setdefault(frame, {"n": 0, "kids": {}})
            node["n"] += n
    return root, total


def flame_svg(raw: Path, out: Path, title: str) -> None:
    root, total = _tree(raw)
    boxes: list[str] = []
    depth_max = 0

    def walk(node: dict, x: float, depth: int) -> None:
        nonlocal depth_max
        for name, kid in sorted(node["kids"].items(), key=lambda kv: -kv[1]["n"]):
            share = kid["n"] / total
            if share >= MIN_SHARE:
                w = share * WIDTH
                depth_max = max(depth_max, depth)
                hue = 20 + (hash(name.split(" ")[0]) % 40)
                label = escape(name if len(name) * 7 < w else name[: max(0, int(w / 7) - 2)] + "…"
                               if w > 30 else "")
                boxes.append(
                    f'<g><title>{escape(name)} ({share:.1%})</title>'
                    f'<rect x="{x:.1f}" y="{{y{depth}}}" width="{w:.1f}" height="{ROW - 1}" '
                    f'fill="hsl({hue},80%,60%)"/><text x="{x + 2:.1f}" y="{{t{depth}}}">{label}</text></g>')
                walk(kid, x, depth + 1)
            x += share * WIDTH

    if total:
        walk(root, 0.0, 0)
    height = (depth_max + 3) * ROW
    svg = "\n".join(boxes)
    for d in range(depth_max + 1):  # root at the bottom, as flame graphs are drawn
        y = height - (d + 2) * ROW
        svg = svg.replace(f'"{{y{d}}}"', f'"{y}"').replace(f'"{{t{d}}}"', f'"{y + ROW - 4}"')
    out.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="monospace" font-size="11">'
        f'<text x="4" y="12">{escape(title)} — {total} samples</text>\n{svg}\n</svg>\n')
