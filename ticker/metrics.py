"""Prometheus metrics, one registry per app so several apps (tests) never collide."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


class DeliveryCounts(Collector):
    """Frames handed to connections, per transport. A plain dict of ints rather than a
    prometheus Counter because it is bumped once per client per broadcast (the hot path)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {"ws": 0, "sse": 0}

    def collect(self) -> Iterator[Metric]:
        fam = CounterMetricFamily("ticker_messages_delivered", "Messages handed to connections",
                                  labels=["transport"])
        for transport, n in self.counts.items():
            fam.add_metric([transport], n)
        yield fam


class LabelCounts(Collector):
    """A counter family kept as a dict of ints: for hot paths bumped once per push."""

    def __init__(self, name: str, documentation: str, label: str) -> None:
        self.name, self.documentation, self.label = name, documentation, label
        self.counts: dict[str, int] = {}

    def inc(self, value: str, n: int = 1) -> None:
        self.counts[value] = self.counts.get(value, 0) + n

    def collect(self) -> Iterator[Metric]:
        fam = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        for value, n in sorted(self.counts.items()):
            fam.add_metric([value], n)
        yield fam


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.connections = Gauge(
            "ticker_connections", "Open feed connections", ["transport"], registry=r)
        self.messages_published = Counter(
            "ticker_messages_published_total", "Messages published", ["channel"], registry=r)
        self.delivered = DeliveryCounts()
        r.register(self.delivered)
        self.slow_consumer_disconnects = Counter(
            "ticker_slow_consumer_disconnects_total",
            "Connections dropped because they did not keep up", ["transport"], registry=r)
        self.protocol_errors = Counter(
            "ticker_protocol_errors_total", "Client frames answered with an error or a close",
            ["code"], registry=r)
        self.source_fetches = Counter(
            "ticker_source_fetches_total", "Data source fetches", ["source", "outcome"], registry=r)
        self.source_fetch_errors = Counter(
            "ticker_source_fetch_errors_total", "Data source fetches that failed",
            ["source", "reason"], registry=r)
        self.articles = Counter(
            "ticker_articles_total", "Articles taken in, by way in and result",
            ["via", "result"], registry=r)
        self.feed_polls = Counter(
            "ticker_feed_polls_total", "Feed polls by outcome", ["feed", "outcome"], registry=r)
        self.feed_errors = Counter(
            "ticker_feed_errors_total", "Feed polls that failed, by reason",
            ["feed", "reason"], registry=r)
        self.broker_reconnects = Counter(
            "ticker_broker_reconnects_total",
            "Times this node got its broker back after losing it", registry=r)
        self.broker_publish_errors = Counter(
            "ticker_broker_publish_errors_total",
            "Publishes refused because the broker could not be reached", registry=r)
        self.publish_latency = Histogram(
            "ticker_publish_seconds",
            "Time to publish (memory://: fan-out to local connections; redis://: the round trip)",
            registry=r, buckets=(0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5))
