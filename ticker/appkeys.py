"""Typed keys for everything the app holds (one place, so handlers share one vocabulary)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from ticker.broker.base import Broker
    from ticker.cluster.leader import Leader
    from ticker.console.limits import LoginLimits
    from ticker.feed.channels import Hub
    from ticker.feed.connections import Connections
    from ticker.feed.publisher import Publisher
    from ticker.metrics import Metrics
    from ticker.net.client import PublicClient
    from ticker.newsroom.articles import Article
    from ticker.newsroom.feeds.schedule import FeedJobs
    from ticker.newsroom.feeds.state import FeedState
    from ticker.newsroom.ingest import Newsroom
    from ticker.settings import Settings
    from ticker.sources.state import SourceState
    from ticker.storage.database import Database
    from ticker.storage.migrations import Migration
    from ticker.web.clientaddr import Network


settings: web.AppKey[Settings] = web.AppKey("settings")
metrics: web.AppKey[Metrics] = web.AppKey("metrics")
hub: web.AppKey[Hub] = web.AppKey("hub")
publisher: web.AppKey[Publisher] = web.AppKey("publisher")
# The feed's broker (memory:// or redis://, from settings.storage.broker_url).
broker: web.AppKey[Broker] = web.AppKey("broker")
connections: web.AppKey[Connections] = web.AppKey("connections")
database: web.AppKey[Database] = web.AppKey("database")
# Every part's migrations, run when the database opens; a part plugged in adds its own.
migrations: web.AppKey[list[Migration]] = web.AppKey("migrations")
# The leader's scheduler (feeds, data sources): paused while this node does not lead.
scheduler: web.AppKey[AsyncIOScheduler] = web.AppKey("scheduler")
# Whether this node leads the scheduler, and by which lock (ticker.cluster.leader).
leader: web.AppKey[Leader] = web.AppKey("leader")
# This process's place under ``serve --processes N`` (0 when alone).
process_index = web.AppKey("process_index", int)
# Every outgoing fetch of the node (feeds, data sources): public addresses only.
http_client: web.AppKey[PublicClient] = web.AppKey("http_client")
# Parts that report on /healthz: name -> a function returning that part's status object
# ({"status": "ok" | "off" | "degraded", ...}).
health_checks: web.AppKey[dict[str, Callable[[], dict[str, Any]]]] = web.AppKey("health_checks")
# The data sources' poll state by source name (ETag, last good values, stale flag).
source_states: web.AppKey[dict[str, SourceState]] = web.AppKey("source_states")
# The console's login attempt limits (per account, per address), in memory.
login_limits: web.AppKey[LoginLimits] = web.AppKey("login_limits")
# The push topics the console offers (set where push is plugged in; () without push).
push_topics: web.AppKey[tuple[str, ...]] = web.AppKey("push_topics")
started_at = web.AppKey("started_at", datetime)
# settings.server.trusted_proxies, parsed once (see ticker.web.clientaddr).
trusted_proxies: web.AppKey[tuple[Network, ...]] = web.AppKey("trusted_proxies")
# Articles in (webhook, feeds), routed to the headlines channels.
newsroom: web.AppKey[Newsroom] = web.AppKey("newsroom")
# The polled feeds' state by feed name (validators, failures, backoff), for /healthz and
# GET /api/feeds.
feed_states: web.AppKey[dict[str, FeedState]] = web.AppKey("feed_states")
# The feed jobs of this node (None until the scheduler starts).
feed_jobs: web.AppKey[FeedJobs] = web.AppKey("feed_jobs")
# Article -> push alert, (article, actor) -> alert id: registered by Web Push when it runs
# (subscribers/setup.py); absent, breaking articles cannot be alerted.
article_alerts: web.AppKey[Callable[[Article, str], Awaitable[int]]] = web.AppKey(
    "article_alerts")
