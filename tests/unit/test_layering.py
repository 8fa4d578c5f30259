"""The engine's folders follow the data flow, and imports go one way (see ``streams/__init__``).

Every import in ``streams/`` (module level and inside functions; type-only imports under
``if TYPE_CHECKING:`` excluded) is checked against the rules below; the package graph must
have no cycle. A forbidden import added anywhere fails this test with the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STREAMS = ROOT / "streams"

# What each package must never import (besides the universal rules below).
FORBIDDEN: dict[str, set[str]] = {
    "ops": {"transport", "sources", "framing", "parse", "templates", "pipeline", "steps", "sinks",
            "windows", "anomaly", "worker", "replay"},
    "transport": {"sources", "framing", "parse", "templates", "pipeline", "steps", "sinks",
                  "windows", "anomaly", "worker", "replay"},
    "framing": {"parse", "templates", "pipeline", "sinks", "windows", "anomaly", "worker",
                "replay", "sources"},
    "parse": {"sources", "framing", "templates", "pipeline", "sinks", "windows", "anomaly",
              "worker", "replay"},
    "sources": {"parse", "templates", "sinks", "windows", "anomaly", "worker", "replay"},
    "templates": {"sources", "framing", "parse", "windows", "anomaly", "worker", "replay"},
    "anomaly": {"sources", "framing", "parse", "templates", "pipeline", "sinks", "windows",
                "worker", "replay"},
    "sinks": {"sources", "framing", "parse", "templates", "pipeline", "windows", "anomaly",
              "worker", "replay"},
    "windows": {"sources", "framing", "parse", "templates", "worker", "replay"},
    "steps": {"sources", "sinks", "windows", "anomaly", "worker", "replay"},
    "pipeline": {"sources", "sinks", "windows", "anomaly", "worker", "replay"},
    "replay": {"worker", "sinks"},
    "views": {"sources", "framing", "parse", "templates", "sinks", "windows", "anomaly",
              "worker", "replay", "transport"},
}
# Nobody in the engine imports these (the CLI, views and the demo sit on top of it).
TOP = {"cli", "views", "demo", "services"}
ENGINE = {"ops", "transport", "framing", "parse", "sources", "templates", "pipeline", "steps",
          "sinks", "windows", "anomaly", "worker", "replay"}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import of ``path`` (relative ones resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            out.append((node.lineno, base))
            if base == "streams":  # ``from streams import x``: x is the package imported
                out += [(node.lineno, f"streams.{a.name}") for a in node.names]
    return out


def package_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "streams" or len(parts) < 2:
        return None
    return parts[1]


def edges() -> list[tuple[str, str, str]]:
    """(source package, imported package, 'file:line') over the whole engine."""
    out = []
    for path in sorted(STREAMS.rglob("*.py")):
        rel = path.relative_to(ROOT)
        src = rel.with_suffix("").parts[1] if len(rel.parts) > 1 else None
        if src in (None, "__init__", "__main__"):
            continue
        for line, module in imports_of(path):
            if module.split(".")[0] in ("benchmarks", "tests"):
                out.append((src, module.split(".")[0], f"{rel}:{line}"))
            dst = package_of(module)
            if dst and dst != src:
                out.append((src, dst, f"{rel}:{line}"))
    return out


def test_no_forbidden_import() -> None:
    bad = []
    for src, dst, where in edges():
        if dst in ("benchmarks", "tests"):
            bad.append(f"{where}: the engine imports {dst}")
        elif src in ENGINE and dst in TOP:
            bad.append(f"{where}: {src} (engine) imports {dst}")
        elif dst in FORBIDDEN.get(src, set()):
            bad.append(f"{where}: {src} must not import {dst}")
    assert not bad, "\n".join(bad)


def test_no_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for src, dst, _ in edges():
        graph.setdefault(src, set()).add(dst)
    seen: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if seen.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*stack[stack.index(nxt):], nxt]))
            if nxt not in seen:
                visit(nxt)
        stack.pop()
        seen[node] = 2

    for node in sorted(graph):
        if node not in seen:
            visit(node)


def test_top_level_holds_only_the_public_api() -> None:
    loose = sorted(p.name for p in STREAMS.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "pipeline.py"], loose
    for pkg in sorted(p for p in STREAMS.iterdir() if p.is_dir() and p.name != "__pycache__"):
        init = pkg / "__init__.py"
        assert init.is_file(), f"{pkg.name} has no __init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, f"streams/{pkg.name}/__init__.py must say what it owns and must not import"


def test_the_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    """The rules are live: a parse module importing the worker is reported."""
    bad = tmp_path / "streams" / "parse" / "oops.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("def f():\n    from streams.worker.app import build_app\n")
    global ROOT
    saved = ROOT
    try:
        ROOT = tmp_path
        (module,) = [m for _, m in imports_of(bad)]
        assert package_of(module) == "worker" and "worker" in FORBIDDEN["parse"]
    finally:
        ROOT = saved
