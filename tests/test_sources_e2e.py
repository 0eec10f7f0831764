"""A real ``ticker serve`` polls a real HTTP origin and feeds ``data:covid19`` to a client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection, connect
from yarl import URL

from tests.origin import MALFORMED, VALUES, Origin
from tests.support import ServerProcess


async def next_data(ws: ClientConnection, channel: str) -> dict[str, Any]:
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == "message" and frame["channel"] == channel:
            data: dict[str, Any] = frame["data"]
            return data


async def test_served_data_ticker_turns_stale_on_a_malformed_document_and_healthz_says_why(
    origin: Origin, server_factory: Any
) -> None:
    config = f"""
feeds_allow_private = ["{URL(origin.url).origin()}"]

[[sources]]
name = "covid19"
url = "{origin.url}"
format = "jhu-csse-daily"
interval = 1
attribution = "JHU CSSE"
timeout = 2
"""
    srv: ServerProcess = server_factory(config=config)
    # Started from a thread: the origin runs on this test's event loop and must keep
    # answering while the server polls it during startup.
    await asyncio.to_thread(srv.start)
    async with connect(srv.ws_url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channels": ["data:covid19"]}))
        async with asyncio.timeout(10):
            first = await next_data(ws, "data:covid19")
        assert first == {"source": "covid19", "values": VALUES, "as_of": "2021-07-19T04:21:10Z",
                         "attribution": "JHU CSSE", "stale": False}

        origin.body = MALFORMED
        async with asyncio.timeout(10):
            assert await next_data(ws, "data:covid19") == {**first, "stale": True}

    async with aiohttp.ClientSession() as client:
        async with client.get(srv.url + "/healthz") as resp:
            assert resp.status == 200  # degraded, not down: the feed still serves
            health = await resp.json()
        assert health["status"] == "degraded"
        [failing] = health["sources"]["failing"]
        assert failing["name"] == "covid19"
        assert failing["reason"].startswith("last fetch failed: malformed: line 3")
        assert "sample" not in health["sources"]  # a configured covid19 replaces the sample
        async with client.get(srv.url + "/metrics") as resp:
            metrics = await resp.text()
    assert ('ticker_source_fetch_errors_total{reason="malformed",source="covid19"}'
            in metrics)
    warnings = [json.loads(line) for line in srv.log().splitlines()
                if line.startswith("{") and "source fetch failed" in line]
    assert warnings and warnings[0]["source"] == "covid19"
    assert warnings[0]["reason"] == "malformed"
