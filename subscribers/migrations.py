"""Web Push's tables: VAPID keys, subscriptions, alerts and per-subscription progress.

Version numbers continue the one sequence of :mod:`ticker.storage.migrations`.
"""

from __future__ import annotations

from ticker.storage import migrations as platform
from ticker.storage.migrations import Migration

MIGRATIONS = (
    # Web Push (subscribers/): keys, subscriptions, alerts and per-subscription progress.
    # An alert's deliveries are its durable to-do list: a restart resumes from them.
    Migration(2, "web push", (
        """CREATE TABLE vapid_keys (
            id {pk},
            public_key TEXT NOT NULL UNIQUE,
            private_key TEXT NOT NULL,
            created_at {float} NOT NULL
        )""",
        """CREATE TABLE push_subscriptions (
            id {pk},
            endpoint TEXT NOT NULL UNIQUE,
            p256dh TEXT NOT NULL,
            auth TEXT NOT NULL,
            expiration_time {float},
            language TEXT NOT NULL,
            timezone TEXT NOT NULL,
            vapid_key_id {bigint} NOT NULL REFERENCES vapid_keys (id),
            created_at {float} NOT NULL,
            updated_at {float} NOT NULL
        )""",
        """CREATE TABLE push_subscription_topics (
            subscription_id {bigint} NOT NULL REFERENCES push_subscriptions (id) ON DELETE CASCADE,
            topic TEXT NOT NULL,
            PRIMARY KEY (subscription_id, topic)
        )""",
        "CREATE INDEX push_subscription_topics_topic ON push_subscription_topics (topic)",
        """CREATE TABLE alerts (
            id {pk},
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            url TEXT NOT NULL,
            icon TEXT NOT NULL,
            image TEXT NOT NULL,
            tag TEXT NOT NULL,
            topics {json} NOT NULL,
            language TEXT NOT NULL,
            urgency TEXT NOT NULL,
            ttl INTEGER NOT NULL,
            status TEXT NOT NULL,
            idempotency_key TEXT UNIQUE,
            request_hash TEXT NOT NULL,
            created_by {bigint},
            created_at {float} NOT NULL,
            scheduled_at {float},
            started_at {float},
            finished_at {float},
            total INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX alerts_status ON alerts (status)",
        """CREATE TABLE alert_deliveries (
            alert_id {bigint} NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
            subscription_id {bigint} NOT NULL
                REFERENCES push_subscriptions (id) ON DELETE CASCADE,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at {float} NOT NULL,
            last_status INTEGER,
            updated_at {float} NOT NULL,
            PRIMARY KEY (alert_id, subscription_id)
        )""",
        "CREATE INDEX alert_deliveries_subscription ON alert_deliveries (subscription_id)",
        "CREATE INDEX alert_deliveries_due ON alert_deliveries (alert_id, state, next_attempt_at)",
        # Anonymous counts of final outcomes whose delivery rows were removed with their
        # subscription, so an alert's totals survive a reader unsubscribing.
        """CREATE TABLE alert_outcomes (
            alert_id {bigint} NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
            outcome TEXT NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (alert_id, outcome)
        )""",
        """CREATE TABLE alert_receipts (
            alert_id {bigint} NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
            event TEXT NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (alert_id, event)
        )""",
    )),
    # Audience batches: an alert's audience is cut lazily into keyset ranges of subscription
    # ids (first_id < id <= last_id), each leased by one process (owner, lease_until) while
    # it sends them; a batch keeps its result counts, and only deliveries that need one
    # (retry, failure) get an alert_deliveries row. ``audience_to`` bounds the audience to
    # the subscriptions that existed when the alert was created; ``cut_to`` is how far the
    # cutting has gone. Row claims carry an owner too, so an expired claim is sent again.
    Migration(5, "audience batches", (
        """CREATE TABLE alert_batches (
            alert_id {bigint} NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
            first_id {bigint} NOT NULL,
            last_id {bigint} NOT NULL,
            state TEXT NOT NULL,
            owner TEXT,
            lease_until {float},
            attempts INTEGER NOT NULL DEFAULT 0,
            targeted INTEGER NOT NULL,
            accepted INTEGER NOT NULL DEFAULT 0,
            pruned INTEGER NOT NULL DEFAULT 0,
            retried INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            cancelled INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (alert_id, first_id)
        )""",
        "CREATE INDEX alert_batches_open ON alert_batches (alert_id, state, lease_until)",
        "ALTER TABLE alerts ADD COLUMN audience_to {bigint}",
        "ALTER TABLE alerts ADD COLUMN cut_to {bigint} NOT NULL DEFAULT 0",
        "ALTER TABLE alert_deliveries ADD COLUMN owner TEXT",
    )),
    # Alerts editors can shape: several languages, a collapse topic, a time to send, who
    # asked (the audit log's actor), and test sends that never count as alerts for readers.
    # ``scheduled_at`` (migration 2) holds send_at.
    Migration(6, "alert scheduling and targeting", (
        "ALTER TABLE alerts ADD COLUMN languages {json} NOT NULL DEFAULT '[]'",
        "ALTER TABLE alerts ADD COLUMN collapse TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE alerts ADD COLUMN actor TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE alerts ADD COLUMN test INTEGER NOT NULL DEFAULT 0",
        "UPDATE alerts SET languages = '[\"' || language || '\"]' WHERE language <> ''",
        # The runner's "what is due" question, asked every round.
        "CREATE INDEX alerts_scheduled ON alerts (status, scheduled_at)",
    )),
)

# The platform's migrations and push's: what a database used by push needs.
WITH_PLATFORM = (*platform.MIGRATIONS, *MIGRATIONS)
