"""Alerts: the record an editor creates, who it reaches, and its progress.

Statuses: ``scheduled`` (a later editor workflow sets ``scheduled_at``), ``sending``,
``done``, ``cancelled``. Creating an alert writes one row whatever its audience: it records
the newest subscription id then (``audience_to``), and the audience up to it is cut into
batches as sending advances (:mod:`subscribers.delivery.batchstore`), so the first push
never waits for the audience to be copied. Only deliveries that need one get a row in
``alert_deliveries`` (:mod:`subscribers.delivery.store`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

from subscribers.delivery.batching import OPEN_ROW_STATES, alert_counts
from subscribers.errors import IdempotencyConflict
from subscribers.validate import AlertIn
from ticker.storage.database import Database, Executor


def request_hash(alert: AlertIn) -> str:
    """Identifies what was asked, to tell a retried request from a reused Idempotency-Key."""
    return hashlib.sha256(json.dumps(asdict(alert), sort_keys=True).encode()).hexdigest()


def audience(topics: tuple[str, ...], language: str, now: float) -> tuple[str, list[Any]]:
    """The SQL condition on subscriptions ``s`` for "who gets this alert" (pure).

    No topics: everyone. Topics: subscribers who chose at least one of them. A language
    ``en`` reaches ``en`` and ``en-gb``; ``en-gb`` reaches only ``en-gb`` (and its subtags).
    Expired subscriptions (``expirationTime`` in the past) are skipped.
    """
    clauses = ["(s.expiration_time IS NULL OR s.expiration_time > ?)"]
    params: list[Any] = [now]
    if language:
        clauses.append("(s.language = ? OR s.language LIKE ?)")
        params += [language, language + "-%"]
    if topics:
        marks = ", ".join("?" for _ in topics)
        clauses.append("EXISTS (SELECT 1 FROM push_subscription_topics t WHERE "
                       f"t.subscription_id = s.id AND t.topic IN ({marks}))")
        params += list(topics)
    return " AND ".join(clauses), params


async def _by_key(tx: Executor, key: str, digest: str) -> int | None:
    row = await tx.fetchone("SELECT id, request_hash FROM alerts WHERE idempotency_key = ?",
                            (key,))
    if row is None:
        return None
    if row["request_hash"] != digest:
        raise IdempotencyConflict()
    return int(row["id"])


async def create(db: Database, alert: AlertIn, *, idempotency_key: str | None,
                 created_by: int | None, now: float) -> tuple[int, bool]:
    """Store the alert (one row); ``(id, False)`` when the key was seen before."""
    digest = request_hash(alert)
    async with db.transaction() as tx:
        if idempotency_key is not None:
            existing = await _by_key(tx, idempotency_key, digest)
            if existing is not None:
                return existing, False
        # DO NOTHING: a retry racing its first request (PostgreSQL runs them side by side;
        # SQLite's one writer never does) waits for it and then finds its alert by the key.
        # audience_to: subscribers who arrive later are not in this alert's audience.
        row = await tx.fetchone(
            "INSERT INTO alerts (title, body, url, icon, image, tag, topics, language, urgency, "
            "ttl, status, idempotency_key, request_hash, created_by, created_at, started_at, "
            "audience_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'sending', ?, ?, ?, ?, ?, "
            "(SELECT COALESCE(MAX(id), 0) FROM push_subscriptions)) "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            (alert.title, alert.body, alert.url, alert.icon, alert.image, alert.tag,
             json.dumps(list(alert.topics)), alert.language, alert.urgency, alert.ttl,
             idempotency_key, digest, created_by, now, now))
        if row is None:
            assert idempotency_key is not None  # NULL keys never conflict
            existing = await _by_key(tx, idempotency_key, digest)
            assert existing is not None
            return existing, False
    return int(row["id"]), True


def alert_from_row(row: dict[str, Any]) -> AlertIn:
    return AlertIn(row["title"], row["body"], row["url"], row["icon"], row["image"],
                   row["tag"], tuple(json.loads(row["topics"])), row["language"],
                   row["urgency"], int(row["ttl"]))


async def get(db: Database, alert_id: int) -> dict[str, Any] | None:
    return await db.fetchone("SELECT * FROM alerts WHERE id = ?", (alert_id,))


async def exists(db: Database, alert_id: int) -> bool:
    return await db.fetchone("SELECT id FROM alerts WHERE id = ?", (alert_id,)) is not None


async def _batch_totals(db: Database, alert_id: int) -> dict[str, int]:
    """Sums over the alert's batches, and ``pending``: the targeted of unwritten ones."""
    row = await db.fetchone(
        "SELECT COALESCE(SUM(targeted), 0) AS targeted, COALESCE(SUM(accepted), 0) AS accepted, "
        "COALESCE(SUM(pruned), 0) AS pruned, COALESCE(SUM(retried), 0) AS retried, "
        "COALESCE(SUM(cancelled), 0) AS cancelled, "
        "COALESCE(SUM(CASE WHEN state = 'leased' THEN targeted ELSE 0 END), 0) AS pending "
        "FROM alert_batches WHERE alert_id = ?", (alert_id,))
    return {k: int(v) for k, v in (row or {}).items()}


