"""Several processes opening one empty database at once (a ``docker compose up`` of two
nodes and two workers) all come up, and each migration is applied once."""

from __future__ import annotations

import asyncio

from subscribers.migrations import WITH_PLATFORM
from ticker.storage import open_database
from ticker.storage.migrations import ordered


async def test_four_processes_opening_an_empty_database_at_once_all_start(
        database_url: str) -> None:
    opened = await asyncio.gather(*(open_database(database_url, WITH_PLATFORM)
                                     for _ in range(4)), return_exceptions=True)
    failed = [repr(r) for r in opened if isinstance(r, BaseException)]
    for db in opened:
        if not isinstance(db, BaseException):
            await db.close()
    assert failed == []
    db = await open_database(database_url, ())
    try:
        rows = await db.fetchall("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        await db.close()
    assert [r["version"] for r in rows] == [m.version for m in ordered(WITH_PLATFORM)]
