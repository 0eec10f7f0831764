"""The feed's broker, chosen by URL: ``memory://`` (one process) or ``redis://`` (several)."""

from __future__ import annotations

from ticker.broker.base import Broker, BrokerUnavailable, BrokerUnreachable, mask_url
from ticker.broker.memory import MemoryBroker
from ticker.broker.redis import RedisBroker, redis_client
from ticker.feed.channels import Hub
from ticker.metrics import Metrics

__all__ = ["Broker", "BrokerUnavailable", "BrokerUnreachable", "mask_url", "open_broker",
           "redis_client"]


def open_broker(url: str, hub: Hub, metrics: Metrics, *, history_size: int,
                history_seconds: float) -> Broker:
    """The broker a URL names, not yet started (:meth:`Broker.start` connects)."""
    if url.startswith("memory://"):
        return MemoryBroker(hub)
    if url.startswith(("redis://", "rediss://")):
        return RedisBroker(url, hub, metrics, history_size=history_size,
                           history_seconds=history_seconds)
    raise ValueError(f"unsupported broker URL scheme: {url.split(':', 1)[0]!r}")
