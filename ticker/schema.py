"""The schema as an ordered list of migrations; each runs once, in its own transaction.

Append new migrations at the end; never edit one that has shipped. SQL uses the type words
of :data:`ticker.db.TYPES` so it runs on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import time

from ticker.db import Database, render

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "api tokens", [
        """CREATE TABLE api_tokens (
            id {pk},
            name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('editor', 'admin')),
            token_hash TEXT NOT NULL UNIQUE,
            created_at {float} NOT NULL,
            last_used_at {float},
            revoked_at {float}
        )""",
    ]),
]


async def migrate(db: Database) -> int:
    """Apply the migrations this database lacks; returns how many ran."""
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        f"(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at {render('{float}', db.dialect)} NOT NULL)"
    )
    done = {r["version"] for r in await db.fetchall("SELECT version FROM schema_migrations")}
    ran = 0
    for version, name, statements in MIGRATIONS:
        if version in done:
            continue
        async with db.transaction() as tx:
            if db.dialect == "postgres":
                # Two nodes starting at once must not both migrate.
                await tx.execute("SELECT pg_advisory_xact_lock(7411)")
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
