"""The audit log keeps who did what, newest first, on SQLite and PostgreSQL."""

from __future__ import annotations

from ticker import audit
from ticker.storage import open_database


async def test_entries_come_back_newest_first_with_their_detail(database_url: str) -> None:
    db = await open_database(database_url)
    try:
        await audit.record(db, "user:alice", "feed.add", "feed:bbc", 10.0, {"url": "https://x"})
        await audit.record(db, "token:cms", "alert.create", "alert:1", 11.0)
        entries = await audit.recent(db)
        assert [(e["actor"], e["action"], e["target"]) for e in entries] == [
            ("token:cms", "alert.create", "alert:1"), ("user:alice", "feed.add", "feed:bbc")]
        assert entries[1]["detail"] == {"url": "https://x"} and entries[0]["detail"] == {}
        older = await audit.recent(db, limit=5, before=entries[0]["id"])
        assert [e["action"] for e in older] == ["feed.add"]
    finally:
        await db.close()


async def test_an_entry_written_in_a_failed_transaction_is_not_kept(database_url: str) -> None:
    db = await open_database(database_url)
    try:
        try:
            async with db.transaction() as tx:
                await audit.record(tx, "user:bob", "user.add", "user:carol", 1.0)
                raise RuntimeError("the change itself failed")
        except RuntimeError:
            pass
        assert await audit.recent(db) == []
    finally:
        await db.close()
