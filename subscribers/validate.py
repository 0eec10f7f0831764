"""Request bodies of the push routes as pydantic models, and the values they become (pure).

The models both validate requests and generate their part of ``/openapi.json``: each
constraint JSON Schema can state (lengths, patterns, enums, ranges) is a field constraint;
what it cannot (a key on the P-256 curve, an unknown topic, an endpoint host outside the
allow list, the payload's byte budget) is a validator of the same model, said in the
field's description and answered with its own error code. What the site offers comes in
the validation context: ``{"topics": (...), "allow": AllowList, "ttl": seconds}``.
"""

from __future__ import annotations

import base64
import functools
import math
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import pydantic
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from subscribers import errors as _errors  # noqa: F401 (adds push codes to the table)
from subscribers.delivery.payload import Notification, alert_topic, over_budget
from subscribers.pushclient.endpoints import MAX_ENDPOINT_CHARS, AllowList, check_endpoint
from ticker.errors import TickerError, custom_error, from_validation

LANGUAGE = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$"
MAX_TTL = 28 * 24 * 3600  # what push services keep at most
MAX_TEXT = {"title": 300, "body": 4000, "url": 2048, "icon": 2048, "image": 2048, "tag": 200}
MAX_ALERT_ID = 2**63 - 1  # above, no database column holds it (SQLite and asyncpg raise)
WORST_CASE_ALERT_ID = 10**15 - 1  # for the byte budget before the id exists
# base64url, padded or not: 65 bytes (an uncompressed point, so 0x04 first) and 16 bytes.
P256_KEY = r"^B[A-P][A-Za-z0-9_-]{85}={0,2}$"
AUTH_SECRET = r"^[A-Za-z0-9_-]{22}={0,2}$"
# The characters str.isspace() knows, spelled out so every regex dialect reads one set.
NON_BLANK = r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
LINK = r"^(https?://|/$|/[^/])"
# RFC 8030 section 5.4: a Topic is at most 32 characters of the URL-safe base64 alphabet.
COLLAPSE = r"^[A-Za-z0-9_-]{1,32}$"
MAX_LANGUAGES = 20
# RFC 3339 section 5.6 date-time: seconds required, an offset required.
RFC3339 = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
           r"([Zz]|[+-][0-9]{2}:[0-9]{2})$")
# A send_at this far in the past still goes out (at once): the editor's clock and a slow
# form submit are seconds off; further back is a mistake worth telling the editor about.
SEND_AT_PAST_GRACE = 60.0
# Further ahead than this is refused: nobody plans a push a season ahead, and a typo in
# the year should not sit in the queue unnoticed.
MAX_SCHEDULE_AHEAD = 90 * 24 * 3600.0
LINK_OR_EMPTY = r"^($|https?://|/$|/[^/])"


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


def _offered(info: ValidationInfo, value: list[str]) -> tuple[str, ...]:
    offered = tuple((info.context or {}).get("topics", value))
    unknown = sorted(set(value) - set(offered))
    if unknown:
        raise custom_error("unknown_topic", f"Unknown topic {unknown[0]!r}; this site offers: "
                                            f"{', '.join(offered)}.")
    return tuple(sorted(set(value)))


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, allow_inf_nan=False, populate_by_name=True)


class PushKeys(_Body):
    p256dh: str = Field(pattern=P256_KEY, description=(
        "The browser's public key: an uncompressed P-256 point, 65 bytes, base64url; "
        "it must be on the curve (checked: 400 invalid_subscription)."))
    auth: str = Field(pattern=AUTH_SECRET, description="The auth secret: 16 bytes, base64url.")

    @field_validator("p256dh")
    @classmethod
    def _on_curve(cls, value: str) -> str:
        raw = b64url_decode(value)
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            raise ValueError("'keys.p256dh' must be an uncompressed P-256 public key "
                             "(65 bytes, base64url) on the curve.") from None
        return b64url_encode(raw)

    @field_validator("auth")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return b64url_encode(b64url_decode(value))


class PushSubscriptionJson(_Body):
    """The browser's ``PushSubscription.toJSON()``."""

    endpoint: str = Field(min_length=1, max_length=MAX_ENDPOINT_CHARS, description=(
        "The push service URL: https on a push service this site sends to (checked "
        "against TICKER_PUSH_ALLOWED_HOSTS and resolved: 400 endpoint_not_allowed)."))
    expirationTime: float | None = Field(None, description="ms since the epoch")
    keys: PushKeys

    @field_validator("endpoint")
    @classmethod
    def _allowed(cls, value: str, info: ValidationInfo) -> str:
        allow: AllowList | None = (info.context or {}).get("allow")
        if allow is not None:
            try:
                check_endpoint(value, allow)
            except TickerError as err:
                raise custom_error(err.code, err.message) from None
        return value


