"""The application factory: ``create_app(settings)`` wires every part and its lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from subscribers.settings import PushSettings
from subscribers.setup import setup_push
from ticker import appkeys
from ticker.broker import open_broker
from ticker.broker.history import MIGRATION as FEED_HISTORY
from ticker.cluster.leader import Leader, choose_lock
from ticker.console import admin, page, routes
from ticker.console.limits import Buckets, LoginLimits
from ticker.errors import error_middleware
from ticker.feed import names, sse, ws
from ticker.feed.channels import Hub, deliver_each
from ticker.feed.clock import tick_clock
from ticker.feed.connections import Connections
from ticker.feed.fanout import Fanout
from ticker.feed.publisher import Publisher
from ticker.metrics import Metrics
from ticker.net.addresses import Exempt
from ticker.net.client import PublicClient
from ticker.newsroom.setup import setup_newsroom
from ticker.settings import Settings
from ticker.sources import sample
from ticker.sources.state import SourceState, sources_health
from ticker.storage import open_database
from ticker.storage.migrations import MIGRATIONS, Migration
from ticker.web import api, health, openapi, pages
from ticker.web.clientaddr import parse_networks

log = logging.getLogger("ticker.app")

def feed_channels(settings: Settings) -> list[str]:
    sample_source = [sample.NAME] if sample.enabled(settings) else []
    # The configured feeds' headlines:<language> and headlines:<category> exist from the
    # start, outside the cap on channels clients make by naming them.
    keys = dict.fromkeys(k for f in settings.feeds for k in (f.language, f.category) if k)
    return [*names.feed_channels([*(s.name for s in settings.sources), *sample_source]),
            *(names.headlines_channel(k) for k in keys)]


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.settings]
    migrations: list[Migration] = app[appkeys.migrations]
    app[appkeys.database] = await open_database(settings.storage.database_url_resolved, migrations)
    yield
    await app[appkeys.database].close()


async def _broker_ctx(app: web.Application) -> AsyncIterator[None]:
    # After the database (the embedded broker keeps its history there), before anything
    # publishes (the scheduler ticks the clock at start).
    broker = app[appkeys.broker]
    await broker.start(app[appkeys.database])
    yield
    await broker.close()


async def _http_client_ctx(app: web.Application) -> AsyncIterator[None]:
    # One client for every outgoing fetch of the node (feeds, sources): public addresses
    # only, but for the origins the operator exempted.
    exempt = Exempt.parse(app[appkeys.settings].newsroom.feeds_allow_private)
    app[appkeys.http_client] = PublicClient(exempt)
    yield
    await app[appkeys.http_client].close()


async def _scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.settings]
    publisher = app[appkeys.publisher]
    # Feeds and sources run on the leader's scheduler, paused on every other node (see
    # ticker.cluster.leader). The clock ticks on every node of its own broker; over a
    # shared broker (redis://) only the leader ticks, or every client would get one tick a
    # minute from each node.
    shared = not settings.storage.broker_url.startswith("memory://")
    clock = AsyncIOScheduler(timezone="UTC")
    scheduler = AsyncIOScheduler(timezone="UTC")
    app[appkeys.scheduler] = scheduler
    label = settings.server.clock_zone_label
    (scheduler if shared else clock).add_job(
        tick_clock, CronTrigger(second=0, timezone="UTC"),
        args=(publisher, settings.server.timezone, label), id="clock",
        misfire_grace_time=30, coalesce=True, max_instances=1)
    clock.start()
    scheduler.start(paused=True)
    leader = Leader(choose_lock(settings.storage.database_url_resolved,
                                app[appkeys.process_index]),
                    lambda leads: scheduler.resume() if leads else scheduler.pause())
    app[appkeys.leader] = leader
    await leader.start()
    if not shared or leader.leading:
        # The current time first, so the clock channel has a value from the start (over a
        # shared broker the other nodes hand out the leader's latest value).
        await tick_clock(publisher, settings.server.timezone, label)
    if settings.sources:
        from ticker.sources.poller import schedule_sources

        await schedule_sources(app, scheduler, poll_now=leader.leading)
    if sample.enabled(settings) and (not shared or leader.leading):
        # Once: the sample never changes and is never fetched (see ticker.sources.sample).
        await publisher.publish(f"data:{sample.NAME}", sample.payload())
    yield
    await leader.stop()
    scheduler.shutdown(wait=False)
    clock.shutdown(wait=False)


def _scheduler_health(app: web.Application) -> dict[str, Any]:
    leader = app.get(appkeys.leader)
    return {"status": "off"} if leader is None else leader.health()


async def _heartbeat_ctx(app: web.Application) -> AsyncIterator[None]:
    interval = app[appkeys.settings].feed.ws_heartbeat_seconds
    task = (asyncio.create_task(ws.heartbeat(app[appkeys.connections], interval))
            if interval > 0 else None)
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _on_shutdown(app: web.Application) -> None:
    conns = app[appkeys.connections]
    log.info("shutting down", extra={"connections": len(conns)})
    await ws.close_all(conns)
    await sse.close_all(conns.sse)


async def _fanout_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.settings]
    hub = app[appkeys.hub]
    fanout = Fanout(settings.feed.ws_writer_threads, app[appkeys.metrics],
                    settings.feed.ws_writer_min_subscribers)
    hub.fanout = fanout
    yield
    hub.fanout = deliver_each
    fanout.close()


def create_app(settings: Settings, *, process_index: int = 0) -> web.Application:
    """The app of one server process; ``process_index``: its place under
    ``serve --processes N`` (0 when alone), which decides leadership on SQLite."""
    app = web.Application(middlewares=[error_middleware],
                          client_max_size=max(settings.feed.publish_max_bytes, 64 * 1024))
    metrics = Metrics()
    hub = Hub(feed_channels(settings), max_size=settings.feed.history_size,
              max_age=settings.feed.history_seconds, clock=time.time,
              max_on_demand=settings.feed.headlines_channels_max)
    app[appkeys.settings] = settings
    app[appkeys.process_index] = process_index
    app[appkeys.metrics] = metrics
    app[appkeys.hub] = hub
    storage = settings.storage
    broker = open_broker(storage.broker_url, hub, metrics,
                         history_size=settings.feed.history_size,
                         history_seconds=settings.feed.history_seconds)
    app[appkeys.broker] = broker
    app[appkeys.publisher] = Publisher(broker, metrics)
    app[appkeys.connections] = Connections()
    app[appkeys.migrations] = [*MIGRATIONS, FEED_HISTORY]
    app[appkeys.health_checks] = {"broker": broker.health}
    app[appkeys.source_states] = {}
    sample_note = (f"data:{sample.NAME} is an offline sample (JHU CSSE, 18 July 2021)"
                   if sample.enabled(settings) else None)
    states: dict[str, SourceState] = app[appkeys.source_states]
    app[appkeys.health_checks]["scheduler"] = lambda: _scheduler_health(app)
    app[appkeys.health_checks]["sources"] = lambda: sources_health(states, sample_note)
    app[appkeys.started_at] = datetime.now(UTC)
    app[appkeys.trusted_proxies] = parse_networks(settings.server.trusted_proxies)
    window = 15 * 60.0  # the login limits' window (see ConsoleSettings)
    app[appkeys.login_limits] = LoginLimits(
        Buckets(settings.console.login_attempts_per_account, window),
        Buckets(settings.console.login_attempts_per_address, window))
    app[appkeys.push_topics] = settings.part(PushSettings).push_topics
    app.cleanup_ctx.extend([_database_ctx, _broker_ctx, _http_client_ctx, _scheduler_ctx,
                           _heartbeat_ctx, _fanout_ctx])
    app.on_shutdown.append(_on_shutdown)
    app.router.add_get("/ws", ws.ws_handler)
    app.router.add_get("/sse", sse.sse_handler)
    app.router.add_route("OPTIONS", "/sse", sse.sse_preflight)
    api.setup(app)
    # Articles in (webhook, feeds) -> the headlines channels; breaking ones to the policy.
    setup_newsroom(app)
    pages.setup(app)
    health.setup(app)
    openapi.setup(app)
    routes.setup(app)  # the console: login, session, its page, admin routes
    admin.setup(app)
    page.setup(app)
    # The one place the platform plugs Web Push in: /push.js, /sw.js, /api/push/*,
    # /api/alerts*, its tables, metrics, VAPID keys and delivery.
    setup_push(app)
    return app
