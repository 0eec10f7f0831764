"""Feeds added by an admin (``/api/feeds``, ``ticker feeds``), in the database so every
process of the site and the CLI see one list. Each change is audit-logged with it."""

from __future__ import annotations

from ticker import audit
from ticker.newsroom.errors import FeedExists, UnknownFeed

__all__ = ["FeedExists", "UnknownFeed", "add", "listed", "remove"]
from ticker.settings import NewsFeedSettings
from ticker.storage.database import Database, Executor


async def listed(db: Executor) -> list[NewsFeedSettings]:
    rows = await db.fetchall(
        "SELECT name, url, interval, language, category FROM feeds ORDER BY name")
    return [NewsFeedSettings.model_validate(row) for row in rows]


async def add(db: Database, feed: NewsFeedSettings, actor: str, now: float,
              taken: frozenset[str] = frozenset()) -> None:
    """Store ``feed``; :class:`FeedExists` when its name is stored or in ``taken``
    (the configured feeds' names)."""
    async with db.transaction() as tx:
        exists = await tx.fetchone("SELECT 1 AS x FROM feeds WHERE name = ?", (feed.name,))
        if exists or feed.name in taken:
            raise FeedExists(f"A feed named {feed.name!r} already exists.")
        await tx.execute(
            "INSERT INTO feeds (name, url, interval, language, category, created_at, "
            "created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (feed.name, feed.url, feed.interval, feed.language, feed.category, now, actor))
        await audit.record(tx, actor, "feed.add", f"feed:{feed.name}", now,
                           {"url": feed.url, "interval": feed.interval,
                            "language": feed.language, "category": feed.category})


async def remove(db: Database, name: str, actor: str, now: float) -> None:
    async with db.transaction() as tx:
        if await tx.execute("DELETE FROM feeds WHERE name = ?", (name,)) != 1:
            raise UnknownFeed(f"There is no feed named {name!r} added by an admin.")
        await audit.record(tx, actor, "feed.remove", f"feed:{name}", now, {})
