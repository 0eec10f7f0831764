"""Keeps alerts moving in the background: runs due passes, sleeps until the next is due.

One loop per node, woken when an alert is created or cancelled, or a pass ends. Each alert
with due work gets its own pass as a task, so a breaking alert goes out at once even while
a long one is still sending; within a pass the engine keeps ``concurrency`` requests in
flight (the HTTP client's per-host limit bounds them all together). A second task renews
this node's leases while it lives; after a crash (or on another node) a batch or claim
whose lease ran out is due again and sent again (at least once, see the delivery store).

Scheduled alerts are started by this loop too, not by an APScheduler date job: the database
is the schedule (:func:`subscribers.alerts.start_due`), and this loop already sleeps until
the next thing is due, so it wakes at ``send_at`` without a second, in-memory copy of the
schedule that would have to be rebuilt after a restart and kept in step with cancels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable

from subscribers import alerts
from subscribers.delivery import batchstore
from subscribers.delivery.engine import DEFERRED_PAUSE, Clock, Engine
from ticker.storage.database import Database

log = logging.getLogger("ticker.push")

ERROR_PAUSE = 5.0  # seconds before trying again after an unexpected error (e.g. database)
# An alert another node scheduled wakes only that node; every node still looks this often,
# so the schedule does not depend on the node that wrote it staying up.
SCHEDULE_POLL = 30.0


class AlertRunner:
    def __init__(self, db: Database, engine: Engine, clock: Clock,
                 on_progress: Callable[[int], None] | None = None) -> None:
        self._db, self._engine, self._clock = db, engine, clock
        # Told the id of an alert whose status changed (started, expired, finished, a pass
        # ended); the engine calls it after each batch result too.
        self._on_progress = on_progress
        if on_progress is not None:
            engine.on_progress = on_progress
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._passes: dict[int, asyncio.Task[None]] = {}  # by alert id, while running

    async def start(self) -> None:
        """Run: alerts a stopped process was sending resume once their leases run out."""
        self._task = asyncio.create_task(self._loop())
        self._renewer = asyncio.create_task(self._renew())

    def wake(self) -> None:
        self._wake.set()

    def cancel(self, alert_id: int) -> None:
        self._engine.cancel(alert_id)
        self._wake.set()

    async def stop(self) -> None:
        tasks = [t for t in (self._task, self._renewer, *self._passes.values())
                 if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                next_at = await self._round()
            except Exception:
                log.exception("push runner failed; retrying")
                next_at = self._clock.now() + ERROR_PAUSE
            timeout = None if next_at is None else next_at - self._clock.now()
            if timeout is not None and timeout <= 0:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _renew(self) -> None:
        """Every third of a lease, extend this node's leases and claims."""
        seconds = self._engine.lease_seconds
        while True:
            await asyncio.sleep(seconds / 3)
            try:
                await batchstore.renew(self._db, self._engine.owner,
                                       self._clock.now() + seconds)
            except Exception:
                log.exception("renewing push leases failed; retrying")

    async def _round(self) -> float:
        """Start a pass for each alert with due work and none running; finish alerts with
        nothing left. Returns when to look again (the next due work, at the latest
        SCHEDULE_POLL from now)."""
        started, expired = await alerts.start_due(self._db, self._clock.now())
        for alert_id in (*started, *expired):
            log.info("scheduled alert " + ("started" if alert_id in started else
                                           "expired before it could start"),
                     extra={"alert": alert_id})
            self._progress(alert_id)
        scheduled = await alerts.next_scheduled(self._db)
        next_at = min(scheduled or math.inf, self._clock.now() + SCHEDULE_POLL)
        for alert_id in await alerts.sending(self._db):
            if alert_id in self._passes:
                continue  # its pass wakes this loop when it ends
            due = await self._engine.next_due(alert_id)
            if due is None:
                if await alerts.finish_if_done(self._db, alert_id, self._clock.now()):
                    self._progress(alert_id)
            elif due <= self._clock.now():
                self._passes[alert_id] = asyncio.create_task(self._pass(alert_id))
            else:
                next_at = min(next_at, due)
        return next_at

    async def _pass(self, alert_id: int) -> None:
        try:
            summary = await self._engine.run_pass(alert_id)
            if summary.states.get("deferred"):
                await self._clock.sleep(DEFERRED_PAUSE)
        except Exception:
            log.exception("push pass failed; retrying", extra={"alert": alert_id})
            await self._clock.sleep(ERROR_PAUSE)
        finally:
            del self._passes[alert_id]
            self._progress(alert_id)
            self._wake.set()

    def _progress(self, alert_id: int) -> None:
        if self._on_progress is not None:
            self._on_progress(alert_id)
