"""What the push routes share, held on the app under :data:`PUSH`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from subscribers.delivery.engine import Clock, Engine
from subscribers.delivery.runner import AlertRunner
from subscribers.errors import PushUnavailable
from subscribers.metrics import PushMetrics
from subscribers.pushclient.endpoints import AllowList
from subscribers.ratelimit import RateLimiter


@dataclass
class PushService:
    allow: AllowList
    clock: Clock
    subscribe_limiter: RateLimiter
    receipt_limiter: RateLimiter
    metrics: PushMetrics
    # None while push is off (production without a VAPID subject): routes answer 503.
    engine: Engine | None = None
    runner: AlertRunner | None = None
    disabled_reason: str = "Web Push is starting."
    # Publishes an alert's status on console:alerts (subscribers.progress); None while off.
    progress: Callable[[int], None] | None = None

    def running(self) -> tuple[Engine, AlertRunner]:
        if self.engine is None or self.runner is None:
            raise PushUnavailable(self.disabled_reason)
        return self.engine, self.runner

    def changed(self, alert_id: int, *, wake: bool = False) -> None:
        """An alert was created, scheduled or cancelled: tell the console, wake the runner."""
        if wake and self.runner is not None:
            self.runner.wake()
        if self.progress is not None:
            self.progress(alert_id)


PUSH = web.AppKey("push", PushService)
