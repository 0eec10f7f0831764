"""The audit log: who did what, and when, to alerts, approvals, tokens, users and feeds.

Every part that changes one of those calls :func:`record` (in the same transaction as the
change where it has one, so a refused or failed change leaves no entry); admins read it
through :func:`recent`. ``actor`` names a person or a token (``user:alice``,
``token:cms``, ``system`` for what the server does by itself, e.g. a breaking article sent
under ``breaking_policy = "auto"``); ``action`` is a dotted verb (``alert.create``,
``alert.cancel``, ``feed.add``, ``user.add``, ``token.revoke``, ...); ``target`` names the
thing (``alert:12``, ``feed:bbc``). ``detail`` is a small JSON object and never holds a
secret (a token's or password's value is never passed in).
"""

from __future__ import annotations

import json
from typing import Any

from ticker.storage.database import Executor

RECENT_MAX = 500


async def record(db: Executor, actor: str, action: str, target: str, now: float,
                 detail: dict[str, Any] | None = None) -> None:
    await db.execute(
        "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (now, actor, action, target, json.dumps(detail or {}, sort_keys=True)))


async def recent(db: Executor, limit: int = 100, before: int | None = None
                 ) -> list[dict[str, Any]]:
    """The newest entries first; ``before`` (an entry id) pages further back."""
    limit = max(1, min(limit, RECENT_MAX))
    where, params = ("WHERE id < ?", [before]) if before is not None else ("", [])
    rows = await db.fetchall(f"SELECT id, at, actor, action, target, detail FROM audit_log "
                             f"{where} ORDER BY id DESC LIMIT ?", [*params, limit])
    return [{**row, "detail": json.loads(row["detail"])} for row in rows]
