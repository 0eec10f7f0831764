"""docs/contract.md stays true to the code: every route the app serves and every command
the CLI has is described there, and README links it (not a file outside the repository)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_cli import all_commands
from ticker.app import create_app
from ticker.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")


def test_every_route_is_in_the_contract() -> None:
    app = create_app(Settings())
    paths = {r.resource.canonical for r in app.router.routes()
             if r.method != "HEAD" and r.resource is not None}
    missing = sorted(p for p in paths if not re.search(rf"`(?:[A-Z/`]+ )?{re.escape(p)}[?` ]",
                                                       CONTRACT))
    assert missing == []


def test_every_command_is_in_the_contract() -> None:
    leaves = [c for c in all_commands()
              if not any(o[:len(c)] == c and len(o) > len(c) for o in all_commands())]
    missing = [" ".join(c) for c in leaves if f"`ticker {' '.join(c)}" not in CONTRACT]
    assert missing == []


def test_readme_links_the_contract_inside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/contract.md)" in readme
    assert "../shared" not in readme
