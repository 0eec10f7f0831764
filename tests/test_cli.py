"""The command line: help everywhere, one-line reasons on bad input, tokens stored hashed."""

from __future__ import annotations

import json
import re
import select
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support import ServerProcess, base_env, run_cli
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
        assert "--config FILE" in out.stdout, path  # also after the command's name


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
    assert out.returncode == 0 and json.loads(out.stdout)["server"]["port"] == 8080
    assert "s3cret-value" not in out.stdout


# Each was accepted before and broke later: every client dropped with 1013 (send buffer), an
# OverflowError per request (message size), a history that never ages (inf), ...
BAD_NUMBERS = [
    ("ws_send_buffer_bytes", "-1"),
    ("ws_max_message_bytes", "-1"),
    ("publish_max_bytes", "-1"),
    ("history_seconds", "-1"),
    ("history_size", "-5"),
    ("ws_max_client_rate", "-3"),
    ("history_seconds", "nan"),
    ("ws_max_client_rate", "inf"),
]


@pytest.mark.parametrize("given_in", ["env", "toml"])
@pytest.mark.parametrize(("name", "value"), BAD_NUMBERS)
def test_serve_refuses_a_bad_number_at_start_with_one_line_naming_it(
        tmp_path: Path, name: str, value: str, given_in: str) -> None:
    env, args = base_env(tmp_path), []
    if given_in == "env":
        env[f"TICKER_{name.upper()}"] = value
    else:
        cfg = tmp_path / "t.toml"
        cfg.write_text(f"{name} = {value}\n")
        args = ["--config", str(cfg)]
    out = run_cli(["serve", "--port", "0", *args], env, timeout=20)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith(f"ticker: error: setting {name} ("), out.stderr
    assert len(out.stderr.splitlines()) == 1 and out.stdout == ""


def test_serve_names_an_unknown_setting_and_the_one_meant(tmp_path: Path) -> None:
    out = run_cli(["serve", "--port", "0"], {**base_env(tmp_path), "TICKER_PROT": "9000"},
                  timeout=20)
    assert out.returncode == 2
    assert out.stderr == ("ticker: error: unknown setting TICKER_PROT; "
                          "did you mean TICKER_PORT?\n")


def test_config_is_accepted_before_and_after_the_subcommand(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text("port = 9123\npush_ttl = 77\n")
    env = base_env(tmp_path)
    for args in (["--config", str(cfg), "serve", "--print-config"],
                 ["serve", "--config", str(cfg), "--print-config"],
                 ["serve", "--print-config", "--config", str(cfg)]):
        out = run_cli(args, env)
        assert out.returncode == 0, (args, out.stderr)
        shown = json.loads(out.stdout)
        assert (shown["server"]["port"], shown["push"]["push_ttl"]) == (9123, 77), args


def test_every_command_takes_config_after_its_name() -> None:
    parser = build_parser()
    for path in all_commands():
        with pytest.raises(SystemExit):  # the arguments a command needs are missing
            parser.parse_args([*path, "--config", "x.toml", "--no-such-flag"])
    args = parser.parse_args(["tokens", "list", "--config", "x.toml"])
    assert args.config == "x.toml"
    assert parser.parse_args(["--config", "y.toml", "tokens", "list"]).config == "y.toml"


def test_client_commands_read_push_and_client_settings_from_the_config(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "from-file"}"\npush_ttl = 0\n')
    out = run_cli(["tokens", "list", "--config", str(cfg)], base_env(tmp_path))
    assert out.returncode == 2 and "setting push_ttl" in out.stderr  # push keys are known


def test_a_port_in_use_says_it_cannot_listen(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run_cli(["serve", "--port", str(port)], base_env(tmp_path), timeout=20)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == (
        f"ticker: error: cannot listen on 127.0.0.1:{port}: address already in use")


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["tokens", "list"],
                                     ["vapid", "show"]])
def test_an_unusable_data_dir_is_named_not_blamed_on_the_server(
        tmp_path: Path, command: list[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for data_dir, reason in ((blocker, "it is not a directory"),
                             (blocker / "sub", "not a directory")):
        env = {**base_env(tmp_path), "TICKER_DATA_DIR": str(data_dir)}
        out = run_cli(command, env, timeout=30)
        assert out.returncode == 2, out.stderr
        assert out.stderr.strip().splitlines()[-1] == (
            f"ticker: error: cannot use data directory {data_dir}: {reason}")


def test_a_config_path_that_is_a_folder_is_named(tmp_path: Path) -> None:
    out = run_cli(["serve", "--config", str(tmp_path)], base_env(tmp_path))
    assert out.returncode == 2
    assert out.stderr == f"ticker: error: config file {tmp_path} is a directory\n"


@pytest.mark.parametrize("command", [
    ["publish", "headlines", "--json", "{}", "--token", "tk_x"],
    ["alerts", "send", "--title", "T", "--url", "https://example.com", "--token", "tk_x"],
    ["tail", "headlines"],
])
def test_client_commands_that_cannot_connect_say_they_cannot_reach_the_server(
        tmp_path: Path, command: list[str]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    out = run_cli([*command, "--server", url], base_env(tmp_path), timeout=20)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ticker: error: cannot reach the server at {url}: "), out.stderr


def start_serve(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "ticker", "serve", "--port", "0", *args],
                            env=base_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


@pytest.mark.parametrize(("host", "shown"), [("127.0.0.1", "127.0.0.1"), ("::1", "[::1]")])
def test_serve_first_prints_the_address_it_listens_on_with_the_real_port(
        tmp_path: Path, host: str, shown: str) -> None:
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    proc = start_serve(tmp_path, "--host", host)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "serve printed nothing within 20 s"
        first = proc.stdout.readline().strip()
        match = re.fullmatch(rf"listening on http://{re.escape(shown)}:(\d+)", first)
        assert match and int(match[1]) != 0, first
        url = f"http://{shown}:{match[1]}/healthz"
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the printed port never answered"
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(20)
        assert proc.stdout is not None
        proc.stdout.close()
    assert proc.returncode == 0


def test_serve_logs_its_settings_after_the_address_with_secrets_masked(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, env={"TICKER_WEBHOOK_SECRET": "s3cret-value"})
    server.start()
    try:
        deadline = time.monotonic() + 10
        while '"msg": "started"' not in server.log():
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
    finally:
        server.stop()
    log = server.log()
    assert log.splitlines()[0] == f"listening on {server.url}"
    started = json.loads(next(line for line in log.splitlines() if '"started"' in line))
    assert started["settings"]["server"]["port"] == server.port
    assert started["settings"]["server"]["webhook_secret"] == "**********"
    assert "s3cret-value" not in log


def test_vapid_show_all_lists_id_state_creation_time_and_key(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    before = datetime.now(UTC).replace(microsecond=0)
    first = run_cli(["vapid", "show"], env).stdout.strip()
    second = run_cli(["vapid", "rotate"], env).stdout.strip()
    out = run_cli(["vapid", "show", "--all"], env)
    assert out.returncode == 0, out.stderr
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert [(r[0], r[1], r[3]) for r in rows] == [("1", "old", first), ("2", "current", second)]
    for row in rows:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row[2]), row
        created = datetime.strptime(row[2], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert before <= created <= datetime.now(UTC)
