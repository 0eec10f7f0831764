"""Subscriptions in the database: upsert by endpoint, removal leaving no trace.

No client address is stored. Removing a subscription removes its topics and its delivery
rows; the final outcomes those rows held are first folded into the anonymous per-alert
counts (``alert_outcomes``) so an alert's totals do not shrink when a reader leaves.
"""

from __future__ import annotations

from collections.abc import Iterable

from subscribers.validate import SubscriptionIn
from ticker.storage.database import Database, Executor

# Delivery states that end a delivery (see subscribers.delivery.policy and .store).
FINAL_STATES = ("sent", "gone", "failed", "gave_up", "expired", "unknown", "cancelled")
_FINAL_SQL = ", ".join(f"'{s}'" for s in FINAL_STATES)


async def upsert(db: Database, sub: SubscriptionIn, vapid_key_id: int, now: float) -> bool:
    """Store ``sub`` (keyed by its endpoint); True when it is new.

    When it replaces another subscription (``sub.replaces``: endpoint and auth secret, after
    a ``pushsubscriptionchange``), that row goes in the same transaction and, unless the
    browser sent topics, its topics carry over.
    """
    async with db.transaction() as tx:
        topics = sub.topics
        if sub.replaces is not None and sub.replaces[0] != sub.endpoint:
            old = await tx.fetchone(
                "SELECT id FROM push_subscriptions WHERE endpoint = ? AND auth = ?",
                sub.replaces)
            if old is not None:
                if not sub.topics_given:
                    rows = await tx.fetchall(
                        "SELECT topic FROM push_subscription_topics WHERE subscription_id = ?",
                        (old["id"],))
                    topics = tuple(sorted(str(r["topic"]) for r in rows))
                await remove(tx, [int(old["id"])])
        row = await tx.fetchone("SELECT id FROM push_subscriptions WHERE endpoint = ?",
                                (sub.endpoint,))
        if row is None:
            # ON CONFLICT: the same endpoint posted twice at once (page and service worker)
            # must not fail on PostgreSQL's unique index; SQLite's one writer never overlaps.
            stored = await tx.fetchone(
                "INSERT INTO push_subscriptions (endpoint, p256dh, auth, expiration_time, "
                "language, timezone, vapid_key_id, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (endpoint) DO UPDATE SET "
                "p256dh = excluded.p256dh, auth = excluded.auth, "
                "expiration_time = excluded.expiration_time, language = excluded.language, "
                "timezone = excluded.timezone, vapid_key_id = excluded.vapid_key_id, "
                "updated_at = excluded.updated_at RETURNING id",
                (sub.endpoint, sub.p256dh, sub.auth, sub.expiration_time, sub.language,
                 sub.timezone, vapid_key_id, now, now))
            sub_id = int((stored or {})["id"])
            await tx.execute("DELETE FROM push_subscription_topics WHERE subscription_id = ?",
                             (sub_id,))
        else:
            sub_id = int(row["id"])
            await tx.execute(
                "UPDATE push_subscriptions SET p256dh = ?, auth = ?, expiration_time = ?, "
                "language = ?, timezone = ?, vapid_key_id = ?, updated_at = ? WHERE id = ?",
                (sub.p256dh, sub.auth, sub.expiration_time, sub.language, sub.timezone,
                 vapid_key_id, now, sub_id))
            await tx.execute("DELETE FROM push_subscription_topics WHERE subscription_id = ?",
                             (sub_id,))
        for topic in topics:
            await tx.execute("INSERT INTO push_subscription_topics (subscription_id, topic) "
                             "VALUES (?, ?)", (sub_id, topic))
    return row is None


async def remove(tx: Executor, subscription_ids: Iterable[int]) -> None:
    """Delete subscriptions and every row that names them (inside the caller's transaction)."""
    for sub_id in subscription_ids:
        await tx.execute(
            "INSERT INTO alert_outcomes (alert_id, outcome, n) "
            "SELECT alert_id, state, 1 FROM alert_deliveries "
            f"WHERE subscription_id = ? AND state IN ({_FINAL_SQL}) "
            "ON CONFLICT (alert_id, outcome) DO UPDATE SET n = alert_outcomes.n + 1",
            (sub_id,))
        await tx.execute("DELETE FROM alert_deliveries WHERE subscription_id = ?", (sub_id,))
        await tx.execute("DELETE FROM push_subscription_topics WHERE subscription_id = ?",
                         (sub_id,))
        await tx.execute("DELETE FROM push_subscriptions WHERE id = ?", (sub_id,))


async def unsubscribe(db: Database, endpoint: str, auth: str) -> bool:
    """Remove the subscription with this endpoint and auth secret; False if there is none."""
    async with db.transaction() as tx:
        row = await tx.fetchone(
            "SELECT id FROM push_subscriptions WHERE endpoint = ? AND auth = ?",
            (endpoint, auth))
        if row is None:
            return False
        await remove(tx, [int(row["id"])])
    return True


async def count(db: Database) -> int:
    row = await db.fetchone("SELECT COUNT(*) AS n FROM push_subscriptions")
    return int(row["n"]) if row else 0
