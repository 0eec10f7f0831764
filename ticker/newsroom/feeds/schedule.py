"""The scheduler's feed jobs, kept in step with the configured and the stored feeds.

Feeds added through the CLI or another process appear in the database only, so every
:data:`SYNC_SECONDS` each node compares the jobs it runs with the lists and adds, changes
or drops jobs; an API change syncs at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.triggers.interval import IntervalTrigger

from ticker.metrics import Metrics
from ticker.net.client import PublicClient
from ticker.newsroom.feeds import store
from ticker.newsroom.feeds.poll import poll_feed
from ticker.newsroom.feeds.state import FeedState, Origin
from ticker.newsroom.ingest import Newsroom
from ticker.settings import NewsFeedSettings

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger("ticker.feeds")

SYNC_SECONDS = 10.0


def job_id(name: str) -> str:
    return f"feed:{name}"


def _jitter(interval: float) -> float:
    # Spread feeds sharing an interval (and nodes sharing a config) without moving far.
    return min(interval * 0.1, 30.0)


@dataclass
class FeedJobs:
    """The feeds this node polls: what each job was made from, and each feed's state."""

    scheduler: AsyncIOScheduler
    configured: tuple[NewsFeedSettings, ...]
    client: PublicClient
    newsroom: Newsroom
    metrics: Metrics
    states: dict[str, FeedState]
    running: dict[str, NewsFeedSettings] = field(default_factory=dict)

    def wanted(self, stored: list[NewsFeedSettings]) -> dict[str, tuple[NewsFeedSettings, Origin]]:
        out: dict[str, tuple[NewsFeedSettings, Origin]] = {f.name: (f, "api") for f in stored}
        out.update({f.name: (f, "config") for f in self.configured})  # config wins a name
        return out

    async def sync(self) -> None:
        """Add, replace or drop jobs so they match the lists. Never raises."""
        try:
            stored = await store.listed(self.newsroom.db)
        except Exception:
            log.exception("feeds: could not read the stored feeds; keeping the current jobs")
            return
        wanted = self.wanted(stored)
        for name in [n for n in self.running if n not in wanted]:
            self.scheduler.remove_job(job_id(name))
            del self.running[name]
            self.states.pop(name, None)
        for name, (feed, origin) in wanted.items():
            if self.running.get(name) == feed:
                continue
            self.states[name] = FeedState(name, origin)
            self.running[name] = feed
            self.scheduler.add_job(
                poll_feed, IntervalTrigger(seconds=feed.interval, jitter=_jitter(feed.interval),
                                           timezone=UTC),
                args=(feed, self.states[name], self.client, self.newsroom, self.metrics),
                id=job_id(name), name=f"poll feed {name}", replace_existing=True,
                # First poll soon after it appears (spread a little), not an interval later.
                next_run_time=datetime.now(UTC) + timedelta(seconds=min(1.0, feed.interval)),
                # A poll that missed its moment still runs, once, not a burst of catch-ups.
                misfire_grace_time=max(1, int(feed.interval)), coalesce=True, max_instances=1)

    def start(self) -> None:
        self.scheduler.add_job(self.sync, IntervalTrigger(seconds=SYNC_SECONDS, timezone=UTC),
                               id="feeds:sync", name="sync feed jobs", coalesce=True,
                               max_instances=1, misfire_grace_time=int(SYNC_SECONDS))
