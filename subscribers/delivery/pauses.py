"""The per-push-service pause (429/503 ``Retry-After``) shared by every process.

Each process pauses an origin in its own engine at once (``Engine.pauses``, read for every
push, so it must stay a dict lookup). With a ``redis://`` broker the pause is also written
to Redis, one key per origin holding the Unix time the pause ends, expiring with it (PX),
and each process reads the others' every :data:`PULL_SECONDS`: a service that told one
worker to wait is left alone by all of them within a second. Without Redis (``memory://``,
one process) the pause stays in-process. Redis trouble never stops delivery: it is logged
once, and each process keeps honouring what it was told itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("ticker.push")

PREFIX = "ticker:push:pause:"
PULL_SECONDS = 1.0
# Keep the later of two pauses: a short Retry-After never shortens a long one.
SET_MAX = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 0
"""


def merge(local: dict[str, float], remote: dict[str, float]) -> None:
    """Fold the pauses read from Redis into the engine's (the later end wins; pure)."""
    for origin, until in remote.items():
        if until > local.get(origin, 0.0):
            local[origin] = until


class SharedPauses:
    """Mirrors ``local`` (the engine's pauses) through Redis; ``client`` is a
    ``redis.asyncio.Redis``."""

    def __init__(self, client: Any, local: dict[str, float], clock: Callable[[], float],
                 prefix: str = PREFIX) -> None:
        self.client, self.local, self.clock, self.prefix = client, local, clock, prefix
        self.pending: dict[str, float] = {}
        self.wake = asyncio.Event()
        self.failing = False

    def pause(self, origin: str, until: float) -> None:
        """The engine paused ``origin``: tell the others soon (synchronous, for the engine)."""
        self.pending[origin] = max(self.pending.get(origin, 0.0), until)
        self.wake.set()

    async def run(self) -> None:
        while True:
            self.wake.clear()
            await self.sync()
            with contextlib.suppress(TimeoutError):  # a pull is due in any case
                await asyncio.wait_for(self.wake.wait(), PULL_SECONDS)

    async def sync(self) -> None:
        """Write what this process learnt, read what the others did. Never raises."""
        try:
            await self.push()
            merge(self.local, await self.pull())
            self.failing = False
        except Exception as exc:  # redis' errors, OSError: either way, pause in-process
            if not self.failing:
                log.warning("shared push pauses unavailable; pausing in this process only",
                            extra={"error": str(exc)[:200]})
            self.failing = True

    async def push(self) -> None:
        pending, self.pending = self.pending, {}
        now = self.clock()
        for origin, until in pending.items():
            ms = int((until - now) * 1000)
            if ms > 0:
                await self.client.eval(SET_MAX, 1, self.prefix + origin, repr(until), ms)

    async def pull(self) -> dict[str, float]:
        keys = [key async for key in self.client.scan_iter(match=self.prefix + "*")]
        if not keys:
            return {}
        values = await self.client.mget(keys)
        out: dict[str, float] = {}
        for key, value in zip(keys, values, strict=True):
            if value is not None:
                name = key.decode() if isinstance(key, bytes) else str(key)
                out[name.removeprefix(self.prefix)] = float(value)
        return out
