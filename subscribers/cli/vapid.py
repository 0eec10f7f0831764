"""``ticker vapid show|rotate``: the server's VAPID keys (stored in the database)."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from typing import Any

from subscribers.crypto import vapid
from subscribers.migrations import WITH_PLATFORM
from ticker.settings import Settings
from ticker.storage import open_database


def iso_utc(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def register(sub: Any) -> None:
    p = sub.add_parser("vapid", help="show or rotate the Web Push (VAPID) keys",
                       description="VAPID keys sign every push request. The public key is "
                                   "what browsers subscribe with.")
    vsub = p.add_subparsers(dest="vapid_command", metavar="ACTION", required=True)
    show = vsub.add_parser("show", help="print the current public key (made on first use)",
                           description="Print the current public key, base64url.")
    show.add_argument("--all", action="store_true",
                      help="list every key, oldest first: id, current or old, created "
                           "(ISO 8601 UTC), public key; tab-separated")
    show.set_defaults(run=lambda a, s: asyncio.run(_show(a, s)))
    rot = vsub.add_parser(
        "rotate", help="add a new current key; existing subscriptions keep theirs",
        description="Add a new key pair and make it current. New subscriptions use it; "
                    "subscriptions made with an older key keep being sent with that key "
                    "(push services refuse any other). Prints the new public key.")
    rot.set_defaults(run=lambda a, s: asyncio.run(_rotate(s)))


async def _show(args: argparse.Namespace, settings: Settings) -> int:
    db = await open_database(settings.storage.database_url_resolved, WITH_PLATFORM)
    try:
        current = await vapid.ensure_key(db)
        if args.all:
            for key in await vapid.all_keys(db):
                mark = "current" if key.id == current.id else "old"
                print(f"{key.id}\t{mark}\t{iso_utc(key.created_at)}\t{key.public_key}")
        else:
            print(current.public_key)
    finally:
        await db.close()
    return 0


async def _rotate(settings: Settings) -> int:
    db = await open_database(settings.storage.database_url_resolved, WITH_PLATFORM)
    try:
        await vapid.ensure_key(db)  # a first rotation keeps the original key too
        print((await vapid.add_key(db)).public_key)
    finally:
        await db.close()
    return 0
