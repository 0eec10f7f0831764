"""``ticker serve --processes N``: N server processes on one port (SO_REUSEPORT) under a
supervisor that restarts a dead one and stops all on SIGTERM; refused over memory://.

Above one process needs a shared broker: the tests that run two processes wait (skip) until
``broker_url = "redis://…"`` is accepted by the settings (BROKER's part of issue 10)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pydantic
import pytest
import websockets

from tests.support import ServerProcess, base_env, run_cli
from tests.test_feed_server import publish, until_type
from ticker.cluster.processes import RESTART_MAX, RESTART_MIN, STEADY_SECONDS, restart_delay
from ticker.settings import StorageSettings

REDIS_URL = "redis://127.0.0.1:6379/15"


def redis_broker_accepted() -> bool:
    try:
        StorageSettings(broker_url=REDIS_URL)
    except pydantic.ValidationError:
        return False
    return True


needs_redis_broker = pytest.mark.skipif(
    not redis_broker_accepted(),
    reason="broker_url redis:// is refused by ticker/settings.py until the Redis broker "
           "(issue 10, BROKER) is merged; serve --processes N > 1 needs it")


@pytest.mark.parametrize(("previous", "lived", "delay"), [
    (None, 0.1, RESTART_MIN),  # the first crash: soon
    (RESTART_MIN, 0.1, 2 * RESTART_MIN),  # crashing again at once: back off
    (8.0, 1.0, 16.0),
    (RESTART_MAX, 1.0, RESTART_MAX),  # never slower than this
    (RESTART_MAX, STEADY_SECONDS, RESTART_MIN),  # it had run well: soon again
])
def test_restart_delay_doubles_while_a_process_keeps_crashing(
        previous: float | None, lived: float, delay: float) -> None:
    assert restart_delay(previous, lived) == delay


def test_more_than_one_process_over_the_memory_broker_is_refused_in_one_line(
        tmp_path: Path) -> None:
    done = run_cli(["serve", "--processes", "2", "--port", "0"], base_env(tmp_path))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "ticker: error: --processes 2 needs a shared broker: memory:// keeps the feed inside "
        "one process; set TICKER_BROKER_URL=redis://host:6379/0"]


def health(server: ServerProcess) -> dict[str, Any]:
    with urllib.request.urlopen(server.url + "/healthz", timeout=10) as resp:
        return dict(json.loads(resp.read()))


def pids_answering(server: ServerProcess, tries: int = 60,
                   resets: bool = False) -> dict[int, dict[str, Any]]:
    """Which processes answer /healthz (a new connection each time: the kernel spreads).
    ``resets``: while a process has just died, a connection the kernel had queued on its
    socket is reset; that is tolerated then."""
    seen: dict[int, dict[str, Any]] = {}
    for _ in range(tries):
        try:
            body = health(server)
        except ConnectionResetError:
            if not resets:
                raise
            continue
        seen[body["pid"]] = body
    return seen


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@needs_redis_broker
def test_two_processes_share_the_port_a_killed_one_comes_back_and_sigterm_stops_all(
        tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "node", env={"TICKER_PROCESSES": "2",
                                                   "TICKER_BROKER_URL": REDIS_URL})
    server.start()
    try:
        first = pids_answering(server)
        assert len(first) == 2 and server.pid not in first  # children answer, not the parent
        assert sorted(b["scheduler"]["leader"] for b in first.values()) == [False, True]
        victim = next(iter(first))
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while set(now := pids_answering(server, 20, resets=True)) == set(first) or len(now) < 2:
            assert time.monotonic() < deadline, now
        assert victim not in now and len(now) == 2
        assert server.stop() == 0  # SIGTERM to the supervisor: graceful, exit 0
        assert not any(alive(pid) for pid in now)
    finally:
        server.stop()


@needs_redis_broker
async def test_a_publish_through_one_process_reaches_websocket_clients_on_both(
        tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "node", env={"TICKER_PROCESSES": "2",
                                                   "TICKER_BROKER_URL": REDIS_URL})
    server.start()
    server.token = server.create_token()  # type: ignore[attr-defined]
    clients = []
    try:
        for _ in range(16):
            ws = await websockets.connect(server.ws_url)
            clients.append(ws)
            await ws.send(json.dumps({"type": "subscribe", "channels": ["headlines"]}))
            await until_type(ws, "subscribed")
        spread = {pid: body["connections"]
                  for pid, body in (await asyncio.to_thread(pids_answering, server)).items()}
        assert len(spread) == 2 and all(spread.values()), spread  # clients on both
        status, _ = await publish(server, {"title": "Polls close at eight"})
        assert status == 201
        for ws in clients:
            frame = await until_type(ws, "message")
            assert frame["data"]["title"] == "Polls close at eight"
    finally:
        for ws in clients:
            await ws.close()
        server.stop()
