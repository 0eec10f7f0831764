"""The real server process starts, answers health checks and stops gracefully; fresh, it
already feeds README's embed (``data:covid19``) from the offline sample."""

from __future__ import annotations

import asyncio
import json
import urllib.request

from websockets.asyncio.client import connect

from tests.support import ServerProcess
from ticker.sources import sample


def test_server_process_serves_healthz_and_stops_cleanly(server: ServerProcess) -> None:
    with urllib.request.urlopen(server.url + "/healthz") as resp:
        body = json.load(resp)
    assert body["status"] == "ok"
    assert body["sources"]["status"] == "ok" and "sample" in body["sources"]
    assert server.stop() == 0


async def test_a_fresh_server_answers_data_covid19_with_the_sample(server: ServerProcess) -> None:
    async with connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channels": ["data:covid19"]}))
        async with asyncio.timeout(10):
            subscribed = json.loads(await ws.recv())
            message = json.loads(await ws.recv())
    assert subscribed["type"] == "subscribed"
    assert message["type"] == "message" and message["channel"] == "data:covid19"
    assert message["data"] == {
        "source": "covid19", "attribution": "JHU CSSE", "stale": False, "sample": True,
        "values": {"confirmed": 190_417_528, "recovered": 125_377_069, "deaths": 4_088_864},
        "as_of": "2021-07-19T04:21:24Z", "note": sample.payload()["note"], "url": sample.URL}
