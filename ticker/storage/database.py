"""The database, chosen by URL: ``sqlite:///path`` (embedded default) or ``postgresql://``.

Both backends take SQL written with ``?`` placeholders and the few type words in
:data:`TYPES` (``{pk}``, ``{float}``, ...) so one schema and one set of queries serve both.

SQLite follows datasette's advice: every write goes through one connection (one writer
thread, serialised by a lock) while reads use another, in WAL mode, so reads never wait
for writes and the event loop never blocks on the file.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

Row = dict[str, Any]
Params = Sequence[Any]

TYPES = {
    "sqlite": {"pk": "INTEGER PRIMARY KEY AUTOINCREMENT", "float": "REAL", "blob": "BLOB",
               "bigint": "INTEGER", "json": "TEXT"},
    "postgres": {"pk": "BIGSERIAL PRIMARY KEY", "float": "DOUBLE PRECISION", "blob": "BYTEA",
                 "bigint": "BIGINT", "json": "TEXT"},
}


# A node that cannot reach PostgreSQL at start says so rather than waiting asyncpg's minute.
CONNECT_SECONDS = 10.0


class StorageError(Exception):
    """The database cannot be opened where the settings point (one line, names the place)."""


class Executor(Protocol):
    """What a transaction and the database both offer."""

    async def execute(self, sql: str, params: Params = ()) -> int: ...
    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...
    async def insert(self, sql: str, params: Params = ()) -> int: ...


class Database(Executor, Protocol):
    dialect: str

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None: ...
    async def write_fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...
    def transaction(self) -> Any: ...  # async context manager yielding an Executor
    async def close(self) -> None: ...


def render(sql: str, dialect: str) -> str:
    return sql.format(**TYPES[dialect]) if "{" in sql else sql


def place(url: str) -> str:
    """A database URL without its credentials: where it is, fit for a message or a log."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {CONNECT_SECONDS:g} s"
    text = (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- SQLite


class _SqliteTx:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        cur = await self._conn.execute(sql, params)
        return cur.rowcount

    async def insert(self, sql: str, params: Params = ()) -> int:
        cur = await self._conn.execute(sql, params)
        return int(cur.lastrowid or 0)

    # execute_fetchall: one trip to aiosqlite's thread, where execute, fetch and closing the
    # cursor would be three (each trip wakes that thread and then the event loop).

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self._conn.execute_fetchall(sql, params)
        return dict(next(iter(rows))) if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return [dict(r) for r in await self._conn.execute_fetchall(sql, params)]


async def _wal(conn: aiosqlite.Connection) -> None:
    """Switch to WAL. Another process opening the same new file at that moment makes it
    answer "database is locked" without waiting (busy_timeout does not cover the switch),
    so the switch is tried again for a while."""
    for attempt in range(100):
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            await asyncio.sleep(0.05)


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SqliteDatabase:
        folder = path.parent
        if folder.exists() and not folder.is_dir():
            raise StorageError(f"cannot use data directory {folder}: it is not a directory")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot use data directory {folder}: "
                               f"{(exc.strerror or str(exc)).lower()}") from None
        conns: list[aiosqlite.Connection] = []
        try:
            for _ in range(2):
                conn = await aiosqlite.connect(path, isolation_level=None)
                conns.append(conn)
                conn.row_factory = aiosqlite.Row
                await conn.execute("PRAGMA busy_timeout=5000")
                await _wal(conn)
                await conn.execute("PRAGMA synchronous=NORMAL")
                await conn.execute("PRAGMA foreign_keys=ON")
        except (OSError, sqlite3.Error) as exc:
            for opened in conns:
                await opened.close()
            raise StorageError(f"cannot use data directory {folder}: {exc}") from None
        return cls(conns[0], conns[1])

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self.transaction() as tx:
            return await tx.execute(sql, params)

    async def insert(self, sql: str, params: Params = ()) -> int:
        async with self.transaction() as tx:
            return await tx.insert(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                await self._writer.executemany(sql, rows)
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")

    async def write_fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """One statement that writes and returns rows (``UPDATE … RETURNING``), atomic on its
        own: one trip to the writer's thread instead of three with BEGIN and COMMIT."""
        async with self._write_lock:
            return await _SqliteTx(self._writer).fetchall(sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return await _SqliteTx(self._reader).fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return await _SqliteTx(self._reader).fetchall(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_SqliteTx]:
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(self._writer)
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")

    async def close(self) -> None:
        try:
            await self._writer.close()
            await self._reader.close()
        except BaseException:
            # Interrupted (a second SIGTERM during shutdown): the worker threads must still
            # end, or they keep the process alive after the event loop is gone.
            self._writer.stop()
            self._reader.stop()
            raise


# --------------------------------------------------------------------------- PostgreSQL

_PLACEHOLDER = re.compile(r"\?")


def to_dollar(sql: str) -> str:
    """``?`` placeholders to asyncpg's ``$1, $2, ...`` (our SQL has no literal '?')."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _m: f"${next(counter)}", sql)


class _PgTx:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        status = await self._conn.execute(to_dollar(sql), *params)
        tail = str(status).rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def insert(self, sql: str, params: Params = ()) -> int:
        value = await self._conn.fetchval(to_dollar(sql) + " RETURNING id", *params)
        return int(value)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        row = await self._conn.fetchrow(to_dollar(sql), *params)
        return dict(row) if row is not None else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return [dict(r) for r in await self._conn.fetch(to_dollar(sql), *params)]


class PostgresDatabase:
    dialect = "postgres"

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, url: str) -> PostgresDatabase:
        import asyncpg

        try:
            pool = await asyncpg.create_pool(url, min_size=1, max_size=10,
                                             timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError, asyncpg.PostgresError,
                asyncpg.InterfaceError) as exc:
            raise StorageError(f"cannot reach the database at {place(url)}: "
                               f"{_reason(exc)}") from None
        return cls(pool)

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._pool.acquire() as conn:
            return await _PgTx(conn).execute(sql, params)

    async def insert(self, sql: str, params: Params = ()) -> int:
        async with self._pool.acquire() as conn:
            return await _PgTx(conn).insert(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        async with self._pool.acquire() as conn:
            await conn.executemany(to_dollar(sql), rows)

    async def write_fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """One statement that writes and returns rows, atomic on its own."""
        return await self.fetchall(sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        async with self._pool.acquire() as conn:
            return await _PgTx(conn).fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._pool.acquire() as conn:
            return await _PgTx(conn).fetchall(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_PgTx]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield _PgTx(conn)

    async def close(self) -> None:
        await self._pool.close()
