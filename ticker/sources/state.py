"""What the poller remembers of each source between fetches (and shows to operators)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass
class SourceState:
    """What the poller remembers of one source between fetches (and shows to operators)."""

    name: str
    # Validators of the last document that read well; a 304 against them means "still good".
    etag: str | None = None
    last_modified: str | None = None
    # The last payload published on data:<name>: the last good values and the stale flag.
    payload: dict[str, Any] | None = None
    last_fetch_at: datetime | None = None
    last_error: str | None = None

    @property
    def stale(self) -> bool:
        return self.payload is not None and bool(self.payload["stale"])

    @property
    def values(self) -> dict[str, Any] | None:
        return None if self.payload is None else dict(self.payload["values"])

    @property
    def has_values(self) -> bool:
        """A good document was read at least once (a placeholder has no values)."""
        return self.payload is not None and bool(self.payload["values"])

    def failure(self) -> str | None:
        """Why operators should look at this source, or ``None`` while it is fine (or has
        not been tried yet: the first polls run before the server listens)."""
        if self.last_fetch_at is None:
            return None
        if self.last_error is not None:
            lead = "last fetch failed" if self.has_values else "never fetched successfully"
            return f"{lead}: {self.last_error}"
        if not self.has_values:
            return "never fetched successfully"
        if self.stale:
            return "values are stale"
        return None


def sources_health(states: Mapping[str, SourceState],
                   sample: str | None = None) -> dict[str, Any]:
    """The sources' part of ``/healthz``: degraded, naming each failing source and why."""
    failing = [{"name": name, "reason": reason} for name, state in sorted(states.items())
               if (reason := state.failure()) is not None]
    body: dict[str, Any] = {"status": "degraded" if failing else "ok",
                            "configured": len(states)}
    if failing:
        body["failing"] = failing
    if sample is not None:
        body["sample"] = sample
    return body
