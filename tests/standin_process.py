"""The push-service stand-in in a process of its own, for tests that kill the server: it
outlives every kill and counts what it accepted per subscriber.

``python -m tests.standin_process --key VAPID_PUBLIC_KEY --count N --out FILE`` makes N
browser-like subscribers (their subscriptions as JSON lines in FILE), serves the stand-in
(:class:`subscribers.testing.PushServiceStandIn`: VAPID verified, every body decrypted)
and a control port whose ``GET /stats`` answers ``{"requests": n, "accepted": {token: n}}``;
it prints ``{"origin": ..., "control": ...}`` once both listen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from pathlib import Path

from aiohttp import web

from subscribers.testing import PushServiceStandIn


def stats(ps: PushServiceStandIn) -> dict[str, object]:
    accepted = Counter(a.token for a in ps.arrivals if a.status < 300 and a.payload)
    return {"requests": len(ps.arrivals), "accepted": dict(accepted),
            "rejections": len(ps.rejections)}


async def serve(key: str, count: int, out: Path) -> None:
    async with PushServiceStandIn() as ps:
        subs = [ps.subscribe(key) for _ in range(count)]
        lines = "".join(json.dumps(s.subscription()) + "\n" for s in subs)
        await asyncio.to_thread(out.write_text, lines)
        control = web.Application()

        async def get_stats(_request: web.Request) -> web.Response:
            return web.json_response(stats(ps))

        control.router.add_get("/stats", get_stats)
        runner = web.AppRunner(control, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(json.dumps({"origin": ps.origin, "control": f"http://127.0.0.1:{port}"}),
              flush=True)
        try:
            await asyncio.Event().wait()  # until the test terminates the process
        finally:
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.key, args.count, args.out))


if __name__ == "__main__":
    main()
