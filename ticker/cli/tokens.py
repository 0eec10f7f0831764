"""``ticker tokens create|list|revoke``: API tokens (printed once, stored hashed)."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from ticker import audit
from ticker.settings import Settings
from ticker.storage import open_database
from ticker.web import tokens


def register(sub: Any) -> None:
    p = sub.add_parser("tokens", help="manage API tokens",
                       description="Create, list and revoke API tokens.")
    tsub = p.add_subparsers(dest="tokens_command", metavar="ACTION", required=True)
    c = tsub.add_parser("create", help="create a token and print it once",
                        description="Create a token; it is printed once and stored hashed.")
    c.add_argument("--name", required=True, help="who or what the token is for")
    c.add_argument("--role", choices=tokens.ROLES, default="editor", help="default: editor")
    c.set_defaults(run=lambda a, s: asyncio.run(_create(a, s)))
    ls = tsub.add_parser("list", help="list tokens (never their values)",
                         description="List tokens by id, name and role.")
    ls.set_defaults(run=lambda a, s: asyncio.run(_list(s)))
    r = tsub.add_parser("revoke", help="revoke a token by id", description="Revoke a token.")
    r.add_argument("id", type=int, help="the token's id (see 'ticker tokens list')")
    r.set_defaults(run=lambda a, s: asyncio.run(_revoke(a, s)))


async def _create(args: argparse.Namespace, settings: Settings) -> int:
    db = await open_database(settings.storage.database_url_resolved)
    try:
        async with db.transaction() as tx:
            value = await tokens.create_token(tx, args.name, args.role)
            await audit.record(tx, "cli", "token.create", f"token:{args.name.strip()}",
                               time.time(), {"role": args.role})
        print(value)
    finally:
        await db.close()
    return 0


async def _list(settings: Settings) -> int:
    db = await open_database(settings.storage.database_url_resolved)
    try:
        for row in await tokens.list_tokens(db):
            state = "revoked" if row["revoked_at"] else "active"
            print(f"{row['id']}\t{row['role']}\t{state}\t{row['name']}")
    finally:
        await db.close()
    return 0


async def _revoke(args: argparse.Namespace, settings: Settings) -> int:
    db = await open_database(settings.storage.database_url_resolved)
    try:
        async with db.transaction() as tx:
            if not await tokens.revoke_token(tx, args.id):
                raise ValueError(f"no active token with id {args.id}")
            await audit.record(tx, "cli", "token.revoke", f"token:{args.id}", time.time())
    finally:
        await db.close()
    return 0
