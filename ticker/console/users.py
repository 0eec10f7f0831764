"""Console users: a name, a role and an argon2id password hash (argon2-cffi's defaults,
RFC 9106's second recommended parameter set). The clear password never leaves this module's
arguments: it is not stored, returned or logged."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ticker.storage.database import Database, Executor

ROLES = ("editor", "admin")
PASSWORD_MIN = 12
PASSWORD_MAX = 1024  # argon2 takes any length; a cap keeps a login request cheap
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"

_hasher = PasswordHasher()
# Verified against when the name is unknown, so an unknown name costs what a wrong password
# does and the answer's timing does not tell which names exist.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class UserError(ValueError):
    """A user cannot be added or changed as asked (the sentence says why)."""


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    disabled: bool


def check_password(password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise UserError(f"the password must be at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise UserError(f"the password must be at most {PASSWORD_MAX} characters")


def hash_password(password: str) -> str:
    check_password(password)
    return _hasher.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` is the one ``stored_hash`` was made from (always one argon2
    verification, also when there is no user: ``stored_hash`` None)."""
    if len(password) > PASSWORD_MAX:
        return False
    try:
        return bool(_hasher.verify(stored_hash or _DUMMY_HASH, password)) and (
            stored_hash is not None)
    except (VerificationError, InvalidHashError):
        return False


def _user(row: dict[str, Any]) -> User:
    return User(int(row["id"]), str(row["name"]), str(row["role"]), row["disabled_at"] is not None)


async def hashed(password: str) -> str:
    """``hash_password`` off the event loop: argon2 takes tens of milliseconds of CPU by
    design (and releases the GIL). Call it before opening a transaction, so the database's
    one writer is not held while it runs."""
    return await asyncio.to_thread(hash_password, password)


async def add_user(db: Executor, name: str, role: str, password_hash: str, now: float) -> int:
    """Add a user with a hash from :func:`hashed` (never a clear password)."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if not password_hash.startswith("$argon2id$"):
        raise UserError("a user is added with the argon2id hash of their password")
    if await db.fetchone("SELECT id FROM console_users WHERE name = ?", (name,)):
        raise UserError(f"a user named {name!r} already exists")
    return await db.insert(
        "INSERT INTO console_users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
        (name, role, password_hash, now))


async def list_users(db: Executor) -> list[dict[str, Any]]:
    return await db.fetchall(
        "SELECT id, name, role, created_at, disabled_at, last_login_at FROM console_users "
        "ORDER BY id")


async def find_user(db: Executor, *, name: str | None = None,
                    user_id: int | None = None) -> User | None:
    column, value = ("name", name) if name is not None else ("id", user_id)
    row = await db.fetchone(
        f"SELECT id, name, role, disabled_at FROM console_users WHERE {column} = ?", (value,))
    return _user(row) if row else None


async def authenticate(db: Database, name: str, password: str, now: float) -> User | None:
    """The active user ``name`` if ``password`` is theirs (and their last login noted)."""
    row = await db.fetchone(
        "SELECT id, name, role, disabled_at, password_hash FROM console_users WHERE name = ?",
        (name,))
    stored = str(row["password_hash"]) if row else None
    matches = await asyncio.to_thread(password_matches, stored, password)
    if not matches or row is None or row["disabled_at"] is not None:
        return None
    await db.execute("UPDATE console_users SET last_login_at = ? WHERE id = ?", (now, row["id"]))
    return _user(row)


async def disable_user(db: Executor, user_id: int, now: float) -> bool:
    """Disable the user and end every session of theirs; False if none or already so."""
    n = await db.execute(
        "UPDATE console_users SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL",
        (now, user_id))
    await db.execute("DELETE FROM console_sessions WHERE user_id = ?", (user_id,))
    return n > 0
