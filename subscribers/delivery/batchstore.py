"""Audience batches in the database: cut, lease, load, finish, renew (``alert_batches``).

Creating an alert writes one row; the audience is cut here, a batch at a time, when a node
asks for work: the next ``batch_size`` subscribers of the audience after ``alerts.cut_to``
(keyset, never OFFSET), up to ``alerts.audience_to`` (the newest subscription when the
alert was made). Leasing is exclusive on every backend: SQLite has one writer at a time;
on PostgreSQL a free batch is locked with ``FOR UPDATE SKIP LOCKED`` (a node never waits
for another's batch) and cutting locks the alert's row (one cutter at a time per alert).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from subscribers import alerts
from subscribers import subscriptions as store
from subscribers.delivery.batching import Tally
from subscribers.delivery.store import Due
from ticker.storage.database import Database, Executor


@dataclass(frozen=True)
class Batch:
    alert_id: int
    first_id: int  # exclusive
    last_id: int  # inclusive
    targeted: int  # audience in the range when it was cut
    attempts: int  # leases taken, this one included: above 1 it is sent again


class LeaseLost(Exception):
    """The batch is no longer this node's (its lease ran out and another node took it)."""


def _audience(alert: dict[str, Any], now: float) -> tuple[str, list[Any]]:
    return alerts.audience(tuple(json.loads(alert["topics"])),
                           tuple(json.loads(alert["languages"])), now)


async def _alert(tx: Executor, alert_id: int, lock: str = "") -> dict[str, Any] | None:
    return await tx.fetchone("SELECT id, status, topics, languages, audience_to, cut_to "
                             f"FROM alerts WHERE id = ?{lock}", (alert_id,))


async def _lease_free(tx: Executor, dialect: str, alert_id: int, owner: str, now: float,
                      lease_until: float) -> Batch | None:
    skip = " FOR UPDATE SKIP LOCKED" if dialect == "postgres" else ""
    row = await tx.fetchone(
        "UPDATE alert_batches SET owner = ?, lease_until = ?, attempts = attempts + 1 "
        "WHERE alert_id = ? AND first_id IN (SELECT first_id FROM alert_batches "
        "WHERE alert_id = ? AND state = 'leased' AND lease_until <= ? "
        f"ORDER BY first_id LIMIT 1{skip}) "
        "RETURNING alert_id, first_id, last_id, targeted, attempts",
        (owner, lease_until, alert_id, alert_id, now))
    return None if row is None else Batch(**row)


async def _cut(tx: Executor, alert: dict[str, Any], owner: str, now: float,
               lease_until: float, size: int) -> Batch | None:
    first, end = int(alert["cut_to"]), int(alert["audience_to"])
    if first >= end:
        return None
    where, params = _audience(alert, now)
    cut = await tx.fetchone(
        "SELECT MAX(id) AS last, COUNT(*) AS n FROM (SELECT s.id FROM push_subscriptions s "
        f"WHERE s.id > ? AND s.id <= ? AND {where} ORDER BY s.id LIMIT ?) c",
        [first, end, *params, size])
    n = int(cut["n"]) if cut else 0
    # A short batch is the audience's last: it covers the range to the end, so no
    # empty cut is needed to learn that nothing is left.
    last = int(cut["last"]) if cut and n == size else end
    await tx.execute("UPDATE alerts SET cut_to = ? WHERE id = ?", (last, alert["id"]))
    if n == 0:
        return None
    await tx.execute(
        "INSERT INTO alert_batches (alert_id, first_id, last_id, state, owner, lease_until, "
        "attempts, targeted) VALUES (?, ?, ?, 'leased', ?, ?, 1, ?)",
        (alert["id"], first, last, owner, lease_until, n))
    return Batch(int(alert["id"]), first, last, n, 1)


async def lease(db: Database, alert_id: int, owner: str, now: float, lease_until: float,
                size: int) -> Batch | None:
    """A batch of this sending alert for ``owner`` until ``lease_until``: one whose lease
    ran out (its node stopped), else the next cut. None when none is free and all is cut."""
    async with db.transaction() as tx:
        alert = await _alert(tx, alert_id)
        if alert is None or alert["status"] != "sending":
            return None
        batch = await _lease_free(tx, db.dialect, alert_id, owner, now, lease_until)
        if batch is not None or alert["audience_to"] is None:
            return batch
        if db.dialect == "postgres":
            alert = await _alert(tx, alert_id, " FOR UPDATE")  # the cursor, one at a time
            if alert is None or alert["status"] != "sending":
                return None
        return await _cut(tx, alert, owner, now, lease_until, size)