class SubscribeBody(_Body):
    subscription: PushSubscriptionJson
    topics: list[str] | None = Field(None, description=(
        "Omitted or null: every topic; []: only alerts sent to everyone. Each must be one "
        "the site offers (checked: 400 unknown_topic)."))
    language: str = Field("en", pattern=LANGUAGE, description="A language tag, e.g. 'pt-BR'.")
    timezone: str = Field("UTC", max_length=64, description=(
        "An IANA time zone such as 'Europe/London' (checked against the server's list)."))
    vapidKey: str | None = Field(None, pattern=P256_KEY, description=(
        "The applicationServerKey subscribed with: a key this server holds (checked)."))
    oldEndpoint: str | None = Field(None, min_length=1, description=(
        "After pushsubscriptionchange: the replaced subscription's endpoint..."))
    oldAuth: str | None = Field(None, pattern=AUTH_SECRET, description=(
        "...and its auth secret (both, or the old row stays)."))

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        return None if value is None else list(_offered(info, value))

    @field_validator("language")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value not in known_zones():
            raise ValueError("'timezone' must be an IANA time zone such as 'Europe/London'.")
        return value

    @field_validator("oldAuth")
    @classmethod
    def _old_auth(cls, value: str | None) -> str | None:
        return None if value is None else b64url_encode(b64url_decode(value))


class UnsubscribeBody(_Body):
    endpoint: str = Field(min_length=1, description="The subscription's endpoint URL.")
    auth: str = Field(pattern=AUTH_SECRET, description="Its auth secret: 16 bytes, base64url.")

    @field_validator("auth")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return b64url_encode(b64url_decode(value))


def _digits(value: Any) -> Any:
    # Service workers of earlier versions sent the id as a string of digits.
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() \
        else value


AlertId = Annotated[int, Field(ge=1, le=MAX_ALERT_ID, description="An alert's id.")]


class Receipt(_Body):
    alert: Annotated[AlertId, BeforeValidator(_digits)] = Field(description=(
        "The alert's id from the notification (a string of digits is accepted too)."))
    event: Literal["shown", "clicked"]


def _text(name: str, *, pattern: str | None = None, description: str | None = None) -> Any:
    return Field(None, max_length=MAX_TEXT[name], pattern=pattern, description=description)


_LINK_OR_EMPTY = "An http(s) URL, a path starting with one '/', or empty."


def send_at_seconds(value: str | float) -> float:
    """RFC 3339 with an offset (``2026-12-02T14:00:00+01:00``, ``...Z``) or Unix seconds."""
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.upper())
        except ValueError:
            raise ValueError("'send_at' must be an RFC 3339 time with an offset, e.g. "
                             "'2026-12-02T14:00:00+01:00', or Unix seconds.") from None
        if when.tzinfo is None:
            raise ValueError("'send_at' needs a UTC offset ('Z' or '+01:00'): a time without "
                             "one means a different moment in each newsroom.")
        return when.timestamp()
    if not math.isfinite(value) or value <= 0:
        raise ValueError("'send_at' in Unix seconds must be a positive number.")
    return float(value)


def schedule_problem(send_at: float, now: float) -> str | None:
    """Why ``send_at`` cannot be scheduled at ``now``, or None (pure)."""
    if send_at < now - SEND_AT_PAST_GRACE:
        return (f"'send_at' is {round(now - send_at)} seconds in the past; omit it to send "
                "now.")
    if send_at > now + MAX_SCHEDULE_AHEAD:
        return (f"'send_at' is more than {int(MAX_SCHEDULE_AHEAD // 86400)} days ahead.")
    return None


