"""The browser tests find Chromium the same way they launch it: an override, Debian's path,
then PATH (Ubuntu's snap puts ``chromium`` in /snap/bin)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import find_chromium


def fake(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / name
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    return script


@pytest.mark.parametrize("name", ["chromium", "chromium-browser"])
def test_chromium_on_path_is_found_when_the_debian_path_is_absent(
        tmp_path: Path, name: str) -> None:
    script = fake(tmp_path / "snap" / "bin", name)
    env = {"PATH": f"{tmp_path / 'empty'}{os.pathsep}{script.parent}"}
    assert find_chromium(env, default=str(tmp_path / "usr-bin-chromium")) == str(script)


def test_the_debian_path_wins_over_path_and_an_override_wins_over_both(tmp_path: Path) -> None:
    debian = fake(tmp_path / "usr" / "bin", "chromium")
    on_path = fake(tmp_path / "snap" / "bin", "chromium")
    chosen = fake(tmp_path / "opt", "my-chromium")
    env = {"PATH": str(on_path.parent)}
    assert find_chromium(env, default=str(debian)) == str(debian)
    assert find_chromium({**env, "TICKER_CHROMIUM": str(chosen)}, str(debian)) == str(chosen)
    # The older variable still works.
    assert find_chromium({**env, "TICKER_TEST_CHROMIUM": str(chosen)}, str(debian)) == str(chosen)


def test_nothing_found_is_none_and_a_missing_override_is_not_replaced(tmp_path: Path) -> None:
    on_path = fake(tmp_path / "bin", "chromium")
    absent = str(tmp_path / "nowhere" / "chromium")
    assert find_chromium({"PATH": str(tmp_path / "empty")}, default=absent) is None
    assert find_chromium({"PATH": str(on_path.parent), "TICKER_CHROMIUM": absent},
                         default=absent) is None
    (tmp_path / "bin" / "chromium").chmod(0o644)  # not executable: not a browser to launch
    assert find_chromium({"PATH": str(on_path.parent)}, default=absent) is None
