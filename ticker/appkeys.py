"""Typed keys for everything the app holds (one place, so handlers share one vocabulary)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from ticker.clientaddr import Network
    from ticker.db import Database
    from ticker.feed.channels import Hub
    from ticker.metrics import Metrics
    from ticker.publisher import Publisher
    from ticker.settings import Settings
    from ticker.sources.poller import SourceState
    from ticker.ws import Connections


settings: web.AppKey[Settings] = web.AppKey("settings")
metrics: web.AppKey[Metrics] = web.AppKey("metrics")
hub: web.AppKey[Hub] = web.AppKey("hub")
publisher: web.AppKey[Publisher] = web.AppKey("publisher")
connections: web.AppKey[Connections] = web.AppKey("connections")
database: web.AppKey[Database] = web.AppKey("database")
scheduler: web.AppKey[AsyncIOScheduler] = web.AppKey("scheduler")
http_client = web.AppKey("http_client", aiohttp.ClientSession)
# Parts that report on /healthz: name -> a function returning that part's status object
# ({"status": "ok" | "off" | "degraded", ...}).
health_checks: web.AppKey[dict[str, Callable[[], dict[str, Any]]]] = web.AppKey("health_checks")
# The data sources' poll state by source name (ETag, last good values, stale flag).
source_states: web.AppKey[dict[str, SourceState]] = web.AppKey("source_states")
started_at = web.AppKey("started_at", datetime)
# settings.trusted_proxies, parsed once (see ticker.clientaddr).
trusted_proxies: web.AppKey[tuple[Network, ...]] = web.AppKey("trusted_proxies")
