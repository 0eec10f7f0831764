"""The clock channel: server-authoritative time, published each minute.

Widgets correct the reader's computer clock by the offset the ``time`` exchange measures,
so the page shows the newsroom's time even when the reader's clock is wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ticker.feed.publisher import Publisher


def clock_data(now: datetime, timezone: str, label: str) -> dict[str, Any]:
    """``{"iso", "ms", "zone", "tz"}`` for an aware ``now``; ``iso`` is in the clock's zone
    (``Z`` for UTC), whole seconds."""
    local = now.astimezone(ZoneInfo(timezone)).replace(microsecond=0)
    iso = local.isoformat()
    if local.utcoffset() == UTC.utcoffset(None) and label == "GMT":
        iso = local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    zone = label if label == "GMT" else (local.tzname() or timezone)
    return {"iso": iso, "ms": int(now.timestamp() * 1000), "zone": zone, "tz": timezone}


async def tick_clock(publisher: Publisher, timezone: str, label: str,
                     now: datetime | None = None) -> None:
    await publisher.publish("clock", clock_data(now or datetime.now(UTC), timezone, label))
