"""The import graph follows the layers: no file cycles, and the platform (``ticker/``) reaches
into Web Push (``subscribers/``) only where it plugs it in.

Every import counts, including those under ``TYPE_CHECKING`` and inside functions: a cycle
hidden from the interpreter is still two modules that cannot be understood one at a time.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ticker", "subscribers")
# The two wiring points: create_app plugs the push part in, the CLI registers its commands.
WIRING = {"ticker.app", "ticker.cli"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def imports_of(path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules a file imports (``from pkg import mod`` names ``pkg.mod``)."""
    me = module_name(path)
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                package = me if path.name == "__init__.py" else me.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in known:
                    out.add(full)
                elif base in known:
                    out.add(base)
    out.discard(me)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycles_between_files() -> None:
    assert cycles(graph()) == []


def test_the_platform_imports_web_push_only_at_its_two_wiring_points() -> None:
    leaks = {name: sorted(i for i in deps if i.split(".")[0] == "subscribers")
             for name, deps in graph().items()
             if name.split(".")[0] == "ticker" and name not in WIRING}
    assert {name: deps for name, deps in leaks.items() if deps} == {}


def test_the_cycle_finder_finds_a_cycle() -> None:
    # The check above is only as good as this: a two-file and a three-file cycle are found.
    edges = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert sorted(cycles(edges)) == [["a", "b"], ["c", "d", "e"]]


def test_every_folder_is_a_package_of_one_concept() -> None:
    # Flat piles are what the layout replaced: no folder holds more than a dozen modules.
    for pkg in PACKAGES:
        for folder in [ROOT / pkg, *(p for p in (ROOT / pkg).rglob("*") if p.is_dir())]:
            if folder.name in ("static", "__pycache__"):
                continue
            py = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
            assert len(py) <= 14, f"{folder.relative_to(ROOT)} holds {len(py)} modules"
