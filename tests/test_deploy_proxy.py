"""deploy/haproxy.cfg in front of two real ``ticker serve`` processes: WebSocket upgrades
and SSE streams pass through it (SSE frames arrive as they are sent, not when a buffer
fills), and a node that stops is taken out of the balance by its /healthz check.

The file is used as written, except what only Docker provides: the listening address, the
nodes' addresses (here 127.0.0.1 ports, there the compose services), Docker's DNS, and the
descriptor limit that compose raises for ``maxconn``. The
nodes are embedded ones (SQLite, ``memory://``): each has its own feed, which is enough to
see the proxy carry it; the feed across nodes is the Redis broker's test.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support import ServerProcess, free_port, need

ROOT = Path(__file__).resolve().parent.parent


def local_config(text: str, port: int, nodes: dict[str, int]) -> str:
    """deploy/haproxy.cfg with 127.0.0.1 addresses instead of Docker's names and DNS."""
    text = re.sub(r"^resolvers docker\n(?:[ \t]+.*\n|[ \t]*#.*\n)*", "", text, flags=re.M)
    text = text.replace(" resolvers docker", "")
    # compose raises the proxy's descriptor limit (ulimits); this machine's stays lower
    text, n = re.subn(r"^(\s*maxconn) \d+", r"\1 4000", text, flags=re.M)
    assert n == 1
    text = re.sub(r"^(\s*)bind :8080\s*$", rf"\1bind 127.0.0.1:{port}", text, flags=re.M)
    for name, node_port in nodes.items():
        text, n = re.subn(rf"^(\s*server {name}) {name}:8080 ", rf"\1 127.0.0.1:{node_port} ",
                          text, flags=re.M)
        assert n == 1, name
    assert "resolvers" not in text and ":8080" not in text
    return text


class Proxy:
    def __init__(self, config: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = config.with_suffix(".log")
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(config)],
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(self.log.read_text(errors="replace")) from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def stack(server_factory: Any, tmp_path: Path) -> Iterator[tuple[Proxy, list[ServerProcess]]]:
    need(shutil.which("haproxy") is not None, "haproxy is not installed")
    nodes = [server_factory(name) for name in ("node1", "node2")]
    for node in nodes:
        node.token = node.create_token()
        node.start()
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(local_config((ROOT / "deploy" / "haproxy.cfg").read_text(), port,
                                   {"node1": nodes[0].port, "node2": nodes[1].port}))
    proxy = Proxy(config, port)
    try:
        yield proxy, nodes
    finally:
        proxy.stop()


async def publish_everywhere(http: aiohttp.ClientSession, nodes: list[ServerProcess],
                             title: str) -> None:
    """Each node has its own feed here: publish on both, so whichever node the proxy chose
    for a client has the message."""
    for node in nodes:
        async with http.post(f"{node.url}/api/channels/headlines/messages",
                             json={"data": {"title": title}},
                             headers={"Authorization": f"Bearer {node.token}"}) as resp:
            assert resp.status == 201, await resp.text()


async def test_a_websocket_subscribes_and_receives_through_the_proxy(
        stack: tuple[Proxy, list[ServerProcess]]) -> None:
    proxy, nodes = stack
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(proxy.url.replace("http", "ws") + "/ws") as ws:
        await ws.send_json({"type": "subscribe", "channels": ["headlines"]})
        while (frame := await ws.receive_json(timeout=10))["type"] != "subscribed":
            pass
        await publish_everywhere(http, nodes, "through the proxy")
        while (frame := await ws.receive_json(timeout=10))["type"] != "message":
            pass
    assert frame["channel"] == "headlines"
    assert frame["data"]["title"] == "through the proxy"


async def next_sse_data(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    while True:
        line = (await asyncio.wait_for(resp.content.readline(), 10)).decode()
        if line.startswith("data: "):
            return dict(json.loads(line[6:]))


async def test_sse_frames_pass_the_proxy_as_they_are_sent(
        stack: tuple[Proxy, list[ServerProcess]]) -> None:
    proxy, nodes = stack
    async with aiohttp.ClientSession() as http, \
            http.get(f"{proxy.url}/sse?channels=headlines") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert (await next_sse_data(resp))["type"] == "subscribed"
        # Two small messages, one after the other: a buffering proxy would hold both (a few
        # hundred bytes) until its buffer filled or the stream ended.
        for n in range(2):
            await publish_everywhere(http, nodes, f"breaking {n}")
            event = await next_sse_data(resp)
            assert (event["type"], event["data"]["title"]) == ("message", f"breaking {n}")


async def test_a_stopped_node_leaves_the_balance_and_the_other_takes_every_request(
        stack: tuple[Proxy, list[ServerProcess]]) -> None:
    proxy, nodes = stack
    nodes[0].kill()
    async with aiohttp.ClientSession() as http:
        for _ in range(20):
            async with http.get(f"{proxy.url}/healthz") as resp:
                # retries + redispatch: even before the health check has noticed, a
                # refused connection is tried again on the live node
                assert resp.status == 200
        deadline = time.monotonic() + 30
        while "node1 is DOWN" not in proxy.log.read_text(errors="replace"):
            assert time.monotonic() < deadline, proxy.log.read_text(errors="replace")
            await asyncio.sleep(0.2)
        statuses = []
        for _ in range(20):
            async with http.get(f"{proxy.url}/healthz") as resp:
                statuses.append(resp.status)
    assert statuses == [200] * 20
