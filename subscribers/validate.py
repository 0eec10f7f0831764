"""Request bodies to values (pure): subscriptions, unsubscriptions, receipts and alerts.

Each parser takes the decoded JSON and what the site offers, and returns a frozen value or
raises :class:`ticker.errors.ApiError` with a sentence naming the field.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from subscribers.delivery.payload import Notification, over_budget
from ticker.errors import ApiError

LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{1,8}){0,4}$")
URGENCIES = ("very-low", "low", "normal", "high")
RECEIPT_EVENTS = ("shown", "clicked")
MAX_TTL = 28 * 24 * 3600  # what push services keep at most
MAX_TEXT = {"title": 300, "body": 4000, "url": 2048, "icon": 2048, "image": 2048, "tag": 200}
WORST_CASE_ALERT_ID = 10**15 - 1  # for the byte budget before the id exists


def b64url_decode(text: str) -> bytes:
    """base64url with or without padding (browsers send it unpadded)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", text):
        raise ValueError("not base64url")
    text = text.rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@functools.cache
def known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def _bad(message: str, code: str = "invalid_subscription") -> ApiError:
    return ApiError(code, message)


def _object(body: object, code: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _bad("The body must be a JSON object.", code)
    return body


def _text(doc: dict[str, Any], name: str, code: str, *, required: bool = False) -> str:
    value = doc.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _bad(f"'{name}' must be a non-empty string.", code)
    limit = MAX_TEXT.get(name, 2048)
    if len(value) > limit:
        raise _bad(f"'{name}' must be at most {limit} characters.", code)
    return value


def parse_p256dh(value: object) -> str:
    """The browser's public key: an uncompressed P-256 point (65 bytes) on the curve."""
    if not isinstance(value, str):
        raise _bad("'keys.p256dh' must be a base64url string.")
    try:
        raw = b64url_decode(value)
        if len(raw) != 65 or raw[0] != 4:
            raise ValueError("not an uncompressed point")
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except (ValueError, binascii.Error):
        raise _bad("'keys.p256dh' must be an uncompressed P-256 public key "
                   "(65 bytes, base64url) on the curve.") from None
    return b64url_encode(raw)


def parse_auth(value: object) -> str:
    try:
        if not isinstance(value, str):
            raise ValueError("not a string")
        raw = b64url_decode(value)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != 16:
        raise _bad("'keys.auth' must be 16 bytes, base64url.")
    return b64url_encode(raw)


def parse_language(value: object, code: str = "invalid_subscription") -> str:
    if not isinstance(value, str) or not LANGUAGE_RE.match(value.lower()):
        raise _bad("'language' must be a language tag such as 'en' or 'pt-BR'.", code)
    return value.lower()


def parse_topics(value: object, offered: Sequence[str], code: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise _bad("'topics' must be a list of strings.", code)
    unknown = sorted(set(value) - set(offered))
    if unknown:
        raise ApiError("unknown_topic", f"Unknown topic {unknown[0]!r}; this site offers: "
                                        f"{', '.join(offered)}.")
    return tuple(sorted(set(value)))


@dataclass(frozen=True)
class SubscriptionIn:
    endpoint: str
    p256dh: str
    auth: str
    expiration_time: float | None
    topics: tuple[str, ...]
    language: str
    timezone: str
    vapid_key: str | None  # the applicationServerKey the browser subscribed with
    # pushsubscriptionchange: the (endpoint, auth) of the subscription this one replaces.
    replaces: tuple[str, str] | None = None
    topics_given: bool = True  # False: keep the replaced row's topics (or all offered)


def _keys(sub: dict[str, Any]) -> tuple[str, str]:
    keys = sub.get("keys")
    if not isinstance(keys, dict):
        raise _bad("'subscription.keys' must be an object with 'p256dh' and 'auth'.")
    return parse_p256dh(keys.get("p256dh")), parse_auth(keys.get("auth"))


def parse_subscription(body: object, offered_topics: Sequence[str]) -> SubscriptionIn:
    doc = _object(body, "invalid_subscription")
    sub = doc.get("subscription")
    if not isinstance(sub, dict):
        raise _bad("'subscription' must be the browser's PushSubscription as JSON.")
    endpoint = sub.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise _bad("'subscription.endpoint' must be a URL.")
    expiration = sub.get("expirationTime")
    if expiration is not None and (isinstance(expiration, bool)
                                   or not isinstance(expiration, int | float)):
        raise _bad("'subscription.expirationTime' must be a number (ms) or null.")
    p256dh, auth = _keys(sub)
    topics = (tuple(offered_topics) if doc.get("topics") is None
              else parse_topics(doc["topics"], offered_topics, "invalid_subscription"))
    timezone = doc.get("timezone", "UTC")
    if not isinstance(timezone, str) or timezone not in known_zones():
        raise _bad("'timezone' must be an IANA time zone such as 'Europe/London'.")
    vapid_key = doc.get("vapidKey")
    if vapid_key is not None and not isinstance(vapid_key, str):
        raise _bad("'vapidKey' must be the base64url public key the browser subscribed with.")
    return SubscriptionIn(endpoint, p256dh, auth,
                          None if expiration is None else float(expiration) / 1000.0,
                          topics, parse_language(doc.get("language", "en")), timezone,
                          vapid_key, _replaces(doc), doc.get("topics") is not None)


def _replaces(doc: dict[str, Any]) -> tuple[str, str] | None:
    """``oldEndpoint`` + ``oldAuth`` of a subscription the browser replaced, if both given."""
    old_endpoint, old_auth = doc.get("oldEndpoint"), doc.get("oldAuth")
    if old_endpoint is None or old_auth is None:
        return None
    if not isinstance(old_endpoint, str) or not old_endpoint:
        raise _bad("'oldEndpoint' must be the replaced subscription's endpoint.")
    return old_endpoint, parse_auth(old_auth)


def parse_unsubscribe(body: object) -> tuple[str, str]:
    doc = _object(body, "invalid_subscription")
    endpoint = doc.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise _bad("'endpoint' must be the subscription's endpoint URL.")
    return endpoint, parse_auth(doc.get("auth"))


def parse_receipt(body: object) -> tuple[int, str]:
    doc = _object(body, "invalid_event")
    alert, event = doc.get("alert"), doc.get("event")
    if isinstance(alert, str) and alert.isdigit():
        alert = int(alert)
    # Above 2**63 - 1 no database column holds it: SQLite and asyncpg raise, a 500.
    if isinstance(alert, bool) or not isinstance(alert, int) or not 0 < alert < 2**63:
        raise _bad("'alert' must be the alert's id from the notification.", "invalid_event")
    if event not in RECEIPT_EVENTS:
        raise _bad("'event' must be 'shown' or 'clicked'.", "invalid_event")
    return alert, str(event)


@dataclass(frozen=True)
class AlertIn:
    title: str
    body: str
    url: str
    icon: str
    image: str
    tag: str
    topics: tuple[str, ...]  # empty: everyone
    language: str  # empty: every language
    urgency: str
    ttl: int

    def notification(self, alert_id: int) -> Notification:
        return Notification(self.title, self.body, self.url, self.icon, self.image, self.tag,
                            alert_id)


def _link(doc: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = _text(doc, name, "invalid_alert", required=required)
    if value and not (value.startswith(("https://", "http://")) or
                      (value.startswith("/") and not value.startswith("//"))):
        raise _bad(f"'{name}' must be an http(s) URL or a path starting with '/'.",
                   "invalid_alert")
    return value


def parse_alert(body: object, offered_topics: Sequence[str], default_ttl: int) -> AlertIn:
    doc = _object(body, "invalid_alert")
    topics = parse_topics(doc.get("topics", []), offered_topics, "invalid_alert")
    language = doc.get("language")
    language = "" if language in (None, "") else parse_language(language, "invalid_alert")
    urgency = doc.get("urgency") or ("high" if "breaking" in topics else "normal")
    if urgency not in URGENCIES:
        raise _bad(f"'urgency' must be one of {', '.join(URGENCIES)}.", "invalid_alert")
    ttl = doc.get("ttl", default_ttl)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= MAX_TTL:
        raise _bad(f"'ttl' must be whole seconds between 1 and {MAX_TTL}.", "invalid_alert")
    alert = AlertIn(_text(doc, "title", "invalid_alert", required=True),
                    _text(doc, "body", "invalid_alert"), _link(doc, "url", required=True),
                    _link(doc, "icon"), _link(doc, "image"), _text(doc, "tag", "invalid_alert"),
                    topics, language, str(urgency), ttl)
    problem = over_budget(alert.notification(WORST_CASE_ALERT_ID).encode())
    if problem:
        raise ApiError("payload_too_large", problem)
    return alert
