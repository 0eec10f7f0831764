"""The newsroom's tables (migration 4 of the one global sequence)."""

from __future__ import annotations

from ticker.storage.migrations import Migration

MIGRATIONS = (
    Migration(4, "newsroom: articles, webhook signatures, feeds", (
        """CREATE TABLE articles (
            id {pk},
            guid TEXT NOT NULL UNIQUE,
            url TEXT NOT NULL,
            title TEXT NOT NULL,
            summary TEXT NOT NULL,
            category TEXT NOT NULL,
            tags {json} NOT NULL,
            language TEXT NOT NULL,
            image TEXT NOT NULL,
            published {float},
            updated {float},
            breaking INTEGER NOT NULL,
            approval TEXT CHECK (approval IN ('pending', 'sent', 'dismissed')),
            alert_id {bigint},
            created_at {float} NOT NULL,
            changed_at {float} NOT NULL
        )""",
        "CREATE INDEX articles_approval ON articles (approval)",
        # Signatures seen within the replay window, shared by every process of the site;
        # pruned by age in the transaction that adds one.
        """CREATE TABLE webhook_signatures (
            signature TEXT PRIMARY KEY,
            seen_at {float} NOT NULL
        )""",
        "CREATE INDEX webhook_signatures_seen_at ON webhook_signatures (seen_at)",
        # Feeds added by an admin (API or CLI); the configured [[feeds]] are not stored.
        """CREATE TABLE feeds (
            id {pk},
            name TEXT NOT NULL UNIQUE,
            url TEXT NOT NULL,
            interval {float} NOT NULL,
            language TEXT NOT NULL,
            category TEXT NOT NULL,
            created_at {float} NOT NULL,
            created_by TEXT NOT NULL
        )""",
    )),
)
