"""``setup_push(app)``: the push routes and the lifetime of keys, session, engine, runner."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from subscribers.crypto import vapid
from subscribers.delivery.engine import SystemClock
from subscribers.delivery.node import delivering
from subscribers.editorial.articles import article_hook
from subscribers.metrics import PushMetrics
from subscribers.migrations import MIGRATIONS
from subscribers.progress import CHANNEL
from subscribers.pushclient.endpoints import AllowList
from subscribers.ratelimit import RateLimiter
from subscribers.service import PUSH, PushService
from subscribers.settings import PushSettings
from subscribers.web import api
from subscribers.web.pages import setup_pages
from ticker import appkeys
from ticker.settings import Settings

log = logging.getLogger("ticker.push")

RECEIPTS_PER_MINUTE = 600.0  # a reader's worker posts two per alert; this only stops floods


def vapid_subject(settings: Settings) -> str | None:
    """The VAPID ``sub`` to use, or None when push must stay off (production, unset)."""
    subject = settings.part(PushSettings).vapid_subject
    if subject:
        return subject
    if settings.server.mode == "demo":
        log.warning("push: TICKER_VAPID_SUBJECT is not set; demo mode uses %r, which real "
                    "push services may refuse. Set TICKER_VAPID_SUBJECT=mailto:you@example.org",
                    vapid.DEMO_SUBJECT, extra={"vapid_subject": vapid.DEMO_SUBJECT})
        return vapid.DEMO_SUBJECT
    return None


async def _push_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, push = app[appkeys.settings], app[PUSH]
    subject = vapid_subject(settings)
    config = settings.part(PushSettings)
    if subject is None:
        push.disabled_reason = ("Web Push is off: TICKER_VAPID_SUBJECT (mailto: or https:) "
                                "must be set in production mode.")
        log.error("push refuses to start: %s", push.disabled_reason)
        yield
        return
    exact = frozenset(h for h, _ in push.allow.http_exact)
    async with delivering(app[appkeys.database], config, subject, push.clock, push.metrics,
                          app[appkeys.publisher].publish, exact,
                          settings.storage.broker_url) as running:
        push.engine, push.runner, push.progress = (running.engine, running.runner,
                                                   running.progress)
        try:
            yield
        finally:
            push.engine = push.runner = push.progress = None
            push.disabled_reason = "Web Push is shutting down."


def setup_push(app: web.Application) -> None:
    """Register the push routes and their lifetime; call after the database's cleanup_ctx."""
    config = app[appkeys.settings].part(PushSettings)
    app[PUSH] = PushService(
        allow=AllowList.parse(config.push_allowed_hosts), clock=SystemClock(),
        subscribe_limiter=RateLimiter(config.push_subscribe_rate_per_minute),
        receipt_limiter=RateLimiter(RECEIPTS_PER_MINUTE),
        metrics=PushMetrics(app[appkeys.metrics].registry))
    app[appkeys.migrations].extend(MIGRATIONS)
    # Live alert counts; CONSOLE makes console:* channels need a console session.
    app[appkeys.hub].add_channel(CHANNEL)
    if config.vapid_subject or app[appkeys.settings].server.mode == "demo":
        # Absent while push is off: NEWS then says that alerts are unavailable.
        app[appkeys.article_alerts] = article_hook(app)
    app.cleanup_ctx.append(_push_ctx)
    app[appkeys.health_checks]["push"] = lambda: push_health(app[PUSH])
    api.add_routes(app)
    setup_pages(app)  # /push.js and /sw.js


def push_health(push: PushService) -> dict[str, Any]:
    """Push's part of /healthz: off (and why), or which services refuse our VAPID keys."""
    if push.engine is None:
        return {"status": "off", "reason": push.disabled_reason}
    refused = sorted(push.engine.vapid_rejected_by)
    if refused:
        return {"status": "degraded", "vapid_rejected_by": refused,
                "reason": "push services answer 401/403: check TICKER_VAPID_SUBJECT and keys"}
    return {"status": "ok"}
