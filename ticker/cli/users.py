"""``ticker users add|list|disable``: console logins (passwords stored as argon2id hashes)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

from ticker import audit
from ticker.cli.errors import CliError
from ticker.console import users
from ticker.settings import Settings
from ticker.storage import open_database

ACTOR = "cli"


def register(sub: Any) -> None:
    p = sub.add_parser("users", help="manage console logins",
                       description="Add, list and disable the editors who log in at /editor.")
    usub = p.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    a = usub.add_parser("add", help="add a user (the password is asked twice)",
                        description="Add a console user. The password is asked twice, or "
                                    "read from standard input with --password-stdin; it is "
                                    f"at least {users.PASSWORD_MIN} characters.")
    a.add_argument("name", help="the login name (lower-case letters, digits, ._-)")
    a.add_argument("--role", choices=users.ROLES, default="editor", help="default: editor")
    a.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")
    a.set_defaults(run=lambda args, s: asyncio.run(_add(args, s)))
    ls = usub.add_parser("list", help="list users (never their passwords)",
                         description="List users by id, role, state and name.")
    ls.set_defaults(run=lambda args, s: asyncio.run(_list(s)))
    d = usub.add_parser("disable", help="disable a user and end their sessions",
                        description="Disable a user: they can no longer log in and their "
                                    "open sessions end.")
    d.add_argument("name", help="the login name")
    d.set_defaults(run=lambda args, s: asyncio.run(_disable(args, s)))


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != first:
        raise CliError("the two passwords differ")
    return first


async def _add(args: argparse.Namespace, settings: Settings) -> int:
    if not re.match(users.NAME_PATTERN, args.name):
        raise CliError("a name is lower-case letters, digits and ._- (64 at most)")
    password = read_password(args.password_stdin)
    password_hash = await users.hashed(password)
    db = await open_database(settings.storage.database_url_resolved)
    try:
        now = time.time()
        async with db.transaction() as tx:
            await users.add_user(tx, args.name, args.role, password_hash, now)
            await audit.record(tx, ACTOR, "user.add", f"user:{args.name}", now,
                               {"role": args.role})
    finally:
        await db.close()
    print(f"added {args.role} {args.name}")
    return 0


def _when(at: float | None) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%MZ") if at else "-"


async def _list(settings: Settings) -> int:
    db = await open_database(settings.storage.database_url_resolved)
    try:
        for row in await users.list_users(db):
            state = "disabled" if row["disabled_at"] else "active"
            print(f"{row['id']}\t{row['role']}\t{state}\t{row['name']}\t"
                  f"last login {_when(row['last_login_at'])}")
    finally:
        await db.close()
    return 0


async def _disable(args: argparse.Namespace, settings: Settings) -> int:
    db = await open_database(settings.storage.database_url_resolved)
    try:
        user = await users.find_user(db, name=args.name)
        if user is None:
            raise CliError(f"no user named {args.name!r}")
        now = time.time()
        async with db.transaction() as tx:
            if not await users.disable_user(tx, user.id, now):
                raise CliError(f"{args.name!r} is already disabled")
            await audit.record(tx, ACTOR, "user.disable", f"user:{args.name}", now)
    finally:
        await db.close()
    print(f"disabled {args.name}")
    return 0
