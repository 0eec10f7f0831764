"""A test send: one alert to one stored subscription, through the real send path.

The push goes through the engine's own parts (its VAPID key ring and JWT cache, its
encryptor, its sender) and the push service's answer is read with the same outcome table
(:func:`subscribers.delivery.policy.rule_for`), so what the editor's browser shows is what
readers will get. It never touches the alert's audience or the delivery rows.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from subscribers import subscriptions as store
from subscribers.delivery.engine import Engine, origin_of
from subscribers.delivery.policy import Action, rule_for
from subscribers.errors import UnknownSubscription
from subscribers.validate import AlertIn
from ticker.storage.database import Database


@dataclass(frozen=True)
class TestTarget:
    subscription_id: int
    endpoint: str
    p256dh: str
    auth: str
    vapid_key_id: int


@dataclass(frozen=True)
class TestOutcome:
    status: int | None  # the push service's HTTP status; None: no answer
    outcome: str  # the outcome table's name: accepted, gone, rejected, ...


def _raw(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def target(db: Database, endpoint: str, now: float) -> TestTarget:
    """The stored, unexpired subscription with this endpoint, or UnknownSubscription."""
    row = await db.fetchone(
        "SELECT id, endpoint, p256dh, auth, vapid_key_id FROM push_subscriptions "
        "WHERE endpoint = ? AND (expiration_time IS NULL OR expiration_time > ?)",
        (endpoint, now))
    if row is None:
        raise UnknownSubscription("No stored push subscription has that endpoint: subscribe "
                                  "this browser first (the push prompt on the site).")
    return TestTarget(int(row["id"]), row["endpoint"], row["p256dh"], row["auth"],
                      int(row["vapid_key_id"]))


async def send(engine: Engine, alert: AlertIn, alert_id: int, to: TestTarget) -> TestOutcome:
    origin = origin_of(to.endpoint)
    key = await engine.keys.get(to.vapid_key_id)
    headers = {"Authorization": engine.jwts.authorization(origin, key), "TTL": str(alert.ttl),
               "Urgency": alert.urgency, "Content-Encoding": "aes128gcm",
               "Content-Type": "application/octet-stream"}
    headers["Topic"] = alert.topic(alert_id)
    body = await engine.encryptor.encrypt(alert.notification(alert_id).encode(),
                                          _raw(to.p256dh), _raw(to.auth))
    reply = await engine.sender.post(to.endpoint, headers, body)
    rule = rule_for(reply.status)
    if rule.action is Action.DELETE:  # the browser unsubscribed: the same as for a reader
        async with engine.db.transaction() as tx:
            await store.remove(tx, [to.subscription_id])
    if engine.metrics is not None:
        engine.metrics.outcomes.inc(rule.outcome)
    return TestOutcome(reply.status, rule.outcome)
