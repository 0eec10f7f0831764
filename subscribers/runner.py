"""Keeps alerts moving in the background: runs due passes, sleeps until the next is due.

One loop per node, woken when an alert is created or cancelled. Passes of different alerts
run one after another; within a pass the engine keeps ``concurrency`` requests in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from subscribers import alerts, deliveries
from subscribers.engine import Clock, Engine
from ticker.db import Database

log = logging.getLogger("ticker.push")

ERROR_PAUSE = 5.0  # seconds before trying again after an unexpected error (e.g. database)


class AlertRunner:
    def __init__(self, db: Database, engine: Engine, clock: Clock) -> None:
        self._db, self._engine, self._clock = db, engine, clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Resume after a restart (at most once: see ``deliveries.recover``) and run."""
        unknown = await deliveries.recover(self._db, self._clock.now())
        if unknown:
            log.warning("deliveries in flight when the process stopped are not resent",
                        extra={"unknown": unknown})
        self._task = asyncio.create_task(self._loop())

    def wake(self) -> None:
        self._wake.set()

    def cancel(self, alert_id: int) -> None:
        self._engine.cancel(alert_id)
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

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

    async def _round(self) -> float | None:
        """One pass for each alert with due work; when the next one is due (None: idle)."""
        next_at: float | None = None
        for alert_id in await alerts.sending(self._db):
            due = await deliveries.next_due(self._db, alert_id)
            if due is not None and due <= self._clock.now():
                await self._engine.run_pass(alert_id)
                due = await deliveries.next_due(self._db, alert_id)
            if due is None:
                await alerts.finish_if_done(self._db, alert_id, self._clock.now())
            else:
                next_at = due if next_at is None else min(next_at, due)
        return next_at
