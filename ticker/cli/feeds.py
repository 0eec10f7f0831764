"""``ticker feeds add|list|remove``: the admin-added RSS/Atom feeds, in the database.

A running server picks up a change within ``SYNC_SECONDS`` (ticker/newsroom/feeds/schedule.py).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import pydantic

from ticker.newsroom.feeds import store
from ticker.newsroom.migrations import MIGRATIONS as NEWSROOM
from ticker.settings import NewsFeedSettings, Settings
from ticker.storage import Database, open_database
from ticker.storage.migrations import MIGRATIONS

ACTOR = "cli"


def register(sub: Any) -> None:
    p = sub.add_parser("feeds", help="manage polled RSS/Atom feeds",
                       description="Add, list and remove the feeds polled into articles.")
    fsub = p.add_subparsers(dest="feeds_command", metavar="ACTION", required=True)
    a = fsub.add_parser("add", help="add a feed", description="Add a feed (audit-logged).")
    a.add_argument("name", help="lower-case letters, digits, '.', '_', '-'")
    a.add_argument("url", help="the feed's http(s) URL")
    a.add_argument("--interval", type=float, default=300.0,
                   help="seconds between polls (default: 300)")
    a.add_argument("--language", default="", help="for entries that name none, e.g. en")
    a.add_argument("--category", default="", help="the category of its articles, e.g. sport")
    a.set_defaults(run=lambda args, s: asyncio.run(_add(args, s)))
    ls = fsub.add_parser("list", help="list the feeds (configured and added)",
                         description="List every polled feed: name, url, interval, "
                                     "language, category, where it is defined.")
    ls.set_defaults(run=lambda args, s: asyncio.run(_list(s)))
    r = fsub.add_parser("remove", help="remove an added feed",
                        description="Remove a feed added with 'feeds add' or the API.")
    r.add_argument("name")
    r.set_defaults(run=lambda args, s: asyncio.run(_remove(args, s)))


async def _open(settings: Settings) -> Database:
    return await open_database(settings.storage.database_url_resolved,
                               [*MIGRATIONS, *NEWSROOM])


def _feed(args: argparse.Namespace) -> NewsFeedSettings:
    try:
        return NewsFeedSettings(name=args.name, url=args.url, interval=args.interval,
                                language=args.language, category=args.category)
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        # A validator's own sentence, without pydantic's "Value error, " in front of it.
        reason = first.get("ctx", {}).get("error", first["msg"])
        raise ValueError(f"{where}: {reason}") from None


async def _add(args: argparse.Namespace, settings: Settings) -> int:
    feed = _feed(args)
    db = await _open(settings)
    try:
        await store.add(db, feed, ACTOR, time.time(), frozenset(f.name for f in settings.feeds))
    except store.FeedExists as exc:
        raise ValueError(exc.message) from None
    finally:
        await db.close()
    return 0


async def _list(settings: Settings) -> int:
    db = await _open(settings)
    try:
        stored = await store.listed(db)
    finally:
        await db.close()
    rows = [(f, "config") for f in settings.feeds] + [(f, "api") for f in stored]
    for feed, origin in rows:
        print(f"{feed.name}\t{feed.url}\t{feed.interval:g}\t{feed.language or '-'}\t"
              f"{feed.category or '-'}\t{origin}")
    return 0


async def _remove(args: argparse.Namespace, settings: Settings) -> int:
    db = await _open(settings)
    try:
        await store.remove(db, args.name, ACTOR, time.time())
    except store.UnknownFeed as exc:
        raise ValueError(exc.message) from None
    finally:
        await db.close()
    return 0
