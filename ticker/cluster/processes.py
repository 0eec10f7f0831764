"""The supervisor of ``ticker serve --processes N``: keeps N server processes alive.

The parent holds the port and serves nothing; each child is a whole server (its own event
loop and app) on its own ``SO_REUSEPORT`` socket, so the kernel spreads connections over
them. A child that dies is started again after :func:`restart_delay`; SIGTERM or SIGINT to
the parent stops every child gracefully (SIGTERM, then SIGKILL after ``stop_seconds``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("ticker.serve")

RESTART_MIN = 0.5  # seconds before restarting a child that crashed
RESTART_MAX = 30.0  # a child crashing in a loop is retried at most this slowly
STEADY_SECONDS = 30.0  # a child that lived this long crashed once: restart at once
POLL_SECONDS = 0.2


def restart_delay(previous: float | None, lived: float) -> float:
    """Seconds before restarting a child that lived ``lived`` seconds, given the delay
    before its previous start (None: none). Doubles while it keeps crashing early."""
    if previous is None or lived >= STEADY_SECONDS:
        return RESTART_MIN
    return min(max(previous * 2, RESTART_MIN), RESTART_MAX)


@dataclass
class Slot:
    index: int
    pid: int = 0
    started: float = 0.0
    delay: float | None = None
    due: float = 0.0  # when to start it again (pid == 0)


def describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"


class Supervisor:
    """``spawn(index)`` starts process ``index`` and returns its pid."""

    def __init__(self, count: int, spawn: Callable[[int], int], stop_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.slots = [Slot(i) for i in range(count)]
        self.spawn, self.stop_seconds, self.clock = spawn, stop_seconds, clock
        self.stopping = False

    def start(self) -> None:
        # Before the first fork: a SIGTERM from now on stops the children too.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.stop)
        for slot in self.slots:
            self._start(slot)

    def _start(self, slot: Slot) -> None:
        slot.pid, slot.started = self.spawn(slot.index), self.clock()

    def stop(self, _signum: int = 0, _frame: object = None) -> None:
        self.stopping = True

    def run(self) -> None:
        """Until SIGTERM or SIGINT: reap and restart children; then stop them all."""
        while not self.stopping:
            self._reap()
            now = self.clock()
            for slot in self.slots:
                if slot.pid == 0 and slot.due <= now:
                    self._start(slot)
            time.sleep(POLL_SECONDS)
        self._stop_all()

    def _reap(self) -> None:
        for slot in self.slots:
            if slot.pid == 0:
                continue
            pid, status = os.waitpid(slot.pid, os.WNOHANG)
            if pid == 0:
                continue
            lived = self.clock() - slot.started
            slot.delay = restart_delay(slot.delay, lived)
            slot.pid, slot.due = 0, self.clock() + slot.delay
            log.warning("server process %d (pid %d) %s; restarting in %g s", slot.index, pid,
                        describe(status), slot.delay,
                        extra={"process_index": slot.index, "pid": pid, "lived_seconds": lived})

    def _stop_all(self) -> None:
        live = [s for s in self.slots if s.pid]
        for slot in live:
            _signal(slot.pid, signal.SIGTERM)
        deadline = self.clock() + self.stop_seconds
        while live and self.clock() < deadline:
            live = [s for s in live if os.waitpid(s.pid, os.WNOHANG)[0] == 0]
            time.sleep(POLL_SECONDS / 4)
        for slot in live:  # did not stop in time
            log.warning("server process %d (pid %d) did not stop; killing it", slot.index,
                        slot.pid)
            _signal(slot.pid, signal.SIGKILL)
            os.waitpid(slot.pid, 0)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it died on its own meanwhile
        os.kill(pid, sig)
