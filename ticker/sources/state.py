"""What the poller remembers of each source between fetches (and shows to operators)."""

from __future__ import annotations

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
