"""The feed across nodes: real ``ticker serve`` processes sharing the real Redis and PostgreSQL.

A client on node B sees what was published on node A, numbered alike; a client that drops from
A resumes on B without loss or duplicate (WebSocket and SSE); nodes ride out a Redis restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets

from tests.conftest import postgres_schema_url, redis_prefix_url
from tests.support import ServerProcess, base_env, free_port, need, run_cli
from tests.test_feed_server import publish, read_sse, recv_json, until_type


def shared_settings() -> Iterator[dict[str, str]]:
    """Settings that make two nodes one site: the same PostgreSQL schema and Redis prefix."""
    for database_url in postgres_schema_url():
        for broker_url in redis_prefix_url():
            yield {"TICKER_DATABASE_URL": database_url, "TICKER_BROKER_URL": broker_url}


@pytest.fixture
def shared_env() -> Iterator[dict[str, str]]:
    yield from shared_settings()


def two_nodes(server_factory: Any, env: dict[str, str]) -> tuple[ServerProcess, ServerProcess]:
    a = server_factory("a", env=env)
    a.token = a.create_token()
    a.start()
    b = server_factory("b", env=env).start()
    b.token = a.token  # one database: A's token is good on B
    return a, b


async def subscribe(ws: Any, channel: str, since: dict[str, Any] | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "subscribe", "channels": [channel]}
    if since is not None:
        frame["since"] = {channel: since}
    await ws.send(json.dumps(frame))
    return await until_type(ws, "subscribed", channel)


async def test_a_client_on_node_b_receives_what_node_a_published_numbered_alike(
    server_factory: Any, shared_env: dict[str, str]
) -> None:
    a, b = two_nodes(server_factory, shared_env)
    async with websockets.connect(a.ws_url) as on_a, websockets.connect(b.ws_url) as on_b:
        sub_a, sub_b = await subscribe(on_a, "headlines"), await subscribe(on_b, "headlines")
        assert (sub_a["epoch"], sub_a["offset"]) == (sub_b["epoch"], sub_b["offset"])
        sent = [(await publish(a if n % 2 == 0 else b, {"title": f"n{n}"}))[1] for n in range(6)]
        got_a = [await until_type(on_a, "message", "headlines") for _ in range(6)]
        got_b = [await until_type(on_b, "message", "headlines") for _ in range(6)]
    expected = [(s["epoch"], s["offset"], f"n{n}") for n, s in enumerate(sent)]
    assert [(m["epoch"], m["offset"], m["data"]["title"]) for m in got_a] == expected
    assert [(m["epoch"], m["offset"], m["data"]["title"]) for m in got_b] == expected
    assert [s["offset"] for s in sent] == list(range(sub_a["offset"] + 1, sub_a["offset"] + 7))


async def test_a_websocket_client_dropped_from_a_resumes_on_b_without_loss_or_duplicate(
    server_factory: Any, shared_env: dict[str, str]
) -> None:
    a, b = two_nodes(server_factory, shared_env)
    async with websockets.connect(b.ws_url) as watcher:
        await subscribe(watcher, "headlines")
        async with websockets.connect(a.ws_url) as on_a:
            await subscribe(on_a, "headlines")
            await publish(a, {"title": "seen"})
            seen = await until_type(on_a, "message", "headlines")
        for n in range(5):
            await publish(a, {"title": f"missed {n}"})
        # B has them once its own client has them (they travel through Redis).
        await until_type(watcher, "message", "headlines")
        while (await until_type(watcher, "message", "headlines"))["data"]["title"] != "missed 4":
            pass
    async with websockets.connect(b.ws_url) as on_b:
        sub = await subscribe(on_b, "headlines", {"epoch": seen["epoch"], "offset": seen["offset"]})
        replay = [await until_type(on_b, "message", "headlines") for _ in range(5)]
        await publish(a, {"title": "live"})
        live = await until_type(on_b, "message", "headlines")
        with pytest.raises(TimeoutError):
            await recv_json(on_b, wait=0.5)  # nothing twice
    assert sub["recovered"] is True and sub["epoch"] == seen["epoch"]
    assert [m["data"]["title"] for m in replay] == [f"missed {n}" for n in range(5)]
    assert [m["offset"] for m in replay] == list(range(seen["offset"] + 1, seen["offset"] + 6))
    assert (live["data"]["title"], live["offset"]) == ("live", seen["offset"] + 6)


async def test_an_sse_client_dropped_from_a_resumes_on_b_with_last_event_id(
    server_factory: Any, shared_env: dict[str, str]
) -> None:
    a, b = two_nodes(server_factory, shared_env)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{a.url}/sse?channels=headlines") as resp:
            await read_sse(resp, 1)
            await publish(a, {"title": "one"})
            (one,) = await read_sse(resp, 1)
        async with websockets.connect(b.ws_url) as watcher:
            await subscribe(watcher, "headlines")
            for title in ("two", "three"):
                await publish(a, {"title": title})
            while (await until_type(watcher, "message", "headlines"))["data"]["title"] != "three":
                pass
        async with http.get(f"{b.url}/sse?channels=headlines",
                            headers={"Last-Event-ID": one["id"]}) as resp:
            sub, two, three = await read_sse(resp, 3)
            await publish(b, {"title": "four"})
            (four,) = await read_sse(resp, 1)
    assert sub["data"]["recovered"] is True
    assert [e["data"]["data"]["title"] for e in (two, three, four)] == ["two", "three", "four"]
    epoch, offset = one["id"].split(":")
    assert [e["id"] for e in (two, three, four)] == [f"{epoch}:{int(offset) + k}"
                                                    for k in (1, 2, 3)]


# ---------------------------------------------------------------------- a Redis of our own


class OwnRedis:
    """A ``redis-server`` of this test's own on a free port, which it may kill and restart.
    Append-only with a sync per write, so a restart keeps what was published."""

    def __init__(self, folder: Path, password: str = "") -> None:
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        need(Path(exe).exists(), "redis-server is not installed")
        self.exe, self.folder, self.port = exe, folder, free_port()
        self.password = password
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             *(["--requirepass", self.password] if self.password else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                import socket

                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith((b"+PONG", b"-NOAUTH")):
                        return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path / "redis")
    server.start()
    yield server
    server.kill()


def health(server: ServerProcess) -> dict[str, Any]:
    with urllib.request.urlopen(server.url + "/healthz", timeout=5) as resp:
        body: dict[str, Any] = json.loads(resp.read())
    return body


async def until_broker(server: ServerProcess, status: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while health(server)["broker"]["status"] != status:
        assert time.monotonic() < deadline, f"broker never {status}: {health(server)}"
        await asyncio.sleep(0.1)


async def test_nodes_ride_out_a_redis_restart_keeping_their_clients(
    server_factory: Any, own_redis: OwnRedis, tmp_path: Path
) -> None:
    env = {"TICKER_BROKER_URL": own_redis.url,
           "TICKER_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}"}
    a, b = two_nodes(server_factory, env)
    assert health(b)["broker"] == {"status": "ok", "url": own_redis.url}
    async with websockets.connect(b.ws_url) as on_b:
        await subscribe(on_b, "headlines")
        _, before = await publish(a, {"title": "before"})
        assert (await until_type(on_b, "message", "headlines"))["offset"] == before["offset"]

        own_redis.kill()
        await until_broker(a, "degraded")
        await until_broker(b, "degraded")
        status, body = await publish(a, {"title": "while down"})
        assert status == 503 and body["error"]["code"] == "unavailable"

        own_redis.start()
        await until_broker(a, "ok")
        await until_broker(b, "ok")
        await publish(a, {"title": "after"})
        msg = await until_type(on_b, "message", "headlines")  # the same connection
    assert (msg["data"]["title"], msg["epoch"], msg["offset"]) == (
        "after", before["epoch"], before["offset"] + 1)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{b.url}/metrics") as resp:
            metrics_b = await resp.text()
        async with http.get(f"{a.url}/metrics") as resp:
            metrics_a = await resp.text()
    assert "ticker_broker_reconnects_total 1.0" in metrics_b
    assert "ticker_broker_publish_errors_total 1.0" in metrics_a
    outage_lines = [line for line in b.log().splitlines() if "broker unreachable" in line]
    assert len(outage_lines) == 1  # once per outage, not once per attempt


async def test_the_broker_password_is_never_shown_in_health_or_logs(
    server_factory: Any, tmp_path: Path
) -> None:
    password = "rds-pw-6c1e0f9a4b7d"
    own = OwnRedis(tmp_path / "redis", password=password)
    own.start()
    try:
        node = server_factory(env={"TICKER_BROKER_URL": own.url, "TICKER_LOG_LEVEL": "DEBUG"})
        node.token = node.create_token()
        node.start()
        shown = health(node)["broker"]
        assert shown == {"status": "ok", "url": f"redis://***@127.0.0.1:{own.port}/0"}
        assert (await publish(node, {"title": "through a password"}))[0] == 201
        own.kill()
        await until_broker(node, "degraded")
        assert (await publish(node, {"title": "refused"}))[0] == 503
        printed = node.cli("serve", "--print-config").stdout
    finally:
        own.kill()
    node.stop()
    assert "redis://" in printed and password not in printed
    out = node.log()
    assert "broker unreachable" in out and password not in out


def test_serve_with_an_unreachable_redis_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    env = {**base_env(tmp_path), "TICKER_PORT": "0",
           "TICKER_BROKER_URL": f"redis://:pw-9f3a1c@127.0.0.1:{port}/0"}
    out = run_cli(["serve"], env, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith(
        f"ticker: error: cannot reach the broker at redis://***@127.0.0.1:{port}/0")
    assert "pw-9f3a1c" not in out.stderr + out.stdout and "Traceback" not in out.stderr


@pytest.fixture(params=["memory", "redis"])
def backend_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """SQLite + memory://, then PostgreSQL + Redis: one server's settings on each backend."""
    if request.param == "memory":
        yield {"TICKER_DATABASE_URL": f"sqlite:///{tmp_path / 'ticker.db'}"}
    else:
        yield from shared_settings()


