"""Web Push's rows of the error table and its exceptions (the tree is in ``ticker.errors``).

The core (validation, subscriptions, alerts, endpoint checks) raises these in its own words;
``ticker.errors.error_middleware`` answers each with its row's status and sentence.
"""

from __future__ import annotations

from ticker.errors import (
    Conflict,
    ErrorKind,
    InvalidInput,
    NotFound,
    TickerError,
    Unavailable,
    add_kinds,
)

add_kinds(
    ErrorKind("invalid_subscription", 400, "The push subscription is not valid."),
    ErrorKind("invalid_alert", 400, "The alert is not valid."),
    ErrorKind("unknown_topic", 400, "One of the topics is not offered by this site."),
    ErrorKind("endpoint_not_allowed", 400,
              "The push endpoint's host is not an allowed push service."),
    ErrorKind("invalid_event", 400,
              "A receipt is {'alert': id, 'event': 'shown' or 'clicked'}."),
    ErrorKind("unknown_alert", 404, "There is no such alert."),
    ErrorKind("unknown_subscription", 404,
              "There is no subscription with that endpoint and secret."),
    ErrorKind("idempotency_conflict", 409,
              "This Idempotency-Key was already used for a different alert."),
    ErrorKind("payload_too_large", 413, "The payload would exceed the size push services accept."),
    ErrorKind("push_unavailable", 503, "Web Push is not configured on this server."),
)


class InvalidSubscription(InvalidInput):
    code = "invalid_subscription"


class InvalidAlert(InvalidInput):
    code = "invalid_alert"


class InvalidEvent(InvalidInput):
    code = "invalid_event"


class UnknownTopic(InvalidInput):
    code = "unknown_topic"


class EndpointNotAllowed(InvalidInput):
    code = "endpoint_not_allowed"


class PayloadTooLarge(TickerError):
    code = "payload_too_large"


class UnknownAlert(NotFound):
    code = "unknown_alert"


class UnknownSubscription(NotFound):
    code = "unknown_subscription"


class AlreadyFinished(Conflict):
    """Cancelling an alert that is done or cancelled already."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "The alert has already finished.")


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


class PushUnavailable(Unavailable):
    code = "push_unavailable"
