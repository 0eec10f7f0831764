"""Test support: a real ``ticker serve`` process, free ports, CI-aware skips.

Tests that need Chromium, Redis or PostgreSQL skip with a reason on a laptop that lacks
them, but under ``CI=true`` they fail instead: CI must run everything.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Where Debian's package puts it; elsewhere (Ubuntu's snap: /snap/bin) PATH finds it.
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


def need(condition: bool, reason: str) -> None:
    """Skip (or, under CI, fail) when a real component the test needs is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKER_")}
    env.update({"TICKER_DATA_DIR": str(data_dir), "TICKER_LOG_FORMAT": "json",
                "TICKER_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"})
    return env


def run_cli(args: list[str], env: dict[str, str], *, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ticker", *args], env=env, input=input,
                          capture_output=True, text=True, timeout=timeout)


class ServerProcess:
    """``python -m ticker serve`` on a free port with its own data dir and log file."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None,
                 config: str | None = None, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.env = base_env(data_dir)
        self.env["TICKER_PORT"] = str(self.port)
        self.env["TICKER_HOST"] = "127.0.0.1"
        if config is not None:
            cfg = data_dir / "ticker.toml"
            data_dir.mkdir(parents=True, exist_ok=True)
            cfg.write_text(config, encoding="utf-8")
            self.env["TICKER_CONFIG"] = str(cfg)
        self.env.update(env or {})
        self.log_path = data_dir / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(list(args), self.env, input=input)

    def create_token(self, role: str = "editor", name: str = "tests") -> str:
        out = self.cli("tokens", "create", "--name", name, "--role", role)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def start(self, timeout: float = 20) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen([sys.executable, "-m", "ticker", "serve"],
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(
                self.url + "/healthz", timeout=1
            ) as resp:
                if resp.status == 200:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"server did not become healthy:\n{self.log()}")

    def stop(self, timeout: float = 15) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> ServerProcess:
        self.stop()
        return self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the server is not running"
        return self.proc.pid

    def rss_kib(self) -> int:
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")


@contextlib.contextmanager
def running_server(data_dir: Path, **kwargs: object) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir, **kwargs)  # type: ignore[arg-type]
    try:
        yield server.start()
    finally:
        server.stop()


def find_chromium(environ: Mapping[str, str] | None = None,
                  default: str = DEFAULT_CHROMIUM) -> str | None:
    """The Chromium executable the browser tests launch, or ``None``: ``TICKER_CHROMIUM``
    (or the older ``TICKER_TEST_CHROMIUM``) when set, else Debian's path, else PATH.
    The availability check and the launch both ask this, so they cannot disagree."""
    env = os.environ if environ is None else environ
    override = env.get("TICKER_CHROMIUM") or env.get("TICKER_TEST_CHROMIUM")
    if override:
        # An explicit choice is used or reported missing, never silently replaced.
        return override if Path(override).is_file() and os.access(override, os.X_OK) else None
    if os.access(default, os.X_OK):
        return default
    path = env.get("PATH", os.defpath)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def chromium_available() -> bool:
    return find_chromium() is not None
