"""The newsroom's storage on every database backend (SQLite and PostgreSQL): articles
idempotent by guid, signatures remembered once, approvals, the admin-added feeds."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ticker import audit
from ticker.broker.memory import MemoryBroker
from ticker.feed.channels import Hub
from ticker.feed.names import feed_channels
from ticker.feed.publisher import Publisher
from ticker.metrics import Metrics
from ticker.newsroom import store
from ticker.newsroom.errors import FeedExists, NotPending, ReplayedSignature, UnknownFeed
from ticker.newsroom.feeds import store as feeds
from ticker.newsroom.incoming import ArticleIn
from ticker.newsroom.ingest import Newsroom
from ticker.newsroom.migrations import MIGRATIONS as NEWSROOM
from ticker.settings import NewsFeedSettings
from ticker.storage import Database, open_database
from ticker.storage.migrations import MIGRATIONS

ARTICLE = ArticleIn.model_validate({
    "guid": "s-1", "url": "https://n.example/1", "title": "One", "tags": ["a", "b"],
    "language": "en", "category": "sport", "published": 1_700_000_000,
    "breaking": True}).article()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await open_database(database_url, [*MIGRATIONS, *NEWSROOM])
    yield database
    await database.close()


def newsroom(db: Database, hooked: list[Any] | None = None) -> tuple[Newsroom, Hub]:
    hub = Hub(feed_channels([]), max_size=50, max_age=3600, clock=time.time)

    async def hook(article: Any, actor: str) -> int:
        assert hooked is not None
        hooked.append((article.guid, actor))
        return 7

    return Newsroom(db, Publisher(MemoryBroker(hub), Metrics()), "approve",
                    lambda: hook if hooked is not None else None), hub


async def test_an_article_round_trips_and_the_same_one_again_changes_nothing(
        db: Database) -> None:
    room, hub = newsroom(db)
    first = await room.take(ARTICLE, 100.0)
    assert first.result == "created" and first.article.id > 0
    assert first.article.approval == "pending"  # breaking, policy approve
    stored = await store.by_guid(db, "s-1")
    assert stored == first.article
    again = await room.take(ARTICLE, 101.0)
    assert (again.result, again.article) == ("unchanged", first.article)
    assert hub.channels["headlines"].offset == 1
    edited = await room.take(dataclasses.replace(ARTICLE, title="One, edited"), 102.0)
    assert edited.result == "updated" and edited.article.approval == "pending"
    assert [a.title for a in await store.recent(db, 10)] == ["One, edited"]
    assert hub.channels["headlines:sport"].offset == 2


async def test_the_same_article_taken_four_times_at_once_is_created_once(db: Database) -> None:
    room, hub = newsroom(db)

    async def hold() -> None:
        async with db.transaction():
            await asyncio.sleep(0.05)

    # Four open connections first (a pool grows on demand), so the four takes really overlap.
    await asyncio.gather(*(hold() for _ in range(4)))
    results = await asyncio.gather(*(room.take(ARTICLE, 100.0) for _ in range(4)))
    assert sorted(r.result for r in results) == ["created", "unchanged", "unchanged",
                                                 "unchanged"]
    assert len(await store.recent(db, 10)) == 1 and hub.channels["headlines"].offset == 1


async def test_a_signature_is_taken_once_and_a_replay_writes_nothing(db: Database) -> None:
    room, _ = newsroom(db)
    await room.take(ARTICLE, 100.0, signature="ab" * 32)
    with pytest.raises(ReplayedSignature):
        await room.take(dataclasses.replace(ARTICLE, guid="s-2"), 101.0, signature="ab" * 32)
    assert [a.guid for a in await store.recent(db, 10)] == ["s-1"]
    rows = await db.fetchall("SELECT signature FROM webhook_signatures")
    assert [r["signature"] for r in rows] == ["ab" * 32]


async def test_approvals_are_decided_once_and_audit_logged(db: Database) -> None:
    hooked: list[Any] = []
    room, _ = newsroom(db, hooked)
    taken = await room.take(ARTICLE, 100.0)
    assert [a.guid for a in await store.pending(db)] == ["s-1"]
    article, alert = await room.decide(taken.article.id, "send", "user:ann", 101.0)
    assert (article.approval, alert, hooked) == ("sent", 7, [("s-1", "user:ann")])
    with pytest.raises(NotPending):
        await room.decide(taken.article.id, "dismiss", "user:ann", 102.0)
    assert await store.pending(db) == []
    [entry] = await audit.recent(db)
    assert (entry["actor"], entry["action"], entry["detail"]) == (
        "user:ann", "approval.send", {"alert": 7, "guid": "s-1"})


async def test_stored_feeds_are_added_once_listed_and_removed_with_audit(
        db: Database) -> None:
    feed = NewsFeedSettings(name="site", url="https://n.example/rss", interval=60,
                            language="en")
    await feeds.add(db, feed, "token:ops", 100.0)
    with pytest.raises(FeedExists):
        await feeds.add(db, feed, "token:ops", 101.0)
    with pytest.raises(FeedExists):
        await feeds.add(db, feed.model_copy(update={"name": "configured"}), "token:ops",
                        101.0, frozenset({"configured"}))
    assert await feeds.listed(db) == [feed]
    await feeds.remove(db, "site", "token:ops", 102.0)
    with pytest.raises(UnknownFeed):
        await feeds.remove(db, "site", "token:ops", 103.0)
    assert await feeds.listed(db) == []
    actions = [(e["action"], e["target"]) for e in reversed(await audit.recent(db))]
    assert actions == [("feed.add", "feed:site"), ("feed.remove", "feed:site")]
