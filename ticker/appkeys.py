"""Typed keys for everything the app holds (one place, so handlers share one vocabulary)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from datetime import datetime

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler  # noqa: F401

    from ticker.db import Database
    from ticker.feed.channels import Hub
    from ticker.metrics import Metrics
    from ticker.publisher import Publisher
    from ticker.settings import Settings
    from ticker.ws import Connections

settings = web.AppKey("settings", "Settings")
metrics = web.AppKey("metrics", "Metrics")
hub = web.AppKey("hub", "Hub")
publisher = web.AppKey("publisher", "Publisher")
connections = web.AppKey("connections", "Connections")
database = web.AppKey("database", "Database")
scheduler = web.AppKey("scheduler", "Any")
http_client = web.AppKey("http_client", aiohttp.ClientSession)
# Extensions (push, alerts) hang their services here by name.
services = web.AppKey("services", dict[str, Any])
started_at = web.AppKey("started_at", datetime)