async def status(db: Database, alert_id: int) -> dict[str, Any] | None:
    """What ``GET /api/alerts/{id}`` shows: the alert, counts, receipts.

    ``total`` (= ``counts.targeted``) is the audience cut so far: exact, and final once the
    whole audience is cut (the first batches go out before the last are cut).
    """
    row = await get(db, alert_id)
    if row is None:
        return None
    rows: dict[str, int] = {}
    for r in await db.fetchall("SELECT state, COUNT(*) AS n FROM alert_deliveries "
                               "WHERE alert_id = ? GROUP BY state", (alert_id,)):
        rows[r["state"]] = int(r["n"])
    for r in await db.fetchall("SELECT outcome, n FROM alert_outcomes WHERE alert_id = ?",
                               (alert_id,)):
        rows[r["outcome"]] = rows.get(r["outcome"], 0) + int(r["n"])
    batches = await _batch_totals(db, alert_id)
    # row["total"]: an alert from before batches, whose rows were copied when it was made
    total = int(row["total"]) + batches["targeted"]
    counts = alert_counts(batches, rows, batches["pending"], total)
    receipts = {"shown": 0, "clicked": 0}
    for r in await db.fetchall("SELECT event, n FROM alert_receipts WHERE alert_id = ?",
                               (alert_id,)):
        receipts[r["event"]] = int(r["n"])
    remaining = sum(counts.get(s, 0) for s in OPEN_ROW_STATES)
    return {"id": row["id"], "status": row["status"], "title": row["title"],
            "url": row["url"], "topics": json.loads(row["topics"]),
            "language": row["language"] or None, "urgency": row["urgency"], "ttl": row["ttl"],
            "createdAt": row["created_at"], "finishedAt": row["finished_at"],
            "total": total, "remaining": remaining, "counts": counts,
            "receipts": receipts}


async def cancel(db: Database, alert_id: int, now: float) -> bool:
    """Stop an alert: nothing not yet on the wire is sent. False if it had already ended."""
    async with db.transaction() as tx:
        changed = await tx.execute(
            "UPDATE alerts SET status = 'cancelled', finished_at = ? "
            "WHERE id = ? AND status IN ('scheduled', 'sending')", (now, alert_id))
        if changed:
            await tx.execute(
                "UPDATE alert_deliveries SET state = 'cancelled', updated_at = ? "
                "WHERE alert_id = ? AND state IN ('pending', 'retry')", (now, alert_id))
            # Batches whose node stopped are cancelled whole; a live node ends its own at
            # its next subscriber and counts the rest cancelled. Nothing more is cut.
            await tx.execute(
                "UPDATE alert_batches SET state = 'done', owner = NULL, lease_until = NULL, "
                "cancelled = targeted WHERE alert_id = ? AND state = 'leased' "
                "AND lease_until <= ?", (alert_id, now))
    return bool(changed)


async def finish_if_done(db: Database, alert_id: int, now: float) -> bool:
    """Mark a sending alert done when nothing is left: its audience all cut, every batch
    written, no delivery row open. True if it is (now) finished."""
    row = await db.fetchone(
        "SELECT (SELECT COUNT(*) FROM alert_deliveries WHERE alert_id = ? "
        "AND state IN ('pending', 'retry', 'sending')) + (SELECT COUNT(*) FROM alert_batches "
        "WHERE alert_id = ? AND state = 'leased') + (SELECT COUNT(*) FROM alerts WHERE id = ? "
        "AND status = 'sending' AND cut_to < audience_to) AS n", (alert_id, alert_id, alert_id))
    if row and int(row["n"]):
        return False
    await db.execute("UPDATE alerts SET status = 'done', finished_at = ? "
                     "WHERE id = ? AND status = 'sending'", (now, alert_id))
    return True


async def record_receipt(db: Database, alert_id: int, event: str) -> None:
    await db.execute(
        "INSERT INTO alert_receipts (alert_id, event, n) VALUES (?, ?, 1) "
        "ON CONFLICT (alert_id, event) DO UPDATE SET n = alert_receipts.n + 1",
        (alert_id, event))


async def sending(db: Database) -> list[int]:
    rows = await db.fetchall("SELECT id FROM alerts WHERE status = 'sending' ORDER BY id")
    return [int(r["id"]) for r in rows]
