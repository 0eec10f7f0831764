"""One scheduler at a time: which node polls feeds and data sources.

The rule, by the database URL (the one thing every node of a deployment shares):

- ``postgresql://``: a session-level advisory lock, held on a connection of its own. The
  node holding it leads; when that node dies its connection closes, PostgreSQL frees the
  lock and another node takes it at its next check (every :data:`CHECK_SECONDS`, well
  within 10 s). The lock is keyed by the current schema, so deployments sharing a database
  under different schemas each have their leader.
- ``sqlite:///``: one machine. A lone ``ticker serve`` always leads; under
  ``serve --processes N`` process 0 leads (the supervisor restarts it if it dies).

The clock ticks on every node; scheduled alerts start on whichever node sees them due
first, through an atomic conditional UPDATE (subscribers/alerts.py ``start_due``), so
they need no leader. A node that loses its lock connection stops leading at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

from ticker.storage.database import CONNECT_SECONDS, place

log = logging.getLogger("ticker.cluster")

CHECK_SECONDS = 3.0  # a dead leader is replaced within this (plus PostgreSQL noticing)
LOCK_CLASS = 7412  # advisory lock namespace (7411 is the migrations' lock)


class Lock(Protocol):
    describe: str

    async def check(self) -> bool:
        """Take the lock or keep it; True while this node holds it. Never raises."""

    async def close(self) -> None: ...


class Fixed:
    """A decision made by the process's place, not by a lock (SQLite)."""

    def __init__(self, leads: bool, describe: str) -> None:
        self.leads, self.describe = leads, describe

    async def check(self) -> bool:
        return self.leads

    async def close(self) -> None:
        return None


class PostgresLock:
    def __init__(self, url: str) -> None:
        self.url = url
        self.describe = f"PostgreSQL advisory lock at {place(url)}"
        self.conn: Any = None
        self.held = False
        self.failing = False

    async def check(self) -> bool:
        import asyncpg

        try:
            if self.conn is None or self.conn.is_closed():
                self.held = False
                self.conn = await asyncpg.connect(self.url, timeout=CONNECT_SECONDS)
            if self.held:  # a query that works proves the session, and with it the lock
                await self.conn.fetchval("SELECT 1", timeout=CONNECT_SECONDS)
            else:
                self.held = bool(await self.conn.fetchval(
                    "SELECT pg_try_advisory_lock($1, hashtext(current_schema()))",
                    LOCK_CLASS, timeout=CONNECT_SECONDS))
            self.failing = False
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if not self.failing:  # once per outage, not every check
                log.warning("scheduler lock unavailable; not leading until it is back",
                            extra={"lock": self.describe, "error": str(exc)[:200]})
            self.failing, self.held = True, False
            await self._drop()
        return self.held

    async def _drop(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.terminate()

    async def close(self) -> None:
        if self.conn is not None and not self.conn.is_closed():
            with contextlib.suppress(Exception):
                await self.conn.close(timeout=CONNECT_SECONDS)  # frees the lock at once
        self.conn, self.held = None, False


def choose_lock(database_url: str, process_index: int = 0) -> Lock:
    """The rule in the module docstring."""
    if database_url.startswith(("postgresql://", "postgres://")):
        return PostgresLock(database_url)
    if process_index == 0:
        return Fixed(True, "sole scheduler (SQLite: process 0 leads)")
    return Fixed(False, f"SQLite: process 0 leads, this is process {process_index}")


class Leader:
    """Checks the lock every ``interval`` and reports each change of leadership."""

    def __init__(self, lock: Lock, on_change: Callable[[bool], None],
                 interval: float = CHECK_SECONDS) -> None:
        self.lock, self.on_change, self.interval = lock, on_change, interval
        self.leading = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._check()
        self._task = asyncio.create_task(self._loop())

    async def _check(self) -> None:
        leading = await self.lock.check()
        if leading != self.leading:
            self.leading = leading
            log.info("leading the scheduler" if leading else "not leading the scheduler",
                     extra={"lock": self.lock.describe})
            self.on_change(leading)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._check()
            except Exception:
                log.exception("scheduler leadership check failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.lock.close()

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "leader": self.leading, "lock": self.lock.describe}
