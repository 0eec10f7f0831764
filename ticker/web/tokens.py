"""API tokens: shown once, stored as a hash.

Tokens are 32 random bytes, so a plain SHA-256 is enough (no password stretching needed:
there is nothing to guess) and lets a lookup be one indexed equality.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from ticker.storage.database import Database, Executor

TOKEN_PREFIX = "tk_"
ROLES = ("editor", "admin")


@dataclass(frozen=True)
class TokenInfo:
    """Who is calling: an API token (``kind`` "token") or a console login ("user")."""

    id: int
    name: str
    role: str
    kind: str = "token"

    @property
    def actor(self) -> str:
        """How the audit log names the caller: ``token:cms``, ``user:alice``."""
        return f"{self.kind}:{self.name}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def create_token(db: Executor, name: str, role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not name.strip():
        raise ValueError("name must not be empty")
    token = new_token()
    await db.insert(
        "INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)",
        (name.strip(), role, hash_token(token), time.time()),
    )
    return token


async def verify_token(db: Database, token: str) -> TokenInfo | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = await db.fetchone(
        "SELECT id, name, role FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
        (hash_token(token),),
    )
    if row is None:
        return None
    return TokenInfo(int(row["id"]), str(row["name"]), str(row["role"]))


async def list_tokens(db: Database) -> list[dict[str, object]]:
    return await db.fetchall(
        "SELECT id, name, role, created_at, revoked_at FROM api_tokens ORDER BY id")


async def revoke_token(db: Executor, token_id: int) -> bool:
    n = await db.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                         (time.time(), token_id))
    return n > 0
