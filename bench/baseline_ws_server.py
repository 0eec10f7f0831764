"""The baseline: a minimal ``websockets`` server broadcasting the way its docs recommend.

Clients connect to ``/ws`` and send the same subscribe frame as to ticker
(``{"type": "subscribe", "channels": [...]}``); they get ``subscribed`` back and join one
set of connections. A publisher connects to ``/publish`` and sends ``{"data": {...}}``
frames; each one is wrapped in ticker's message envelope, serialised once and handed to
``websockets.broadcast(connections, text)``, which writes to every connection without
waiting and skips connections whose buffers are full (the docs' advice for fan-out).

``python -m bench.baseline_ws_server --port P`` prints ``ready`` when listening.
Keep-alive pings every 30 s, as ticker's ``ws_heartbeat_seconds`` default, so that both
servers pay for the same keep-alive traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.common import raise_nofile

KEEPALIVE_SECONDS = 30.0


class Broadcaster:
    def __init__(self) -> None:
        self.subscribers: set[ServerConnection] = set()
        self.epoch = secrets.token_hex(4)
        self.offset = 0

    async def handler(self, ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path == "/publish":
            await self._publisher(ws)
            return
        try:
            async for raw in ws:
                frame: Any = json.loads(raw)
                if isinstance(frame, dict) and frame.get("type") == "subscribe":
                    self.subscribers.add(ws)
                    for name in frame.get("channels", []):
                        await ws.send(json.dumps({
                            "type": "subscribed", "channel": name, "epoch": self.epoch,
                            "offset": self.offset, "recovered": True}))
        finally:
            self.subscribers.discard(ws)

    async def _publisher(self, ws: ServerConnection) -> None:
        async for raw in ws:
            body = json.loads(raw)
            self.offset += 1
            text = json.dumps({"type": "message", "channel": "headlines", "epoch": self.epoch,
                               "offset": self.offset, "data": body["data"]},
                              separators=(",", ":"), ensure_ascii=False)
            broadcast(self.subscribers, text)


async def run(host: str, port: int) -> None:
    raise_nofile()
    broadcaster = Broadcaster()
    async with serve(broadcaster.handler, host, port, ping_interval=KEEPALIVE_SECONDS,
                     compression=None) as server:
        print("ready", flush=True)
        await server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
