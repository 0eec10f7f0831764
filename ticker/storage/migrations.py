"""Versioned migrations: each runs once, in its own transaction, in version order.

Each part of the application owns its tables and its list of migrations (the platform's is
:data:`MIGRATIONS`; Web Push keeps its own in ``subscribers/migrations.py``). Version numbers
are one sequence shared by every part, so that one ``schema_migrations`` table records them
all: a new migration takes the next free number, whichever part it belongs to. Never edit
one that has shipped. SQL uses the type words of :data:`ticker.storage.database.TYPES` so it
runs on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from ticker.storage.database import Database, render


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS = (
    Migration(1, "api tokens", (
        """CREATE TABLE api_tokens (
            id {pk},
            name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('editor', 'admin')),
            token_hash TEXT NOT NULL UNIQUE,
            created_at {float} NOT NULL,
            last_used_at {float},
            revoked_at {float}
        )""",
    )),
    # Who did what, when: every alert, approval, cancel, token, user and feed change.
    # Written by the part that makes the change (ticker.audit.record), read by admins.
    Migration(3, "audit log", (
        """CREATE TABLE audit_log (
            id {pk},
            at {float} NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            detail {json} NOT NULL
        )""",
        "CREATE INDEX audit_log_at ON audit_log (at)",
    )),
    # Console logins (ticker.console): people, not programs. A password is only ever stored
    # as its argon2id hash; a session only as the SHA-256 of its cookie's random id.
    Migration(7, "console users and sessions", (
        """CREATE TABLE console_users (
            id {pk},
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('editor', 'admin')),
            password_hash TEXT NOT NULL,
            created_at {float} NOT NULL,
            disabled_at {float},
            last_login_at {float}
        )""",
        """CREATE TABLE console_sessions (
            id {pk},
            session_hash TEXT NOT NULL UNIQUE,
            user_id BIGINT NOT NULL REFERENCES console_users (id),
            csrf TEXT NOT NULL,
            created_at {float} NOT NULL,
            seen_at {float} NOT NULL,
            expires_at {float} NOT NULL
        )""",
        "CREATE INDEX console_sessions_user ON console_sessions (user_id)",
    )),
)


def ordered(migrations: Iterable[Migration]) -> list[Migration]:
    """The migrations by version; two parts claiming one version is a programming error."""
    by_version: dict[int, Migration] = {}
    for m in migrations:
        if m.version in by_version and by_version[m.version] != m:
            raise ValueError(f"migration {m.version} is claimed by {by_version[m.version].name!r}"
                             f" and {m.name!r}")
        by_version[m.version] = m
    return [by_version[v] for v in sorted(by_version)]


# PostgreSQL advisory lock key held while the schema changes: one migrator at a time.
MIGRATION_LOCK = 7411


async def migrate(db: Database, migrations: Iterable[Migration] = MIGRATIONS) -> int:
    """Apply the migrations this database lacks; returns how many ran."""
    async with db.transaction() as tx:
        if db.dialect == "postgres":
            # CREATE TABLE IF NOT EXISTS is not safe against itself on PostgreSQL: nodes and
            # workers started at once on an empty database (docker compose up) failed with
            # a unique violation on pg_type, all but one of them.
            await tx.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        await tx.execute(render(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at {float} NOT NULL)",
            db.dialect))
    done = {r["version"] for r in await db.fetchall("SELECT version FROM schema_migrations")}
    ran = 0
    for version, name, statements in ((m.version, m.name, m.statements)
                                      for m in ordered(migrations)):
        if version in done:
            continue
        async with db.transaction() as tx:
            # Two processes starting at once must not both migrate: PostgreSQL takes the
            # lock, SQLite's BEGIN IMMEDIATE already admits one writer; then look again.
            if db.dialect == "postgres":
                await tx.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            again = await tx.fetchone(
                "SELECT 1 AS x FROM schema_migrations WHERE version = ?", (version,))
            if again:
                continue
            for sql in statements:
                await tx.execute(render(sql, db.dialect))
            await tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, time.time()))
        ran += 1
    return ran
