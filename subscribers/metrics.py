"""Web Push's metrics, registered in the node's registry (``/metrics``) beside the feed's."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from ticker.metrics import LabelCounts


class PushMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        # Plain dicts of ints (LabelCounts): the outcome counter is bumped once per push.
        self.outcomes = LabelCounts(
            "ticker_push_sends", "Push requests by outcome (subscribers.delivery.policy)",
            "outcome")
        self.receipts = LabelCounts(
            "ticker_push_receipts", "Service-worker receipts by event", "event")
        self.subscriptions = LabelCounts(
            "ticker_push_subscription_changes", "Subscriptions created, updated, removed",
            "change")
        self.vapid_signatures = LabelCounts(
            "ticker_push_vapid_signatures", "VAPID JWTs signed, by push-service origin",
            "origin")
        for family in (self.outcomes, self.receipts, self.subscriptions,
                       self.vapid_signatures):
            registry.register(family)
