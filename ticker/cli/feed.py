"""``ticker tail`` and ``ticker publish``: the feed from a terminal."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
from typing import Any

import aiohttp
import websockets

from ticker.cli.errors import reaching
from ticker.settings import Secret, Settings


def register(sub: Any) -> None:
    t = sub.add_parser("tail", help="print a channel's messages as JSON lines",
                       description="Connect over WebSocket and print each message as one JSON "
                                   "line; reconnects and resumes by itself.")
    t.add_argument("channels", nargs="+", metavar="CHANNEL")
    t.add_argument("--server", "--url", dest="server", metavar="URL",
                   help="server URL (default http://HOST:PORT, env TICKER_URL)")
    t.add_argument("--count", type=int, default=0, help="stop after this many messages")
    t.add_argument("--all-frames", action="store_true",
                   help="print every frame (subscribed, errors), not only messages")
    t.set_defaults(run=lambda a, s: asyncio.run(tail(a, s)), overrides=lambda a: {"url": a.server})

    p = sub.add_parser("publish", help="publish one ticker item",
                       description="Publish one item on a channel through the HTTP API.")
    p.add_argument("channel", metavar="CHANNEL")
    p.add_argument("--json", required=True, dest="data", help='the item, e.g. \'{"title": "…"}\'')
    p.add_argument("--server", "--url", dest="server", metavar="URL",
                   help="server URL (default http://HOST:PORT, env TICKER_URL)")
    p.add_argument("--token", help="API token (env TICKER_API_TOKEN)")
    p.set_defaults(run=lambda a, s: asyncio.run(publish(a, s)),
                   overrides=lambda a: {"url": a.server, "api_token": a.token})


def ws_url(http_url: str) -> str:
    return "ws" + http_url.removeprefix("http") + "/ws"


async def tail(args: argparse.Namespace, settings: Settings) -> int:
    positions: dict[str, dict[str, Any]] = {}
    seen = 0
    delay = 0.5
    connected = False
    while True:
        try:
            # A server never reached is a wrong URL or a server that is down: say so and
            # stop. Once connected, a drop is a restart or the network: resume quietly.
            with reaching(settings.server_url) if not connected else contextlib.nullcontext():
                conn = await websockets.connect(ws_url(settings.server_url), max_size=2**22)
            connected = True
            async with conn:
                delay = 0.5
                await conn.send(json.dumps({"type": "subscribe", "channels": args.channels,
                                            "since": positions}))
                async for raw in conn:
                    frame = json.loads(raw)
                    kind = frame.get("type")
                    if kind in ("subscribed", "message"):
                        positions[frame["channel"]] = {"epoch": frame["epoch"],
                                                       "offset": frame["offset"]}
                    if kind == "error" and frame.get("code") in ("unknown_channel",
                                                                  "invalid_channel"):
                        print(f"ticker: error: {frame['message']}", file=sys.stderr)
                        return 2
                    if kind == "message" or args.all_frames:
                        print(json.dumps(frame, ensure_ascii=False), flush=True)
                    if kind == "message":
                        seen += 1
                        if args.count and seen >= args.count:
                            return 0
        except (OSError, websockets.ConnectionClosed) as exc:
            print(f"ticker: disconnected ({exc}); reconnecting in {delay:.1f}s",
                  file=sys.stderr)
        await asyncio.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 30.0)


async def publish(args: argparse.Namespace, settings: Settings) -> int:
    try:
        data = json.loads(args.data)
    except ValueError as exc:
        raise ValueError(f"--json is not valid JSON: {exc}") from None
    token = settings.client.api_token
    if not isinstance(token, Secret) or not token:
        raise ValueError("an API token is needed: --token or TICKER_API_TOKEN "
                         "(create one with 'ticker tokens create')")
    url = f"{settings.server_url}/api/channels/{args.channel}/messages"
    with reaching(settings.server_url):
        async with aiohttp.ClientSession() as session, session.post(
            url, json={"data": data},
            headers={"Authorization": f"Bearer {token.reveal()}"},
        ) as resp:
            body = await resp.json(content_type=None)
    if resp.status >= 400:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        raise ValueError(f"{resp.status} {err.get('code', '')}: {err.get('message', body)}")
    print(json.dumps(body))
    return 0