class AlertBody(_Body):
    title: str = Field(min_length=1, max_length=MAX_TEXT["title"], pattern=NON_BLANK,
                       description="The headline, not blank.")
    body: str | None = _text("body")
    url: str = Field(max_length=MAX_TEXT["url"], pattern=LINK,
                     description="An http(s) URL, or a path starting with one '/'.")
    icon: str | None = _text("icon", pattern=LINK_OR_EMPTY, description=_LINK_OR_EMPTY)
    image: str | None = _text("image", pattern=LINK_OR_EMPTY, description=_LINK_OR_EMPTY)
    tag: str | None = _text("tag")
    topics: list[str] = Field(default_factory=list, description=(
        "[]: everyone; else subscribers of any of them, each offered by the site "
        "(checked: 400 unknown_topic)."))
    languages: list[Annotated[str, Field(pattern=LANGUAGE)]] | None = Field(
        None, max_length=MAX_LANGUAGES, description=(
            "Only subscribers of one of these languages (BCP 47; 'en' also reaches 'en-gb'); "
            "null or []: every language."))
    language: str | None = Field(None, pattern=f"^$|{LANGUAGE}", description=(
        "One language, as before 'languages' (both given: either one reaches)."))
    urgency: Literal["very-low", "low", "normal", "high"] | None = Field(None, description=(
        "null: 'high' for the 'breaking' topic, else 'normal'."))
    ttl: int | None = Field(None, ge=1, le=MAX_TTL, description=(
        "Seconds a push service keeps it undelivered (counted from send_at when scheduled); "
        "null: the server's push_ttl."))
    collapse: str | None = Field(None, pattern=COLLAPSE, description=(
        "RFC 8030 Topic (<= 32 base64url characters): an undelivered push with the same one "
        "is replaced by this. null: derived from 'tag' when there is one."))
    send_at: Annotated[str, Field(pattern=RFC3339)] | Annotated[float, Field(gt=0)] | None = \
        Field(None, description=(
            "Send later: RFC 3339 with an offset, or Unix seconds. At most "
            f"{int(SEND_AT_PAST_GRACE)} s in the past (then it goes at once) and "
            f"{int(MAX_SCHEDULE_AHEAD // 86400)} days ahead, a real date (checked: 400 "
            "invalid_alert)."))

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return list(_offered(info, value))

    @field_validator("send_at")
    @classmethod
    def _send_at(cls, value: str | float | None) -> float | None:
        return None if value is None else send_at_seconds(value)

    @model_validator(mode="after")
    def _fits(self, info: ValidationInfo) -> AlertBody:
        problem = over_budget(self.value(60).notification(WORST_CASE_ALERT_ID).encode())
        if problem:
            raise custom_error("payload_too_large", problem)
        now = (info.context or {}).get("now")
        if self.send_at is not None and now is not None:
            problem = schedule_problem(float(self.send_at), float(now))
            if problem:
                raise custom_error("invalid_alert", problem)
        return self

    def value(self, default_ttl: int) -> AlertIn:
        topics = tuple(self.topics)
        languages = {tag.lower() for tag in self.languages or ()}
        if self.language:
            languages.add(self.language.lower())
        return AlertIn(self.title, self.body or "", self.url, self.icon or "", self.image or "",
                       self.tag or "", topics, tuple(sorted(languages)),
                       self.urgency or ("high" if "breaking" in topics else "normal"),
                       self.ttl or default_ttl, self.collapse or "",
                       None if self.send_at is None else float(self.send_at))


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


def subscription_in(body: SubscribeBody, offered_topics: Sequence[str]) -> SubscriptionIn:
    sub = body.subscription
    expiration = None if sub.expirationTime is None else sub.expirationTime / 1000.0
    replaces = (None if body.oldEndpoint is None or body.oldAuth is None
                else (body.oldEndpoint, body.oldAuth))
    topics = tuple(offered_topics) if body.topics is None else tuple(body.topics)
    return SubscriptionIn(sub.endpoint, sub.keys.p256dh, sub.keys.auth, expiration, topics,
                          body.language, body.timezone, body.vapidKey, replaces,
                          body.topics is not None)


@dataclass(frozen=True)
class AlertIn:
    title: str
    body: str
    url: str
    icon: str
    image: str
    tag: str
    topics: tuple[str, ...]  # empty: everyone
    languages: tuple[str, ...]  # lower-case, sorted; empty: every language
    urgency: str
    ttl: int
    collapse: str = ""  # the RFC 8030 Topic; empty: derived from the tag
    send_at: float | None = None  # Unix seconds; None: now

    def topic(self, alert_id: int) -> str:
        """The ``Topic`` header every push of this alert carries (the rule: alert_topic)."""
        return alert_topic(alert_id, self.collapse)

    def notification(self, alert_id: int) -> Notification:
        return Notification(self.title, self.body, self.url, self.icon, self.image, self.tag,
                            alert_id)


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], body: object, code: str,
              context: dict[str, Any] | None = None) -> M:
    try:
        return model.model_validate(body, context=context)
    except pydantic.ValidationError as exc:
        raise from_validation(exc, code, model=model) from None


# Decoded JSON to values (for callers holding a dict; the routes validate raw bytes).

def parse_subscription(body: object, offered_topics: Sequence[str]) -> SubscriptionIn:
    doc = _validate(SubscribeBody, body, "invalid_subscription",
                    {"topics": tuple(offered_topics)})
    return subscription_in(doc, offered_topics)


def parse_unsubscribe(body: object) -> tuple[str, str]:
    doc = _validate(UnsubscribeBody, body, "invalid_subscription")
    return doc.endpoint, doc.auth


def parse_receipt(body: object) -> tuple[int, str]:
    doc = _validate(Receipt, body, "invalid_event")
    return doc.alert, doc.event


def parse_alert(body: object, offered_topics: Sequence[str], default_ttl: int,
                now: float | None = None) -> AlertIn:
    doc = _validate(AlertBody, body, "invalid_alert",
                    {"topics": tuple(offered_topics), "now": now})
    return doc.value(default_ttl)

