"""pyproject's runtime dependencies are exactly what ``ticker`` and ``subscribers`` import;
the test and bench extras cover what tests/ and bench/ import beyond those.

A dependency nothing imports is weight (and attack surface) in every install; an import
missing from the list works on a developer's machine and fails on a fresh ``pip install .``.
Imports are read from the source (every ``import``, including those inside functions, e.g.
asyncpg only when a PostgreSQL URL is configured), except those under ``TYPE_CHECKING``.
Import names are mapped to distributions through the installed metadata, so
``prometheus_client`` counts for ``prometheus-client`` and ``apscheduler`` for ``APScheduler``.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = {"ticker", "subscribers", "tests", "bench"}
# Shipped in the package but only for tests and benchmarks (the push-service stand-in).
TEST_SUPPORT = {ROOT / "subscribers" / "testing.py"}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    assert match, spec
    return normalize(match.group(1))


def declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = {name: {requirement_name(s) for s in specs}
              for name, specs in project.get("optional-dependencies", {}).items()}
    return {requirement_name(s) for s in project["dependencies"]}, extras


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of the imports under ``if TYPE_CHECKING:`` (never run)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                for sub in ast.walk(inner):
                    if isinstance(sub, ast.Import | ast.ImportFrom):
                        lines.add(sub.lineno)
    return lines


def third_party_imports(files: list[Path]) -> dict[str, set[str]]:
    """Top-level third-party module -> the files importing it."""
    found: dict[str, set[str]] = {}
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_only(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and node.lineno not in skip:
                names = [a.name for a in node.names]
            elif (isinstance(node, ast.ImportFrom) and node.lineno not in skip
                  and node.level == 0 and node.module):
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in FIRST_PARTY and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def distributions(modules: dict[str, set[str]], *, installed: bool = True) -> set[str]:
    """The distributions providing ``modules``. With ``installed=False`` a module that is
    not installed (the bench extra is not, in the test environment) counts as the
    distribution of the same name, which holds for every one bench/ uses."""
    providers = importlib.metadata.packages_distributions()
    out: set[str] = set()
    for module, files in sorted(modules.items()):
        dists = providers.get(module) or ([] if installed else [module])
        assert dists, (f"{module} (imported by {sorted(files)}) is not installed: add the "
                       f"distribution that provides it to pyproject.toml")
        out.update(normalize(d) for d in dists)
    return out


def sources(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]


def test_runtime_dependencies_are_exactly_what_the_server_and_cli_import() -> None:
    runtime, _ = declared()
    files = [p for p in sources("ticker", "subscribers") if p not in TEST_SUPPORT]
    imported = distributions(third_party_imports(files))
    assert sorted(runtime - imported) == [], "declared but never imported: move to an extra"
    assert sorted(imported - runtime) == [], "imported but not a runtime dependency"


def test_the_test_and_bench_extras_cover_what_tests_and_benchmarks_import() -> None:
    runtime, extras = declared()
    tests = distributions(third_party_imports(sources("tests") + sorted(TEST_SUPPORT)))
    # bench/ starts servers through tests/support.py.
    bench = distributions(third_party_imports([*sources("bench"), ROOT / "tests" / "support.py"]),
                          installed=False)
    assert sorted(tests - runtime - extras["test"]) == []
    assert sorted(bench - runtime - extras["bench"]) == []
