"""An alert's durable to-do list (``alert_deliveries``) and its batched writer.

Delivery states: ``pending`` (never tried), ``sending`` (claimed: may be on the wire),
``retry`` (waiting for ``next_attempt_at``), and the final states of
:data:`subscribers.subscriptions.FINAL_STATES`.

**At most once.** A row is marked ``sending`` and that mark is committed *before* its
request leaves. After a crash, rows still ``sending`` may or may not have reached the push
service, so :func:`recover` marks them ``unknown`` and they are never sent again: a reader
may miss an alert the process died in the middle of sending (at most ``concurrency`` rows
per crash) but never gets it twice. For news alerts a duplicate buzz is worse than a rare
miss, and push services do not deduplicate for us.

Writes are group commits: every claim made while a commit is running joins the next one,
and results are written in batches, so a 100,000-reader alert costs hundreds of
transactions, not 100,000.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from subscribers import subscriptions as store
from ticker.storage.database import Database

RESULT_BATCH = 256
CLAIM_CHUNK = 500  # ids per statement: well inside every backend's parameter limit
# ``state || ''`` keeps the planner off alert_deliveries_due (alert_id, state, ...), which
# it otherwise picks for the claim UPDATE, scanning every pending row of the alert: 5.5 ms
# per claim at 50,000 pending (quadratic over a 100,000-reader alert) instead of 0.3 ms
# through the primary key (alert_id, subscription_id IN ...). Valid SQL on both backends.
_CLAIMABLE = "state || '' IN ('pending', 'retry') AND next_attempt_at <= ?"


@dataclass(frozen=True)
class Due:
    """One subscription to send to, with what the sender needs."""

    subscription_id: int
    attempts: int
    endpoint: str
    p256dh: str
    auth: str
    vapid_key_id: int


@dataclass(frozen=True)
class Result:
    subscription_id: int
    state: str
    attempts: int
    next_attempt_at: float
    last_status: int | None
    delete_subscription: bool = False
    # False for a row this node decided about without claiming it (its host paused, its
    # keys unusable): that result may only move a row that nobody is sending.
    claimed: bool = True


async def due_page(db: Database, alert_id: int, now: float, after: int,
                   limit: int) -> list[Due]:
    rows = await db.fetchall(
        "SELECT d.subscription_id, d.attempts, s.endpoint, s.p256dh, s.auth, s.vapid_key_id "
        "FROM alert_deliveries d JOIN push_subscriptions s ON s.id = d.subscription_id "
        "WHERE d.alert_id = ? AND d.state IN ('pending', 'retry') AND d.next_attempt_at <= ? "
        "AND d.subscription_id > ? ORDER BY d.subscription_id LIMIT ?",
        (alert_id, now, after, limit))
    return [Due(int(r["subscription_id"]), int(r["attempts"]), r["endpoint"], r["p256dh"],
                r["auth"], int(r["vapid_key_id"])) for r in rows]


async def next_due(db: Database, alert_id: int) -> float | None:
    """When the earliest waiting delivery is due; None when none waits."""
    row = await db.fetchone(
        "SELECT MIN(next_attempt_at) AS t FROM alert_deliveries "
        "WHERE alert_id = ? AND state IN ('pending', 'retry')", (alert_id,))
    return None if row is None or row["t"] is None else float(row["t"])


async def recover(db: Database, now: float) -> int:
    """After a crash: rows left ``sending`` become ``unknown`` (at most once, see above)."""
    return await db.execute("UPDATE alert_deliveries SET state = 'unknown', updated_at = ? "
                            "WHERE state = 'sending'", (now,))


async def claim_rows(db: Database, alert_id: int, subscription_ids: list[int],
                     now: float) -> set[int]:
    """Mark due rows ``sending``; the ids this call won.

    Each statement (up to CLAIM_CHUNK ids) is atomic on its own, which is all a claim needs:
    a row is either won and durable before it is sent, or not sent. Exclusive on every
    backend, so two nodes working through one alert never both send a row: SQLite has one
    writer at a time; on PostgreSQL the rows are locked first and any that another node
    holds are skipped rather than waited for (no lock waits, no deadlocks between claimers;
    a skipped row is due again next pass).
    """
    dialect = db.dialect
    won: set[int] = set()
    for start in range(0, len(subscription_ids), CLAIM_CHUNK):
        chunk = subscription_ids[start:start + CLAIM_CHUNK]
        where = (f"alert_id = ? AND subscription_id IN ({', '.join('?' for _ in chunk)}) "
                 f"AND {_CLAIMABLE}")
        params: list[Any] = [now, alert_id, *chunk, now]
        if dialect == "postgres":
            where = ("alert_id = ? AND subscription_id IN (SELECT subscription_id FROM "
                     f"alert_deliveries WHERE {where} FOR UPDATE SKIP LOCKED)")
            params.insert(1, alert_id)
        rows = await db.write_fetchall("UPDATE alert_deliveries SET state = 'sending', "
                                       f"updated_at = ? WHERE {where} RETURNING subscription_id",
                                       params)
        won.update(int(r["subscription_id"]) for r in rows)
    return won


async def delivery_states(db: Database, alert_id: int) -> dict[int, dict[str, Any]]:
    rows = await db.fetchall("SELECT * FROM alert_deliveries WHERE alert_id = ?", (alert_id,))
    return {int(r["subscription_id"]): r for r in rows}


class DeliveryWriter:
    """Group-commits claims (awaited: a request may leave only once its claim is durable)
    and results (not awaited: a lost result leaves the row ``sending``, i.e. ``unknown``)."""

    def __init__(self, db: Database, alert_id: int, clock: Any) -> None:
        self._db = db
        self._alert_id = alert_id
        self._clock = clock
        self._claims: list[int] = []
        self._claimed: asyncio.Future[set[int]] | None = None
        self._results: list[Result] = []
        self._task: asyncio.Task[None] | None = None
        self.transactions = 0

    async def claim(self, subscription_id: int) -> bool:
        """Claim the row, durably; False when it is not ours to send (another node claimed
        it, it was cancelled, it ended, or it is not due): then it must not be sent."""
        self._claims.append(subscription_id)
        if self._claimed is None:
            self._claimed = asyncio.get_running_loop().create_future()
        done = self._claimed
        self._kick()
        return subscription_id in await asyncio.shield(done)

    def result(self, result: Result) -> None:
        self._results.append(result)
        if len(self._results) >= RESULT_BATCH:
            self._kick()

    async def drain(self) -> None:
        """Write everything outstanding (end of a pass)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
        if self._claims or self._results:
            self._kick()
            assert self._task is not None
            await self._task

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _kick(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self._claims or self._results:
            claims, done = self._claims, self._claimed
            results = self._results
            self._claims, self._claimed, self._results = [], None, []
            try:
                won = await self._write(claims, results)
            except BaseException as exc:
                if done is not None and not done.done():
                    done.set_exception(exc if isinstance(exc, Exception) else
                                       RuntimeError("delivery writer stopped"))
                raise
            if done is not None and not done.done():
                done.set_result(won)

    async def _write(self, claims: list[int], results: list[Result]) -> set[int]:
        now = self._clock.now()
        won: set[int] = set()
        if claims:
            self.transactions += 1
            won = await claim_rows(self._db, self._alert_id, claims, now)
        # Only open rows take a result, so a late one (a paused host's "retry" for a row
        # another node sent, or one an editor cancelled) never reopens a row. A claimed row
        # is ours while it is 'sending'; an unclaimed result must also leave alone a row
        # another node is sending, or a later pass would send it a second time.
        for claimed, where in ((True, "state = 'sending'"),
                               (False, "state IN ('pending', 'retry')")):
            rows = [(r.state, r.attempts, r.next_attempt_at, r.last_status, now,
                     self._alert_id, r.subscription_id) for r in results if r.claimed is claimed]
            if rows:
                self.transactions += 1
                await self._db.executemany(
                    "UPDATE alert_deliveries SET state = ?, attempts = ?, next_attempt_at = ?, "
                    "last_status = ?, updated_at = ? WHERE alert_id = ? AND subscription_id = ? "
                    f"AND {where}", rows)
        gone = [r.subscription_id for r in results if r.delete_subscription]
        if gone:
            self.transactions += 1
            async with self._db.transaction() as tx:
                await store.remove(tx, gone)
        return won
