"""The push routes' parameters and answers as pydantic models, and their operations.

Request bodies are in :mod:`subscribers.validate`; ``/openapi.json`` is generated from both
(see :mod:`ticker.web.openapi`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

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
    status: Literal["scheduled", "sending", "done", "cancelled"]
    title: str
    url: str
    topics: list[str]
    language: str | None
    urgency: Literal["very-low", "low", "normal", "high"]
    ttl: int
    createdAt: float
    finishedAt: float | None
    total: int = Field(ge=0)
    remaining: int = Field(ge=0)
    counts: dict[str, int] = Field(description=(
        "Deliveries by state (sent, gone, failed, retry, gave_up, expired, cancelled, "
        "pending, sending: those that occur) and the exact totals targeted, accepted, "
        "failed, pruned and retried."))
    receipts: Receipts


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
    Operation("GET", "/api/alerts/{id}", "An alert's status, counts and receipts", auth=True,
              params=_ALERT, answer=AlertStatus, tags=("alerts",),
              errors=("unknown_alert", *_PUSH)),
    Operation("POST", "/api/alerts/{id}/cancel", "Cancel what has not been sent", auth=True,
              params=_ALERT, answer=AlertStatus, tags=("alerts",),
              errors=("unknown_alert", "conflict", *_PUSH)),
)