async def load(db: Database, batch: Batch, now: float) -> list[Due]:
    """The batch's subscribers to send to, in id order: the audience in its range, less
    those a former send of it already wrote a row for."""
    alert = await alerts.get(db, batch.alert_id)
    if alert is None:
        return []
    where, params = _audience(alert, now)
    if batch.attempts > 1:
        where += (" AND NOT EXISTS (SELECT 1 FROM alert_deliveries d "
                  "WHERE d.alert_id = ? AND d.subscription_id = s.id)")
        params.append(batch.alert_id)
    rows = await db.fetchall(
        "SELECT s.id, s.endpoint, s.p256dh, s.auth, s.vapid_key_id FROM push_subscriptions s "
        f"WHERE s.id > ? AND s.id <= ? AND {where} ORDER BY s.id",
        [batch.first_id, batch.last_id, *params])
    return [Due(int(r["id"]), 0, r["endpoint"], r["p256dh"], r["auth"],
                int(r["vapid_key_id"])) for r in rows]


async def finish(db: Database, batch: Batch, owner: str, tally: Tally, cancelled: int,
                 now: float) -> bool:
    """Write the batch's result, its rows and its prunes at once; False (nothing written)
    when the batch is no longer ``owner``'s, since its new holder sends it again."""
    counts = tally.result(cancelled)
    try:
        async with db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE alert_batches SET state = 'done', owner = NULL, lease_until = NULL, "
                "accepted = ?, pruned = ?, retried = ?, failed = ?, cancelled = ? "
                "WHERE alert_id = ? AND first_id = ? AND owner = ? AND state = 'leased'",
                (counts["accepted"], counts["pruned"], counts["retried"], counts["failed"],
                 counts["cancelled"], batch.alert_id, batch.first_id, owner))
            if changed != 1:
                raise LeaseLost()
            # a reader who unsubscribed while the batch was out: no row may name them
            existing = await _existing(tx, tally.rows) if tally.rows else set()
            for sub_id, (state, attempts, next_at, status) in tally.rows.items():
                if sub_id not in existing:
                    continue
                await tx.execute(
                    "INSERT INTO alert_deliveries (alert_id, subscription_id, state, attempts, "
                    "next_attempt_at, last_status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (alert_id, subscription_id) DO NOTHING",
                    (batch.alert_id, sub_id, state, attempts, next_at, status, now))
            if tally.pruned_ids:
                await store.remove(tx, tally.pruned_ids)
    except LeaseLost:
        return False
    return True


async def _existing(tx: Executor, ids: dict[int, Any]) -> set[int]:
    marks = ", ".join("?" for _ in ids)
    rows = await tx.fetchall(f"SELECT id FROM push_subscriptions WHERE id IN ({marks})",
                             list(ids))
    return {int(r["id"]) for r in rows}


async def renew(db: Database, owner: str, lease_until: float) -> None:
    """Extend every lease and claim ``owner`` holds: it is alive."""
    await db.execute("UPDATE alert_batches SET lease_until = ? "
                     "WHERE owner = ? AND state = 'leased'", (lease_until, owner))
    await db.execute("UPDATE alert_deliveries SET next_attempt_at = ? "
                     "WHERE owner = ? AND state = 'sending'", (lease_until, owner))


async def release_own(db: Database, alert_id: int, owner: str, now: float) -> None:
    """Free what ``owner`` still holds of this alert when it starts a new pass over it: a
    former pass that failed left it (one pass per alert runs on a node at a time), and
    renewing it would keep it from ever being sent."""
    await db.execute("UPDATE alert_batches SET lease_until = ? "
                     "WHERE alert_id = ? AND owner = ? AND state = 'leased'",
                     (now, alert_id, owner))
    await db.execute("UPDATE alert_deliveries SET next_attempt_at = ? "
                     "WHERE alert_id = ? AND owner = ? AND state = 'sending'",
                     (now, alert_id, owner))


async def next_due(db: Database, alert_id: int, now: float) -> float | None:
    """When batch work of this alert is due: now while some audience is uncut, else when
    the first lease held runs out (a live node finishes first), None when none is left."""
    alert = await _alert(db, alert_id)
    if alert is None or alert["status"] != "sending":
        return None
    if alert["audience_to"] is not None and int(alert["cut_to"]) < int(alert["audience_to"]):
        return now
    row = await db.fetchone("SELECT MIN(lease_until) AS t FROM alert_batches "
                            "WHERE alert_id = ? AND state = 'leased'", (alert_id,))
    return None if row is None or row["t"] is None else float(row["t"])
