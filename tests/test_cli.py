"""The command line: help everywhere, one-line reasons on bad input, tokens stored hashed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support import base_env, run_cli
from ticker.cli import build_parser


def all_commands() -> list[list[str]]:
    """Every command path the parser knows, e.g. ["tokens", "create"]."""
    import argparse

    out: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    out.append([*path, name])
                    walk(sub, [*path, name])

    walk(build_parser(), [])
    return out


def test_every_command_has_help(tmp_path: Path) -> None:
    commands = all_commands()
    assert ["serve"] in commands and ["tokens", "create"] in commands
    for path in [[], *commands]:
        out = run_cli([*path, "--help"], base_env(tmp_path))
        assert out.returncode == 0, (path, out.stderr)
        assert "usage: ticker" in out.stdout


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["tokens", "create", "--name", "x", "--role", "root"], {}, "invalid choice"),
        (["serve"], {"TICKER_PORT": "eighty"}, "port"),
        (["publish", "headlines", "--json", "{bad"], {}, "not valid JSON"),
        (["publish", "headlines", "--json", "{}"], {}, "token"),
        (["tokens", "revoke", "99"], {}, "no active token"),
    ],
)
def test_bad_input_exits_non_zero_with_a_one_line_reason(
    tmp_path: Path, args: list[str], env: dict[str, str], fragment: str
) -> None:
    out = run_cli(args, {**base_env(tmp_path), **env})
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert fragment in last, out.stderr


def test_tokens_create_prints_the_token_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    out = run_cli(["tokens", "create", "--name", "cms", "--role", "admin"], env)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert token.startswith("tk_") and len(token) > 40
    db = sqlite3.connect(tmp_path / "ticker.db")
    rows = db.execute("SELECT * FROM api_tokens").fetchall()
    db.close()
    assert len(rows) == 1
    assert all(token not in str(value) for value in rows[0])
    listing = run_cli(["tokens", "list"], env)
    assert "cms" in listing.stdout and token not in listing.stdout


def test_print_config_masks_secrets(tmp_path: Path) -> None:
    env = {**base_env(tmp_path), "TICKER_WEBHOOK_SECRET": "s3cret-value"}
    out = run_cli(["serve", "--print-config"], env)
    assert out.returncode == 0 and '"port": 8080' in out.stdout
    assert "s3cret-value" not in out.stdout
