"""Alerts: the record an editor creates, who it reaches, and its progress.

Statuses: ``scheduled`` (``send_at`` in the future, kept in ``scheduled_at``), ``sending``,
``done``, ``cancelled``, ``expired`` (a scheduled alert whose TTL ran out before any node
could start it, e.g. the server was down). Starting an alert writes nothing per reader: it
records the newest subscription id then (``audience_to``), and the audience up to it is
cut into batches as sending advances (:mod:`subscribers.delivery.batchstore`), so the first
push never waits for the audience to be copied. Only deliveries that need one get a row in
``alert_deliveries`` (:mod:`subscribers.delivery.store`).

The database is the only schedule: :func:`start_due` moves each due ``scheduled`` alert to
``sending`` with one conditional UPDATE, so with two processes polling it still starts
once, and an alert scheduled before a restart starts after it.

Test sends (``POST /api/alerts/test``) are rows flagged ``test``: they give the service
worker a real id to dedupe and count receipts against, but never appear in the list of
alerts, never reach readers, and are never started by the runner.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

from subscribers.delivery.batching import OPEN_ROW_STATES, alert_counts
from subscribers.errors import IdempotencyConflict
from subscribers.validate import AlertIn
from ticker import audit
from ticker.storage.database import Database, Executor

LIST_MAX = 200


def request_hash(alert: AlertIn) -> str:
    """Identifies what was asked, to tell a retried request from a reused Idempotency-Key."""
    return hashlib.sha256(json.dumps(asdict(alert), sort_keys=True).encode()).hexdigest()


def audience(topics: tuple[str, ...], languages: tuple[str, ...],
             now: float) -> tuple[str, list[Any]]:
    """The SQL condition on subscriptions ``s`` for "who gets this alert" (pure).

    No topics: everyone. Topics: subscribers who chose at least one of them. No languages:
    every language; else subscribers of any of them, where ``en`` reaches ``en`` and
    ``en-gb`` and ``en-gb`` reaches only ``en-gb`` (and its subtags). Expired subscriptions
    (``expirationTime`` in the past) are skipped.
    """
    clauses = ["(s.expiration_time IS NULL OR s.expiration_time > ?)"]
    params: list[Any] = [now]
    if languages:
        clauses.append("(" + " OR ".join("s.language = ? OR s.language LIKE ?"
                                         for _ in languages) + ")")
        for language in languages:
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


async def by_key(db: Executor, key: str) -> int | None:
    """The alert an Idempotency-Key made, whatever it asked for."""
    row = await db.fetchone("SELECT id FROM alerts WHERE idempotency_key = ?", (key,))
    return None if row is None else int(row["id"])


async def create(db: Database, alert: AlertIn, *, idempotency_key: str | None,
                 created_by: int | None, now: float, actor: str = "system") -> tuple[int, bool]:
    """Store the alert and start it, or schedule it when ``send_at`` is ahead;
    ``(id, False)`` when the key was seen before."""
    digest = request_hash(alert)
    scheduled = alert.send_at is not None and alert.send_at > now
    async with db.transaction() as tx:
        if idempotency_key is not None:
            existing = await _by_key(tx, idempotency_key, digest)
            if existing is not None:
                return existing, False
        # DO NOTHING: a retry racing its first request (PostgreSQL runs them side by side;
        # SQLite's one writer never does) waits for it and then finds its alert by the key.
        row = await tx.fetchone(
            "INSERT INTO alerts (title, body, url, icon, image, tag, topics, language, "
            "languages, collapse, urgency, ttl, status, idempotency_key, request_hash, "
            "created_by, actor, created_at, scheduled_at, started_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            (alert.title, alert.body, alert.url, alert.icon, alert.image, alert.tag,
             json.dumps(list(alert.topics)), alert.languages[0] if alert.languages else "",
             json.dumps(list(alert.languages)), alert.collapse, alert.urgency, alert.ttl,
             "scheduled" if scheduled else "sending", idempotency_key, digest, created_by,
             actor, now, alert.send_at if scheduled else None, None if scheduled else now))
        if row is None:
            assert idempotency_key is not None  # NULL keys never conflict
            existing = await _by_key(tx, idempotency_key, digest)
            assert existing is not None
            return existing, False
        alert_id = int(row["id"])
        await audit.record(tx, actor, "alert.schedule" if scheduled else "alert.create",
                           f"alert:{alert_id}", now, _audit_detail(alert))
        if not scheduled:
            await _start_audience(tx, alert_id)
    return alert_id, True


def _audit_detail(alert: AlertIn) -> dict[str, Any]:
    return {"title": alert.title, "topics": list(alert.topics),
            "languages": list(alert.languages), "sendAt": alert.send_at}


async def _start_audience(tx: Executor, alert_id: int) -> None:
    """Bound the audience to the subscriptions there are now (O(1): nothing is copied)."""
    await tx.execute("UPDATE alerts SET audience_to = (SELECT COALESCE(MAX(id), 0) "
                     "FROM push_subscriptions) WHERE id = ?", (alert_id,))


async def audience_size(db: Database, alert: AlertIn, now: float) -> int:
    """How many subscriptions the alert would reach now (the same condition as the send)."""
    where, params = audience(alert.topics, alert.languages, now)
    row = await db.fetchone(f"SELECT COUNT(*) AS n FROM push_subscriptions s WHERE {where}",
                            params)
    return 0 if row is None else int(row["n"])


async def start_due(db: Database, now: float) -> tuple[list[int], list[int]]:
    """Start every scheduled alert whose time has come; ``(started, expired)`` ids.

    The conditional UPDATE is the whole guard: of two processes seeing the same due alert,
    only the one whose UPDATE changes the row bounds the audience, in the same transaction.
    An alert whose TTL ran out before it could start (the server was down) ends
    ``expired`` instead: a push service would drop it undelivered anyway.
    """
    rows = await db.fetchall(
        "SELECT * FROM alerts WHERE status = 'scheduled' AND scheduled_at <= ? "
        "ORDER BY scheduled_at, id", (now,))
    started: list[int] = []
    expired: list[int] = []
    for row in rows:
        alert_id, alert = int(row["id"]), alert_from_row(row)
        late = alert.send_at is not None and alert.send_at + alert.ttl <= now
        async with db.transaction() as tx:
            won = await tx.execute(
                "UPDATE alerts SET status = ?, started_at = ?, finished_at = ? "
                "WHERE id = ? AND status = 'scheduled'",
                ("expired" if late else "sending", now, now if late else None, alert_id))
            if won and not late:
                await _start_audience(tx, alert_id)
        if won:
            (expired if late else started).append(alert_id)
    return started, expired


async def next_scheduled(db: Database) -> float | None:
    """When the earliest scheduled alert is due; None when none is scheduled."""
    row = await db.fetchone("SELECT MIN(scheduled_at) AS t FROM alerts "
                            "WHERE status = 'scheduled'")
    return None if row is None or row["t"] is None else float(row["t"])


async def create_test(db: Database, alert: AlertIn, *, actor: str, endpoint: str,
                      now: float) -> int:
    """A flagged row for a test send to one subscription (see the module docstring)."""
    async with db.transaction() as tx:
        row = await tx.fetchone(
            "INSERT INTO alerts (title, body, url, icon, image, tag, topics, language, "
            "languages, collapse, urgency, ttl, status, request_hash, actor, test, "
            "created_at, started_at, total) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'sending', ?, ?, 1, ?, ?, 1) "
            "RETURNING id",
            (alert.title, alert.body, alert.url, alert.icon, alert.image, alert.tag,
             json.dumps(list(alert.topics)), alert.languages[0] if alert.languages else "",
             json.dumps(list(alert.languages)), alert.collapse, alert.urgency, alert.ttl,
             request_hash(alert), actor, now, now))
        assert row is not None
        alert_id = int(row["id"])
        # The endpoint names a reader's device: the audit log keeps only its push service.
        await audit.record(tx, actor, "alert.test", f"alert:{alert_id}", now,
                           {"title": alert.title, "service": endpoint.split("/")[2]})
    return alert_id


async def finish_test(db: Database, alert_id: int, outcome: str, now: float) -> None:
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO alert_outcomes (alert_id, outcome, n) VALUES (?, ?, 1)",
                         (alert_id, outcome))
        await tx.execute("UPDATE alerts SET status = 'done', finished_at = ? WHERE id = ?",
                         (now, alert_id))


def alert_from_row(row: dict[str, Any]) -> AlertIn:
    return AlertIn(row["title"], row["body"], row["url"], row["icon"], row["image"],
                   row["tag"], tuple(json.loads(row["topics"])),
                   tuple(json.loads(row["languages"])), row["urgency"], int(row["ttl"]),
                   row["collapse"],
                   None if row["scheduled_at"] is None else float(row["scheduled_at"]))


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
    languages = json.loads(row["languages"])
    return {"id": row["id"], "status": row["status"], "title": row["title"],
            "url": row["url"], "topics": json.loads(row["topics"]),
            "language": languages[0] if languages else None, "languages": languages,
            "collapse": row["collapse"] or None, "urgency": row["urgency"], "ttl": row["ttl"],
            "createdAt": row["created_at"], "createdBy": row["actor"] or None,
            "sendAt": row["scheduled_at"], "finishedAt": row["finished_at"],
            "test": bool(row["test"]), "total": total, "remaining": remaining,
            "counts": counts, "receipts": receipts}


async def recent(db: Database, limit: int) -> list[dict[str, Any]]:
    """The newest alerts first (test sends left out), each as :func:`status` shows it."""
    rows = await db.fetchall("SELECT id FROM alerts WHERE test = 0 ORDER BY id DESC LIMIT ?",
                             (max(1, min(limit, LIST_MAX)),))
    found = [await status(db, int(r["id"])) for r in rows]
    return [s for s in found if s is not None]


async def cancel(db: Database, alert_id: int, now: float, actor: str = "system") -> bool:
    """Stop an alert: a scheduled one never sends, a sending one sends nothing not yet on
    the wire. False if it had already ended."""
    async with db.transaction() as tx:
        changed = await tx.execute(
            "UPDATE alerts SET status = 'cancelled', finished_at = ? "
            "WHERE id = ? AND status IN ('scheduled', 'sending') AND test = 0",
            (now, alert_id))
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
            await audit.record(tx, actor, "alert.cancel", f"alert:{alert_id}", now)
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
    rows = await db.fetchall("SELECT id FROM alerts WHERE status = 'sending' AND test = 0 "
                             "ORDER BY id")
    return [int(r["id"]) for r in rows]
