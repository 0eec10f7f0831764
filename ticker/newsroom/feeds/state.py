"""What a node remembers of each feed between polls (and shows on /healthz, /api/feeds)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ticker.newsroom.articles import iso

Origin = Literal["config", "api"]
# A failing feed is retried later each time, up to this much (or its interval, if longer).
BACKOFF_CAP = 3600.0


def backoff(interval: float, failures: int) -> float:
    """Seconds from a failed poll to the next attempt: the interval, doubled per failure
    after the first, capped."""
    if failures <= 1:
        return interval
    return float(min(interval * 2.0 ** min(failures - 1, 30), max(interval, BACKOFF_CAP)))


@dataclass
class FeedState:
    name: str
    origin: Origin
    etag: str | None = None
    last_modified: str | None = None
    last_poll_at: float | None = None
    last_error: str | None = None
    failures: int = 0  # consecutive
    next_attempt_at: float = 0.0  # a failing feed's scheduled polls wait until then

    def due(self, now: float) -> bool:
        return now >= self.next_attempt_at

    def succeeded(self, now: float) -> None:
        self.last_poll_at, self.last_error, self.failures = now, None, 0
        self.next_attempt_at = 0.0

    def failed(self, now: float, interval: float, reason: str) -> None:
        self.last_poll_at, self.last_error = now, reason
        self.failures += 1
        # The job keeps firing on the interval (with jitter); it polls again once this is
        # reached. A fifth early, so the firing that lands about then is not skipped.
        wait = backoff(interval, self.failures)
        self.next_attempt_at = 0.0 if wait <= interval else now + wait - interval * 0.2

    def health(self) -> dict[str, Any]:
        status = ("waiting" if self.last_poll_at is None
                  else "failing" if self.last_error else "ok")
        return {"status": status, "lastPollAt": iso(self.last_poll_at),
                "lastError": self.last_error, "consecutiveFailures": self.failures}


def feeds_health(states: Mapping[str, FeedState]) -> dict[str, Any]:
    """The feeds' part of ``/healthz``: degraded, naming each failing feed and why."""
    failing = [{"name": name, "reason": state.last_error}
               for name, state in sorted(states.items()) if state.last_error]
    body: dict[str, Any] = {"status": "degraded" if failing else "ok", "polled": len(states)}
    if failing:
        body["failing"] = failing
    return body
