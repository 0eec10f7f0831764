"""Publishing: the one path every message takes into the feed (API, CLI, clock, sources).

The broker numbers the message and brings it to every node's Hub (:mod:`ticker.broker`):
with ``memory://`` at once, in this process; with ``redis://`` through Redis.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ticker.broker.base import Broker
from ticker.feed.channels import Message
from ticker.metrics import Metrics


class Publisher:
    def __init__(self, broker: Broker, metrics: Metrics) -> None:
        self.broker = broker
        self.metrics = metrics

    async def publish(self, channel: str, data: Mapping[str, Any]) -> Message:
        """Raises :class:`ticker.broker.BrokerUnavailable` when the broker cannot be reached
        (nothing is published) and :class:`KeyError` for a channel there is no such."""
        started = time.perf_counter()
        msg = await self.broker.publish(channel, data)
        self.metrics.publish_latency.observe(time.perf_counter() - started)
        self.metrics.messages_published.labels(channel).inc()
        return msg
