"""PostgreSQL unreachable at start: ``ticker serve`` and ``ticker worker`` stop with one
line naming the database (without its password), a non-zero exit and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pushhelpers import SUBJECT
from tests.support import base_env, run_cli

URL = "postgresql://reader:hunter2@127.0.0.1:1/x"
SHOWN = "postgresql://127.0.0.1:1/x"


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"]])
def test_postgresql_unreachable_at_start_is_one_line_naming_the_place(
        tmp_path: Path, command: list[str]) -> None:
    env = base_env(tmp_path)
    env.update({"TICKER_DATABASE_URL": URL, "TICKER_VAPID_SUBJECT": SUBJECT,
                "TICKER_MODE": "production", "TICKER_LOG_LEVEL": "WARNING"})
    done = run_cli(command, env)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("ticker: error:")]
    assert len(errors) == 1 and errors[0].startswith(
        f"ticker: error: cannot reach the database at {SHOWN}: "), done.stderr
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr + done.stdout
    assert [line for line in done.stderr.splitlines() if not line.startswith("{")] == errors
