"""The pywebpush baselines of the push benchmark, run in a fresh process.

``python -m bench.push_baselines {loop|async} --keys FILE --count N --origin URL``
prints one JSON line: pushes, accepted, seconds, cpu_s (this process, user + system).

* ``loop``: ``webpush(subscription_info, data, vapid_private_key=..., vapid_claims=...)``
  once per subscriber, as pywebpush's README shows. It signs a VAPID JWT and opens a new
  connection (``requests.post``) for every message.
* ``async``: ``webpush_async`` with one shared ``aiohttp.ClientSession`` and at most 64
  requests in flight: the fastest way pywebpush offers. It still signs per message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
from pywebpush import webpush, webpush_async

CONCURRENCY = 64
SUBJECT = "mailto:bench@example.org"


def subscriptions(keys_file: Path, count: int, origin: str) -> list[dict[str, Any]]:
    subs = []
    for i, line in enumerate(keys_file.read_text().splitlines()[:count]):
        p256dh, auth = line.split()
        subs.append({"endpoint": f"{origin}/push/b{i}", "keys": {"p256dh": p256dh,
                                                                 "auth": auth}})
    return subs


def run_loop(subs: list[dict[str, Any]], data: str, private_key: str) -> int:
    ok = 0
    for sub in subs:
        resp = webpush(sub, data, vapid_private_key=private_key,
                       vapid_claims={"sub": SUBJECT}, ttl=3600)
        ok += getattr(resp, "status_code", 0) == 201
    return ok


async def run_async(subs: list[dict[str, Any]], data: str, private_key: str) -> int:
    gate = asyncio.Semaphore(CONCURRENCY)
    ok = 0
    async with aiohttp.ClientSession() as session:

        async def one(sub: dict[str, Any]) -> None:
            nonlocal ok
            async with gate:
                resp = await webpush_async(sub, data, vapid_private_key=private_key,
                                           vapid_claims={"sub": SUBJECT}, ttl=3600,
                                           aiohttp_session=session)
                ok += getattr(resp, "status", 0) == 201

        await asyncio.gather(*(one(s) for s in subs))
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["loop", "async"])
    parser.add_argument("--keys", type=Path, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--origin", required=True)
    parser.add_argument("--private-key", required=True, help="VAPID key, base64url raw")
    parser.add_argument("--data", required=True)
    args = parser.parse_args()
    subs = subscriptions(args.keys, args.count, args.origin)
    cpu0, t0 = time.process_time(), time.perf_counter()
    if args.mode == "loop":
        ok = run_loop(subs, args.data, args.private_key)
    else:
        ok = asyncio.run(run_async(subs, args.data, args.private_key))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    print(json.dumps({"pushes": len(subs), "accepted": ok, "seconds": seconds, "cpu_s": cpu}))


if __name__ == "__main__":
    main()
