"""OpenAPI descriptions of the push and alert routes (registered on import by ``api``)."""

from __future__ import annotations

from typing import Any

from ticker.web.openapi import describe

_S = {"type": "string"}
_B64 = {"type": "string", "pattern": "^[A-Za-z0-9_-]+={0,2}$"}
ALERT_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
SUBSCRIPTION: dict[str, Any] = {
    "type": "object", "required": ["subscription"],
    "properties": {
        "subscription": {"type": "object", "required": ["endpoint", "keys"], "properties": {
            "endpoint": {"type": "string", "format": "uri"},
            "expirationTime": {"type": ["number", "null"]},
            "keys": {"type": "object", "required": ["p256dh", "auth"],
                     "properties": {"p256dh": _B64, "auth": _B64}}}},
        "topics": {"type": "array", "items": _S,
                   "description": "omitted: every topic; []: only alerts sent to everyone"},
        "language": {"type": "string", "example": "en"},
        "timezone": {"type": "string", "example": "Europe/London"},
        "vapidKey": {**_B64, "description": "the applicationServerKey subscribed with"}}}
ALERT: dict[str, Any] = {
    "type": "object", "required": ["title", "url"],
    "properties": {"title": _S, "body": _S, "url": _S, "icon": _S, "image": _S, "tag": _S,
                   "topics": {"type": "array", "items": _S}, "language": _S,
                   "urgency": {"enum": ["very-low", "low", "normal", "high"]},
                   "ttl": {"type": "integer", "minimum": 1}}}
STATUS: dict[str, Any] = {
    "type": "object", "properties": {
        "id": {"type": "integer"}, "status": {"enum": ["sending", "done", "cancelled"]},
        "total": {"type": "integer"}, "remaining": {"type": "integer"},
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "receipts": {"type": "object", "properties": {"shown": {"type": "integer"},
                                                      "clicked": {"type": "integer"}}}}}
IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False, "schema": _S}

describe("GET", "/api/push/vapid-public-key", "The VAPID public key to subscribe with",
         ok={"type": "object", "properties": {"publicKey": _B64}},
         responses={503: "Push is not configured"})
describe("POST", "/api/push/subscriptions", "Subscribe (an upsert by endpoint)",
         body=SUBSCRIPTION, ok_status=201,
         responses={400: "Invalid subscription, endpoint or topic", 413: "Body too large",
                    429: "Too many subscriptions from this client", 503: "Push is off"})
describe("DELETE", "/api/push/subscriptions", "Unsubscribe: the row and every trace go",
         body={"type": "object", "required": ["endpoint", "auth"],
               "properties": {"endpoint": _S, "auth": _B64}}, ok_status=204,
         responses={400: "Invalid body", 404: "No such endpoint and secret"})
describe("POST", "/api/push/events", "A service worker's receipt (shown, clicked)",
         body={"type": "object", "required": ["alert", "event"],
               "properties": {"alert": {"type": "integer"},
                              "event": {"enum": ["shown", "clicked"]}}}, ok_status=204,
         responses={400: "Invalid receipt", 404: "Unknown alert", 429: "Too many receipts"})
describe("POST", "/api/alerts", "Send an alert (Idempotency-Key honoured)", auth=True,
         parameters=[IDEMPOTENCY], body=ALERT, ok=STATUS, ok_status=201,
         responses={400: "Invalid alert or topic", 401: "Missing or bad token",
                    409: "Idempotency-Key reused for another alert",
                    413: "Payload over the push services' size limit"})
describe("GET", "/api/alerts/{id}", "An alert's status, counts and receipts", auth=True,
         parameters=[ALERT_ID], ok=STATUS,
         responses={401: "Missing or bad token", 404: "Unknown alert"})
describe("POST", "/api/alerts/{id}/cancel", "Cancel what has not been sent", auth=True,
         parameters=[ALERT_ID], ok=STATUS,
         responses={401: "Missing or bad token", 404: "Unknown alert",
                    409: "Already finished"})
