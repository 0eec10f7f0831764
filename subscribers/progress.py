"""Live alert counts for the console: the status object on channel ``console:alerts``.

Whoever changes an alert (the API on create, schedule, cancel; the runner on start, expiry,
the end of a pass and the finish; DELIVERY's engine after each batch) calls the publisher
with the alert's id. It publishes that alert's status at most once per ``interval`` (a
100,000-reader send would otherwise publish thousands of frames a second to every console),
and a call arriving while a publish waits is folded into it. The status is read when the
publish happens, not when it was asked for, so the last frame always shows the final state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

log = logging.getLogger("ticker.push")

CHANNEL = "console:alerts"
INTERVAL = 0.25  # at most ~4 frames a second per alert: faster than an editor reads counts
# Alerts whose last publish is older than an interval need no entry to throttle them.
FORGET_AFTER = 1000


def wait_before(last: float | None, now: float, interval: float) -> float:
    """Seconds to wait before the next publish of one alert (pure)."""
    return 0.0 if last is None else max(0.0, last + interval - now)


class ProgressPublisher:
    def __init__(self, status: Callable[[int], Awaitable[dict[str, Any] | None]],
                 publish: Callable[[str, Mapping[str, Any]], Awaitable[Any]], *,
                 interval: float = INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._status, self._publish = status, publish
        self._interval, self._clock = interval, clock
        self._last: dict[int, float] = {}
        self._dirty: set[int] = set()
        self._tasks: dict[int, asyncio.Task[None]] = {}

    def __call__(self, alert_id: int) -> None:
        """The alert changed: publish its status soon (synchronous, for any caller)."""
        self._dirty.add(alert_id)
        if alert_id not in self._tasks:
            self._forget_old()
            self._tasks[alert_id] = asyncio.get_running_loop().create_task(self._run(alert_id))

    async def flush(self) -> None:
        """Wait until every asked-for publish has happened (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _run(self, alert_id: int) -> None:
        try:
            while alert_id in self._dirty:
                wait = wait_before(self._last.get(alert_id), self._clock(), self._interval)
                if wait:
                    await asyncio.sleep(wait)
                self._dirty.discard(alert_id)
                body = await self._status(alert_id)
                self._last[alert_id] = self._clock()
                if body is not None:
                    await self._publish(CHANNEL, body)
        except Exception:
            # Live counts are a convenience: the status route stays the truth.
            log.exception("publishing alert progress failed", extra={"alert": alert_id})
        finally:
            self._dirty.discard(alert_id)
            del self._tasks[alert_id]

    def _forget_old(self) -> None:
        if len(self._last) > FORGET_AFTER:
            now = self._clock()
            self._last = {k: t for k, t in self._last.items() if now - t < self._interval}
