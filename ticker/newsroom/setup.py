"""``setup_newsroom(app)``: the newsroom's routes, tables, health part and lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from ticker import appkeys
from ticker.newsroom import api
from ticker.newsroom.feeds import api as feeds_api
from ticker.newsroom.feeds.schedule import FeedJobs
from ticker.newsroom.feeds.state import FeedState, feeds_health
from ticker.newsroom.ingest import Newsroom
from ticker.newsroom.migrations import MIGRATIONS


async def _newsroom_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.settings]
    newsroom = Newsroom(app[appkeys.database], app[appkeys.publisher],
                        settings.newsroom.breaking_policy,
                        lambda: app.get(appkeys.article_alerts))
    app[appkeys.newsroom] = newsroom
    jobs = FeedJobs(app[appkeys.scheduler], settings.feeds, app[appkeys.http_client],
                    newsroom, app[appkeys.metrics], app[appkeys.feed_states])
    app[appkeys.feed_jobs] = jobs
    await jobs.sync()
    jobs.start()
    yield


def setup_newsroom(app: web.Application) -> None:
    """Call after the scheduler's cleanup_ctx (the feed jobs run on it)."""
    app[appkeys.migrations].extend(MIGRATIONS)
    states: dict[str, FeedState] = {}
    app[appkeys.feed_states] = states
    app[appkeys.health_checks]["feeds"] = lambda: feeds_health(states)
    app.cleanup_ctx.append(_newsroom_ctx)
    api.setup(app)
    feeds_api.setup(app)
