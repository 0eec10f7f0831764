"""The push routes' parameters and answers as pydantic models, and their operations.

Request bodies are in :mod:`subscribers.validate`; ``/openapi.json`` is generated from both
(see :mod:`ticker.web.openapi`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from subscribers.editorial.preview import BODY_SHOWN, TITLE_SHOWN
from subscribers.pushclient.endpoints import MAX_ENDPOINT_CHARS
from subscribers.validate import (
    P256_KEY,
    AlertBody,
    AlertId,
    Receipt,
    SubscribeBody,
    UnsubscribeBody,
)
from ticker.web.openapi import REF, Location, Operation

IDEMPOTENCY_KEY_MAX = 200


class AlertPath(BaseModel):
    id: AlertId


class IdempotencyHeader(BaseModel):
    idempotency_key: str | None = Field(
        None, alias="Idempotency-Key", min_length=1, max_length=IDEMPOTENCY_KEY_MAX,
        pattern=r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$", description=(
            "Printable ASCII, no space at either end (HTTP trims it). The same key with "
            "the same alert returns the first answer (200); with a different alert, 409 "
            "idempotency_conflict."))


class VapidPublicKey(BaseModel):
    publicKey: str = Field(pattern=P256_KEY, description=(
        "The applicationServerKey to subscribe with (base64url)."))


class Subscribed(BaseModel):
    topics: list[str]
    language: str
    timezone: str


class Receipts(BaseModel):
    shown: int = Field(ge=0)
    clicked: int = Field(ge=0)


class AlertStatus(BaseModel):
    id: int = Field(ge=1)
    status: Literal["scheduled", "sending", "done", "cancelled", "expired"] = Field(
        description="expired: scheduled, but its TTL ran out before it could start.")
    title: str
    url: str
    topics: list[str]
    language: str | None = Field(description="The first of 'languages' (older clients).")
    languages: list[str]
    collapse: str | None = Field(description="The RFC 8030 Topic asked for, if any.")
    urgency: Literal["very-low", "low", "normal", "high"]
    ttl: int
    createdAt: float
    createdBy: str | None = Field(description="Who created it: 'token:cms', 'user:alice'.")
    sendAt: float | None = Field(description="When a scheduled alert starts (Unix seconds).")
    finishedAt: float | None
    test: bool = Field(description="A test send to one subscription (POST /api/alerts/test).")
    total: int = Field(ge=0)
    remaining: int = Field(ge=0)
    counts: dict[str, int] = Field(description=(
        "Deliveries by state (sent, gone, failed, retry, gave_up, expired, cancelled, "
        "pending, sending: those that occur) and the exact totals targeted, accepted, "
        "failed, pruned and retried."))
    receipts: Receipts


class AlertList(BaseModel):
    alerts: list[AlertStatus] = Field(description="Newest first; test sends left out.")


class AlertsQuery(BaseModel):
    limit: int = Field(50, ge=1, le=200, description="How many alerts (newest first).")


class Budget(BaseModel):
    chars: int = Field(ge=0)
    max: int = Field(ge=1, description="What the tightest common platform shows uncut.")


class NotificationPayload(BaseModel):
    """What the service worker receives (the contract's payload)."""

    title: str
    body: str
    url: str
    icon: str
    image: str
    tag: str
    alert: int = Field(description="In a preview: the widest id, a placeholder.")


class AlertPreview(BaseModel):
    payload: NotificationPayload
    bytes: int = Field(ge=0, description="Its size once encrypted (RFC 8291, one record).")
    maxBytes: int = Field(description="What every push service accepts.")
    bytesLeft: int = Field(description="maxBytes - bytes (negative: it would be refused).")
    fits: bool
    audience: int = Field(ge=0, description="Subscriptions it would reach now.")
    title: Budget = Field(description=f"Characters; platforms cut after about {TITLE_SHOWN}.")
    body: Budget = Field(description=f"Characters; platforms cut after about {BODY_SHOWN}.")


class TestSendBody(BaseModel):
    alert: AlertBody = Field(description="As for POST /api/alerts (send_at is ignored).")
    endpoint: str = Field(min_length=1, max_length=MAX_ENDPOINT_CHARS, description=(
        "A stored subscription's endpoint (the editor's own browser): 404 "
        "unknown_subscription otherwise."))


class TestSent(BaseModel):
    alert: int = Field(ge=1, description="The test alert's id (never listed or counted).")
    status: int | None = Field(description="The push service's HTTP status; null: none.")
    outcome: str = Field(description="accepted, gone, rejected, throttled, ...")


_PUSH = ("push_unavailable",)
_ALERT: tuple[tuple[Location, type[BaseModel]], ...] = (("path", AlertPath),)

OPERATIONS = (
    Operation("GET", "/api/push/vapid-public-key", "The VAPID public key to subscribe with",
              answer=VapidPublicKey, errors=_PUSH, tags=("push",)),
    Operation("POST", "/api/push/subscriptions", "Subscribe (an upsert by endpoint)",
              body=SubscribeBody, answer=Subscribed, ok=201, tags=("push",),
              errors=("invalid_subscription", "unknown_topic", "endpoint_not_allowed",
                      "rate_limited", "unavailable", *_PUSH)),
    Operation("DELETE", "/api/push/subscriptions", "Unsubscribe: the row and every trace go",
              body=UnsubscribeBody, ok=204, tags=("push",),
              errors=("invalid_subscription", "unknown_subscription", *_PUSH)),
    Operation("POST", "/api/push/events", "A service worker's receipt (shown, clicked)",
              body=Receipt, ok=204, tags=("push",),
              errors=("invalid_event", "unknown_alert", "rate_limited", *_PUSH)),
    Operation("POST", "/api/alerts", "Send an alert (Idempotency-Key honoured)", auth=True,
              body=AlertBody, answer=AlertStatus, ok=201, tags=("alerts",),
              params=(("header", IdempotencyHeader),),
              description="201 with a new alert; 200 when the Idempotency-Key was seen with "
                          "the same alert (the first answer's alert).",
              raw={200: {"description": "The alert this Idempotency-Key created before.",
                         "content": {"application/json": {"schema": {
                             "$ref": REF.format(model="AlertStatus")}}}}},
              errors=("invalid_alert", "invalid_request", "unknown_topic",
                      "payload_too_large", "idempotency_conflict", *_PUSH)),
    Operation("GET", "/api/alerts", "Recent alerts, newest first", auth=True,
              params=(("query", AlertsQuery),), answer=AlertList, tags=("alerts",),
              errors=("invalid_request", *_PUSH)),
    Operation("POST", "/api/alerts/preview", "What an alert would send, and to how many",
              auth=True, body=AlertBody, answer=AlertPreview, tags=("alerts",),
              description="Writes nothing. The same body as POST /api/alerts.",
              errors=("invalid_alert", "unknown_topic", "payload_too_large", *_PUSH)),
    Operation("POST", "/api/alerts/test", "Send an alert to one stored subscription",
              auth=True, body=TestSendBody, answer=TestSent, tags=("alerts",),
              description="Through the real send path; readers get nothing and the alert "
                          "list does not show it.",
              errors=("invalid_alert", "unknown_topic", "payload_too_large",
                      "unknown_subscription", *_PUSH)),
    Operation("GET", "/api/alerts/{id}", "An alert's status, counts and receipts", auth=True,
              params=_ALERT, answer=AlertStatus, tags=("alerts",),
              errors=("unknown_alert", *_PUSH)),
    Operation("POST", "/api/alerts/{id}/cancel", "Cancel what has not been sent", auth=True,
              params=_ALERT, answer=AlertStatus, tags=("alerts",),
              errors=("unknown_alert", "conflict", *_PUSH)),
)
