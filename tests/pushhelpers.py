"""Helpers for the Web Push tests: a clock tests move by hand, an in-process engine on a
real SQLite file with the push-service stand-in, and a real server wired to the stand-in."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from subscribers import alerts
from subscribers import subscriptions as store
from subscribers.crypto import vapid
from subscribers.delivery.batching import COUNT_KEYS
from subscribers.delivery.engine import Engine
from subscribers.delivery.sender import Sender, make_session
from subscribers.migrations import WITH_PLATFORM
from subscribers.testing import BrowserSubscriber, PushServiceStandIn
from subscribers.validate import AlertIn, SubscriptionIn
from ticker.storage import Database, open_database

SUBJECT = "mailto:newsdesk@example.org"


class ManualClock:
    """Time moves only when a test (or the engine's sleep) says so."""

    def __init__(self, start: float | None = None) -> None:
        self.t = time.time() if start is None else start

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


def alert_in(title: str = "Breaking", *, topics: tuple[str, ...] = (), language: str = "",
             tag: str = "story-1", ttl: int = 3600, body: str = "Details follow.") -> AlertIn:
    return AlertIn(title, body, "https://news.example/story", "/icon.png", "", tag, topics,
                   (language,) if language else (), "high", ttl)


@dataclass
class EngineRig:
    db: Database
    ps: PushServiceStandIn
    engine: Engine
    clock: ManualClock
    key: vapid.VapidKey

    async def subscriber(self, topics: tuple[str, ...] = ("news",),
                         language: str = "en") -> BrowserSubscriber:
        sub = self.ps.subscribe(self.key.public_key)
        await store.upsert(self.db, SubscriptionIn(sub.endpoint, sub.p256dh, sub.auth, None,
                                                   topics, language, "UTC", None),
                           self.key.id, self.clock.now())
        return sub

    async def alert(self, alert: AlertIn | None = None) -> int:
        alert_id, _ = await alerts.create(self.db, alert or alert_in(), idempotency_key=None,
                                          created_by=None, now=self.clock.now())
        return alert_id

    async def row(self, alert_id: int, sub: BrowserSubscriber) -> dict[str, Any] | None:
        return await self.db.fetchone(
            "SELECT d.* FROM alert_deliveries d JOIN push_subscriptions s "
            "ON s.id = d.subscription_id WHERE d.alert_id = ? AND s.endpoint = ?",
            (alert_id, sub.endpoint))

    async def subscribed(self, sub: BrowserSubscriber) -> bool:
        row = await self.db.fetchone("SELECT id FROM push_subscriptions WHERE endpoint = ?",
                                     (sub.endpoint,))
        return row is not None


@asynccontextmanager
async def engine_rig(tmp_path: Path, *, concurrency: int = 4, max_attempts: int = 4,
                     request_timeout: float = 5.0,
                     batch_size: int = 200) -> AsyncIterator[EngineRig]:
    clock = ManualClock()
    db = await open_database(f"sqlite:///{tmp_path / 'push.db'}", WITH_PLATFORM)
    session = make_session(8, 16, frozenset({"127.0.0.1"}), timeout=request_timeout)
    try:
        async with PushServiceStandIn(clock=clock.now) as ps:
            key = await vapid.ensure_key(db)
            engine = Engine(db, Sender(session), vapid.KeyRing(db),
                            vapid.JwtCache(SUBJECT, clock.now), clock,
                            concurrency=concurrency, max_attempts=max_attempts,
                            rand=lambda: 0.5, batch_size=batch_size)
            yield EngineRig(db, ps, engine, clock, key)
    finally:
        await session.close()
        await db.close()


def by_state(counts: dict[str, int]) -> dict[str, int]:
    """An alert's counts by delivery state, without the totals (targeted, accepted, ...)."""
    return {k: v for k, v in counts.items() if k not in COUNT_KEYS}


def server_env(ps: PushServiceStandIn, **extra: str) -> dict[str, str]:
    env = {"TICKER_PUSH_ALLOWED_HOSTS": ps.origin, "TICKER_VAPID_SUBJECT": SUBJECT,
           "TICKER_PUSH_SUBSCRIBE_RATE_PER_MINUTE": "100000", "TICKER_MODE": "production",
           "TICKER_LOG_LEVEL": "WARNING"}
    env.update(extra)
    return env


def query(data_dir: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the server's SQLite file directly (WAL: safe while it runs)."""
    with sqlite3.connect(data_dir / "ticker.db") as conn:
        return conn.execute(sql, params).fetchall()


class Api:
    """The server's HTTP API as the browser scripts and editors use it."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str = "") -> None:
        self.session, self.url, self.token = session, url, token

    async def call(self, method: str, path: str, body: Any = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        hdrs = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        hdrs.update(headers or {})
        async with self.session.request(method, self.url + path, json=body,
                                        headers=hdrs) as resp:
            text = await resp.text()
            import json

            return resp.status, (json.loads(text) if text else None)

    async def public_key(self) -> str:
        status, body = await self.call("GET", "/api/push/vapid-public-key")
        assert status == 200, body
        return str(body["publicKey"])

    async def subscribe(self, sub: BrowserSubscriber, topics: list[str] | None = None,
                        language: str = "en", **extra: Any) -> tuple[int, Any]:
        doc: dict[str, Any] = {"subscription": sub.subscription(), "language": language,
                               "timezone": "Europe/London", **extra}
        if topics is not None:
            doc["topics"] = topics
        return await self.call("POST", "/api/push/subscriptions", doc)

    async def send(self, alert: dict[str, Any], key: str | None = None) -> tuple[int, Any]:
        return await self.call("POST", "/api/alerts", alert,
                               {"Idempotency-Key": key} if key else None)

    async def wait_done(self, alert_id: int, within: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            status, body = await self.call("GET", f"/api/alerts/{alert_id}")
            assert status == 200, body
            if body["status"] != "sending" or time.monotonic() > deadline:
                return dict(body)
            await asyncio.sleep(0.05)
