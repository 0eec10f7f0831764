"""One process's delivery: VAPID keys, HTTP session, encryptor, engine and runner, opened
and closed together. ``ticker serve`` (subscribers/setup.py) and ``ticker worker``
(subscribers/cli/worker.py) both run it: every process leases audience batches, and the
batch lease (owner + expiry, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL) keeps that safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from subscribers import alerts
from subscribers.crypto import vapid
from subscribers.crypto.encryptor import Encryptor, InlineEncryptor, ProcessEncryptor
from subscribers.delivery.engine import Clock, Engine
from subscribers.delivery.pauses import SharedPauses
from subscribers.delivery.runner import AlertRunner
from subscribers.delivery.sender import Sender, make_session
from subscribers.metrics import PushMetrics
from subscribers.progress import ProgressPublisher
from subscribers.settings import PushSettings
from ticker.storage.database import Database

log = logging.getLogger("ticker.push")

Publish = Callable[[str, Mapping[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Delivery:
    engine: Engine
    runner: AlertRunner
    progress: ProgressPublisher


def _share_pauses(engine: Engine, clock: Clock, broker_url: str) -> Awaitable[None] | None:
    """Start sharing the engine's pauses through Redis; returns what stops it."""
    if not broker_url.startswith("redis://"):
        return None
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(broker_url)
    shared = SharedPauses(client, engine.pauses, clock.now)
    engine.on_pause = shared.pause
    task = asyncio.create_task(shared.run())

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()

    return stop()


@asynccontextmanager
async def delivering(db: Database, config: PushSettings, subject: str, clock: Clock,
                     metrics: PushMetrics, publish: Publish,
                     exact_hosts: frozenset[str],
                     broker_url: str = "memory://") -> AsyncIterator[Delivery]:
    """Run delivery until the block ends; an unfinished batch keeps its lease, which runs
    out so that another process sends it (nothing is released on the way out). With a
    ``redis://`` broker the push services' pauses are shared (subscribers/delivery/pauses)."""
    key = await vapid.ensure_key(db)
    log.info("push ready", extra={"vapid_public_key": key.public_key, "vapid_subject": subject})
    session = make_session(config.push_connections_per_host,
                           max(config.push_concurrency, config.push_connections_per_host),
                           exact_hosts)
    jwts = vapid.JwtCache(subject, clock.now, metrics.vapid_signatures.inc)
    encryptor: Encryptor = InlineEncryptor()
    if config.push_encrypt_processes > 0:
        encryptor = ProcessEncryptor(config.push_encrypt_processes)
        await encryptor.start()
    engine = Engine(db, Sender(session), vapid.KeyRing(db), jwts, clock, metrics=metrics,
                    concurrency=config.push_concurrency,
                    max_attempts=config.push_max_attempts, encryptor=encryptor,
                    batch_size=config.push_batch_size,
                    lease_seconds=config.push_lease_seconds)
    progress = ProgressPublisher(lambda alert_id: alerts.status(db, alert_id), publish)
    # The engine reports each batch result and each finished alert through the same
    # callback (the runner hands it on).
    runner = AlertRunner(db, engine, clock, on_progress=progress)
    sharing = _share_pauses(engine, clock, broker_url)
    try:
        await runner.start()
        yield Delivery(engine, runner, progress)
    finally:
        await runner.stop()
        if sharing is not None:
            await sharing
        await progress.close()
        await session.close()
        await encryptor.close()
