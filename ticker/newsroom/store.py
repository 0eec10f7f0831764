"""Articles and webhook signatures in the database (``ticker.storage.database``).

Every function takes an executor, so the caller decides the transaction: a signature is
remembered in the same one as the article it brought, and a refused request writes nothing.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, cast

from ticker.newsroom.articles import Approval, Article
from ticker.storage.database import Executor, Row

COLUMNS = ("guid, url, title, summary, category, tags, language, image, published, updated, "
           "breaking, approval")
LIST_MAX = 200


def _article(row: Row) -> Article:
    return Article(
        id=int(row["id"]), guid=row["guid"], url=row["url"], title=row["title"],
        summary=row["summary"], category=row["category"],
        tags=tuple(json.loads(row["tags"])), language=row["language"], image=row["image"],
        published=row["published"], updated=row["updated"], breaking=bool(row["breaking"]),
        approval=cast(Approval | None, row["approval"]))


def _values(a: Article) -> tuple[Any, ...]:
    return (a.guid, a.url, a.title, a.summary, a.category, json.dumps(list(a.tags)),
            a.language, a.image, a.published, a.updated, int(a.breaking), a.approval)


async def lock_guid(tx: Executor, dialect: str, guid: str) -> None:
    """Serialise transactions taking the same guid until they commit.

    Without it two PostgreSQL transactions (two requests, two processes) could both find no
    row and both insert, and the second would fail on the unique index. SQLite needs nothing:
    its writers are serialised by ``BEGIN IMMEDIATE`` already.
    """
    if dialect == "postgres":
        await tx.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 4))", (guid,))


async def by_guid(db: Executor, guid: str) -> Article | None:
    row = await db.fetchone(f"SELECT id, {COLUMNS} FROM articles WHERE guid = ?", (guid,))
    return None if row is None else _article(row)


async def by_id(db: Executor, article_id: int) -> Article | None:
    row = await db.fetchone(f"SELECT id, {COLUMNS} FROM articles WHERE id = ?", (article_id,))
    return None if row is None else _article(row)


async def save(db: Executor, article: Article, now: float) -> Article:
    """Insert (``id`` 0) or update the row; returns the article with its id."""
    if article.id:
        await db.execute(
            "UPDATE articles SET guid = ?, url = ?, title = ?, summary = ?, category = ?, "
            "tags = ?, language = ?, image = ?, published = ?, updated = ?, breaking = ?, "
            "approval = ?, changed_at = ? WHERE id = ?",
            (*_values(article), now, article.id))
        return article
    new_id = await db.insert(
        f"INSERT INTO articles ({COLUMNS}, created_at, changed_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (*_values(article), now, now))
    return dataclasses.replace(article, id=new_id)


async def set_approval(db: Executor, article_id: int, approval: Approval,
                       alert_id: int | None, now: float) -> None:
    await db.execute("UPDATE articles SET approval = ?, alert_id = ?, changed_at = ? "
                     "WHERE id = ?", (approval, alert_id, now, article_id))


async def recent(db: Executor, limit: int) -> list[Article]:
    """The newest first (by arrival: a feed's entries may carry any published time)."""
    rows = await db.fetchall(f"SELECT id, {COLUMNS} FROM articles ORDER BY id DESC LIMIT ?",
                             (max(1, min(limit, LIST_MAX)),))
    return [_article(r) for r in rows]


async def pending(db: Executor, limit: int = LIST_MAX) -> list[Article]:
    rows = await db.fetchall(f"SELECT id, {COLUMNS} FROM articles WHERE approval = 'pending' "
                             "ORDER BY id DESC LIMIT ?", (limit,))
    return [_article(r) for r in rows]


async def forget_signatures(db: Executor, before: float) -> None:
    """Drop signatures seen before ``before``: their timestamps are stale by now, so a
    replay of one is refused as stale without the row."""
    await db.execute("DELETE FROM webhook_signatures WHERE seen_at < ?", (before,))


async def remember_signature(db: Executor, signature: str, now: float) -> bool:
    """Record a signature; False when it is already recorded."""
    added = await db.execute("INSERT INTO webhook_signatures (signature, seen_at) VALUES (?, ?) "
                             "ON CONFLICT (signature) DO NOTHING", (signature, now))
    return added == 1
