"""Delivery rows (``alert_deliveries``): the deliveries that need one, and their writer.

Most of an alert's deliveries never get a row: a batch (:mod:`.batchstore`) records how many
it sent and writes a row only for a delivery that needs one (to retry, or a failure).
Row states: ``retry`` (waiting for ``next_attempt_at``), ``sending`` (claimed by ``owner``
until ``next_attempt_at``, its lease), ``pending`` (an alert from before batches), and the
final states of :data:`subscribers.subscriptions.FINAL_STATES`.

**At least once.** A claim, like a batch's lease, is committed *before* its request leaves
and lasts a lease, which the live node renews. If the node dies, nobody can tell whether a
request in flight reached the push service, so once the lease runs out the delivery is
sent again: a reader may get a second copy (at most the node's in-flight window per crash,
see :func:`subscribers.delivery.batching.in_flight_window`) but never loses an alert. A
second copy is harmless where the reader is: every push of an alert carries the same
``Topic`` (a push service replaces an undelivered copy) and the service worker shows each
alert once. A lease that has not run out is never touched, so a restart (or another node)
never resends what a live node is sending.

Writes are group commits: every claim made while a commit is running joins the next one,
and results are written in batches.
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
# A 'sending' row is claimable once its lease (next_attempt_at) has run out: its node died.
_CLAIMABLE = "state || '' IN ('pending', 'retry', 'sending') AND next_attempt_at <= ?"


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
        "WHERE d.alert_id = ? AND d.state IN ('pending', 'retry', 'sending') "
        "AND d.next_attempt_at <= ? "
        "AND d.subscription_id > ? ORDER BY d.subscription_id LIMIT ?",
        (alert_id, now, after, limit))
    return [Due(int(r["subscription_id"]), int(r["attempts"]), r["endpoint"], r["p256dh"],
                r["auth"], int(r["vapid_key_id"])) for r in rows]


async def next_due(db: Database, alert_id: int) -> float | None:
    """When the earliest waiting delivery is due (a claim: when its lease runs out); None
    when none waits."""
    row = await db.fetchone(
        "SELECT MIN(next_attempt_at) AS t FROM alert_deliveries "
        "WHERE alert_id = ? AND state IN ('pending', 'retry', 'sending')", (alert_id,))
    return None if row is None or row["t"] is None else float(row["t"])


async def claim_rows(db: Database, alert_id: int, subscription_ids: list[int],
                     now: float, owner: str, lease_until: float) -> set[int]:
    """Mark due rows ``sending`` by ``owner`` until ``lease_until``; the ids this call won.

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
        params: list[Any] = [owner, lease_until, now, alert_id, *chunk, now]
        if dialect == "postgres":
            where = ("alert_id = ? AND subscription_id IN (SELECT subscription_id FROM "
                     f"alert_deliveries WHERE {where} FOR UPDATE SKIP LOCKED)")
            params.insert(3, alert_id)
        rows = await db.write_fetchall(
            "UPDATE alert_deliveries SET state = 'sending', owner = ?, next_attempt_at = ?, "
            f"updated_at = ? WHERE {where} RETURNING subscription_id", params)
        won.update(int(r["subscription_id"]) for r in rows)
    return won


async def delivery_states(db: Database, alert_id: int) -> dict[int, dict[str, Any]]:
    rows = await db.fetchall("SELECT * FROM alert_deliveries WHERE alert_id = ?", (alert_id,))
    return {int(r["subscription_id"]): r for r in rows}


class DeliveryWriter:
    """Group-commits claims (awaited: a request may leave only once its claim is durable)
    and results (not awaited: a lost result leaves the row ``sending``, i.e. ``unknown``)."""

    def __init__(self, db: Database, alert_id: int, clock: Any, owner: str,
                 lease_seconds: float) -> None:
        self._db = db
        self._alert_id = alert_id
        self._clock = clock
        self._owner = owner
        self._lease_seconds = lease_seconds
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
            won = await claim_rows(self._db, self._alert_id, claims, now, self._owner,
                                   now + self._lease_seconds)
        # Only open rows take a result, so a late one (a paused host's "retry" for a row
        # another node sent, or one an editor cancelled) never reopens a row. A claimed row
        # is ours while it is 'sending' by us; an unclaimed result must also leave alone a
        # row another node is sending, or a later pass would send it a second time.
        for claimed, where in ((True, "state = 'sending' AND owner = ?"),
                               (False, "state IN ('pending', 'retry')")):
            mine = (self._owner,) if claimed else ()
            rows = [(r.state, r.attempts, r.next_attempt_at, r.last_status, now,
                     self._alert_id, r.subscription_id, *mine)
                    for r in results if r.claimed is claimed]
            if rows:
                self.transactions += 1
                await self._db.executemany(
                    "UPDATE alert_deliveries SET state = ?, attempts = ?, next_attempt_at = ?, "
                    "last_status = ?, updated_at = ?, owner = NULL WHERE alert_id = ? "
                    f"AND subscription_id = ? AND {where}", rows)
        gone = [r.subscription_id for r in results if r.delete_subscription]
        if gone:
            self.transactions += 1
            async with self._db.transaction() as tx:
                await store.remove(tx, gone)
        return won
