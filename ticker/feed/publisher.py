"""Publishing: the one path every message takes into the feed (API, CLI, clock, sources).

With the embedded broker (``memory://``) the hub of this process is the authority; a
scaled-out broker replaces this class behind the same ``publish`` method.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ticker.feed.channels import Hub, Message
from ticker.metrics import Metrics


class Publisher:
    def __init__(self, hub: Hub, metrics: Metrics) -> None:
        self.hub = hub
        self.metrics = metrics

    async def publish(self, channel: str, data: Mapping[str, Any]) -> Message:
        # Async although the embedded broker never awaits: a networked broker will.
        started = time.perf_counter()
        msg, _count = self.hub.publish(channel, data)
        self.metrics.publish_latency.observe(time.perf_counter() - started)
        self.metrics.messages_published.labels(channel).inc()
        return msg
