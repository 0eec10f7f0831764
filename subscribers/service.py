"""What the push routes share, held on the app under :data:`PUSH`."""

from __future__ import annotations

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

    def running(self) -> tuple[Engine, AlertRunner]:
        if self.engine is None or self.runner is None:
            raise PushUnavailable(self.disabled_reason)
        return self.engine, self.runner


PUSH = web.AppKey("push", PushService)
