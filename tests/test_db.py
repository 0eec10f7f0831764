"""The database layer behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from ticker.storage import open_database
from ticker.storage.database import to_dollar
from ticker.storage.migrations import MIGRATIONS, migrate
from ticker.web.tokens import create_token, revoke_token, verify_token


def test_question_marks_become_numbered_placeholders() -> None:
    assert to_dollar("SELECT a FROM t WHERE b = ? AND c = ?") == (
        "SELECT a FROM t WHERE b = $1 AND c = $2")


async def test_migrations_run_once_and_are_recorded(database_url: str) -> None:
    db = await open_database(database_url)
    try:
        assert await migrate(db) == 0  # open_database already brought it up to date
        rows = await db.fetchall("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == [m.version for m in MIGRATIONS]
    finally:
        await db.close()


async def test_a_failed_transaction_writes_nothing(database_url: str) -> None:
    db = await open_database(database_url)
    try:
        with pytest.raises(RuntimeError):
            async with db.transaction() as tx:
                await tx.insert("INSERT INTO api_tokens (name, role, token_hash, created_at) "
                                "VALUES (?, ?, ?, ?)", ("a", "editor", "h1", 1.0))
                raise RuntimeError("boom")
        assert await db.fetchall("SELECT id FROM api_tokens") == []
    finally:
        await db.close()


async def test_tokens_verify_until_revoked(database_url: str) -> None:
    db = await open_database(database_url)
    try:
        token = await create_token(db, "cms", "editor")
        info = await verify_token(db, token)
        assert info is not None and (info.name, info.role) == ("cms", "editor")
        assert await verify_token(db, token + "x") is None
        assert await revoke_token(db, info.id)
        assert await verify_token(db, token) is None
    finally:
        await db.close()