async def test_feed_scenarios_hold_through_a_server_on_each_backend(
    server_factory: Any, backend_env: dict[str, str]
) -> None:
    server = server_factory(env=backend_env)
    server.token = server.create_token()
    server.start()
    await publish(server, {"title": "banner"}, channel="breaking")
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channels": ["clock", "breaking"]}))
        clock = await until_type(ws, "message", "clock")
        banner = await until_type(ws, "message", "breaking")
        sub = await subscribe(ws, "headlines")
        sent = [(await publish(server, {"title": f"n{n}"}))[1] for n in range(5)]
        got = [await until_type(ws, "message", "headlines") for _ in range(5)]
    assert "iso" in clock["data"] and banner["data"]["title"] == "banner"
    assert [(m["offset"], m["data"]["title"]) for m in got] == [
        (s["offset"], f"n{n}") for n, s in enumerate(sent)]
    assert [m["offset"] for m in got] == list(range(sub["offset"] + 1, sub["offset"] + 6))
    for n in (5, 6):
        await publish(server, {"title": f"n{n}"})
    async with websockets.connect(server.ws_url) as ws:
        again = await subscribe(ws, "headlines", {"epoch": got[-1]["epoch"],
                                                  "offset": got[-1]["offset"]})
        missed = [await until_type(ws, "message", "headlines") for _ in range(2)]
        with pytest.raises(TimeoutError):
            await recv_json(ws, wait=0.5)
    assert again["recovered"] is True
    assert [m["data"]["title"] for m in missed] == ["n5", "n6"]
