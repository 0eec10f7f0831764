"""Console sessions: a random id in an HttpOnly cookie, stored as its SHA-256 (the id has
256 bits: nothing to guess, so no stretching), with the user, a CSRF token and two expiries.

A session ends when it has been idle for ``idle`` seconds (``seen_at`` moves on use) or at
``expires_at`` (the absolute limit set at login, whatever the use), at logout, and when its
user is disabled (the rows go, and the lookup also requires an active user).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from ticker.storage.database import Executor

COOKIE = "ticker_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
# seen_at is rewritten at most this often per session: idle expiry needs minutes, not
# a write per request.
TOUCH_SECONDS = 30.0
SESSION_ID_MAX = 100


@dataclass(frozen=True)
class SessionUser:
    """A live session: whose, with which role, and its CSRF token."""

    session_id: int
    user_id: int
    name: str
    role: str
    csrf: str


def hash_session(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def csrf_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


async def create_session(db: Executor, user_id: int, now: float,
                         max_age: float) -> tuple[str, str]:
    """A new session for ``user_id``: (the cookie's value, the CSRF token)."""
    value, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    await db.execute(
        "INSERT INTO console_sessions (session_hash, user_id, csrf, created_at, seen_at, "
        "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        (hash_session(value), user_id, csrf, now, now, now + max_age))
    return value, csrf


def expired(seen_at: float, expires_at: float, now: float, idle: float) -> bool:
    return now >= expires_at or now - seen_at >= idle


async def session_user(db: Executor, value: str, now: float, idle: float) -> SessionUser | None:
    """The session a cookie value stands for, if it is live and its user active."""
    if not value or len(value) > SESSION_ID_MAX:
        return None
    row = await db.fetchone(
        "SELECT s.id, s.user_id, s.csrf, s.seen_at, s.expires_at, u.name, u.role "
        "FROM console_sessions s JOIN console_users u ON u.id = s.user_id "
        "WHERE s.session_hash = ? AND u.disabled_at IS NULL", (hash_session(value),))
    if row is None:
        return None
    if expired(float(row["seen_at"]), float(row["expires_at"]), now, idle):
        await db.execute("DELETE FROM console_sessions WHERE id = ?", (row["id"],))
        return None
    if now - float(row["seen_at"]) >= TOUCH_SECONDS:
        await db.execute("UPDATE console_sessions SET seen_at = ? WHERE id = ?", (now, row["id"]))
    return SessionUser(int(row["id"]), int(row["user_id"]), str(row["name"]), str(row["role"]),
                       str(row["csrf"]))


async def end_session(db: Executor, value: str) -> bool:
    n = await db.execute("DELETE FROM console_sessions WHERE session_hash = ?",
                         (hash_session(value),))
    return n > 0


async def purge_expired(db: Executor, now: float, idle: float) -> int:
    return await db.execute(
        "DELETE FROM console_sessions WHERE expires_at <= ? OR seen_at <= ?", (now, now - idle))


async def purge_sessions(db: Executor, idle: float,
                         clock: Callable[[], float] = time.time) -> int:
    """The scheduled job: forget sessions nobody can use any more (a lookup would delete
    each anyway; this keeps the table small when their cookies never come back)."""
    return await purge_expired(db, clock(), idle)
