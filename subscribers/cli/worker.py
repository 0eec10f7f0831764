"""``ticker worker``: push delivery only, no HTTP server and no feed.

Any number of workers, on any machine, lease the audience batches of sending alerts from
the database beside the ``ticker serve`` nodes, which deliver too (everyone leases; the
batch lease makes that safe, and one machine needs no worker). SIGTERM or SIGINT stops a
worker gracefully: what it has not finished keeps its lease, which runs out, and another
process sends that batch again (at most the in-flight window, docs/contract.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from subscribers.delivery.engine import SystemClock
from subscribers.delivery.node import delivering
from subscribers.metrics import PushMetrics
from subscribers.migrations import WITH_PLATFORM
from subscribers.progress import CHANNEL
from subscribers.pushclient.endpoints import AllowList
from subscribers.settings import PushSettings
from subscribers.setup import vapid_subject
from ticker.broker import Broker, BrokerUnavailable, BrokerUnreachable, open_broker
from ticker.cli.errors import CliError
from ticker.feed.channels import Hub
from ticker.logs import setup_logging
from ticker.metrics import Metrics
from ticker.settings import Settings
from ticker.storage import open_database
from ticker.storage.database import place

STATUS_SECONDS = 2.0  # an alert's status line at most this often (and once when it ends)

log = logging.getLogger("ticker.push")


def register(sub: Any) -> None:
    p = sub.add_parser("worker", help="deliver push alerts (no HTTP server, no feed)",
                       description="Deliver push alerts beside the servers: lease audience "
                                   "batches from the database until SIGTERM.")
    p.set_defaults(run=run)


def status_line(body: Mapping[str, Any]) -> str:
    """One alert's progress as a person reads it (pure)."""
    counts = body.get("counts", {})
    return (f"alert {body['id']} {body['status']}: {counts.get('accepted', 0)} accepted, "
            f"{body.get('remaining', 0)} remaining of {body.get('total', 0)}")


class StatusLines:
    """Prints alerts' progress to stdout, each at most every STATUS_SECONDS, and every
    change of status (a started or finished alert) at once."""

    def __init__(self) -> None:
        self.last: dict[int, tuple[float, str]] = {}

    async def __call__(self, _channel: str, body: Mapping[str, Any]) -> None:
        alert_id, status, now = int(body["id"]), str(body["status"]), time.monotonic()
        before = self.last.get(alert_id)
        if before is not None and before[1] == status and now - before[0] < STATUS_SECONDS:
            return
        self.last[alert_id] = (now, status)
        print(status_line(body), flush=True)


class LiveCounts:
    """The status lines, and with a ``redis://`` broker the alert's status object on
    ``console:alerts`` too, so editors watching the console see the counts of batches a
    worker sends (and the final state when a worker finishes an alert)."""

    def __init__(self, broker: Broker | None) -> None:
        self.lines = StatusLines()
        self.broker = broker
        self.failing = False

    async def __call__(self, channel: str, body: Mapping[str, Any]) -> None:
        await self.lines(channel, body)
        if self.broker is None:
            return
        try:
            await self.broker.publish(channel, body)
        except BrokerUnavailable as exc:
            if not self.failing:  # once per outage, not once per batch
                log.warning("live counts not published: %s", exc)
            self.failing = True
        else:
            self.failing = False


@contextlib.asynccontextmanager
async def feed_broker(settings: Settings, db: Any) -> AsyncIterator[Broker | None]:
    """The feed broker when it spans processes (``redis://``); None for ``memory://``,
    whose console channel lives inside one ``ticker serve``."""
    url = settings.storage.broker_url
    if url.startswith("memory://"):
        yield None
        return
    hub = Hub([CHANNEL], max_size=settings.feed.history_size,
              max_age=settings.feed.history_seconds, clock=time.time)
    broker = open_broker(url, hub, Metrics(), history_size=settings.feed.history_size,
                         history_seconds=settings.feed.history_seconds)
    try:
        await broker.start(db)
    except BrokerUnreachable as exc:
        raise CliError(str(exc)) from None
    try:
        yield broker
    finally:
        await broker.close()


async def work(settings: Settings, subject: str) -> None:
    config = settings.part(PushSettings)
    url = settings.storage.database_url_resolved
    db = await open_database(url, WITH_PLATFORM)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        exact = frozenset(h for h, _ in AllowList.parse(config.push_allowed_hosts).http_exact)
        async with feed_broker(settings, db) as broker, \
                delivering(db, config, subject, SystemClock(),
                           PushMetrics(CollectorRegistry()), LiveCounts(broker),
                           exact, settings.storage.broker_url) as running:
            print(f"worker {running.engine.owner} delivering from {place(url)}", flush=True)
            await stop.wait()
            print(f"worker {running.engine.owner} stopping", flush=True)
    finally:
        await db.close()


def run(_args: argparse.Namespace, settings: Settings) -> int:
    setup_logging(settings.logging.log_level, settings.logging.log_format)
    subject = vapid_subject(settings)
    if subject is None:
        raise CliError("ticker worker needs TICKER_VAPID_SUBJECT (mailto: or https:) in "
                       "production mode")
    asyncio.run(work(settings, subject))
    sys.stdout.flush()
    return 0
