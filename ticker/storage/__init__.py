"""The database and its schema: ``open_database(url, migrations)`` gives a ready one."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ticker.storage.database import Database, PostgresDatabase, SqliteDatabase, StorageError
from ticker.storage.migrations import MIGRATIONS, Migration, migrate

__all__ = ["Database", "StorageError", "open_database"]


async def open_database(url: str, migrations: Iterable[Migration] = MIGRATIONS) -> Database:
    """Open the database a URL names and bring its schema up to date (``migrations``: the
    platform's and those of the parts plugged in)."""
    db: Database
    if url.startswith("sqlite:///"):
        db = await SqliteDatabase.open(Path(url.removeprefix("sqlite:///")))
    elif url.startswith(("postgresql://", "postgres://")):
        db = await PostgresDatabase.open(url)
    else:
        raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r}")
    try:
        await migrate(db, migrations)
    except BaseException:
        await db.close()
        raise
    return db
