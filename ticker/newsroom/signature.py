"""The webhook's signature: ``X-Ticker-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The MAC covers ``"<t>.<raw body>"`` with the shared ``webhook_secret`` (the scheme Stripe and
others use), so a captured request cannot be re-sent with another body or, once
:data:`WINDOW` has passed, at all; within the window the database remembers signatures
already used (:mod:`ticker.newsroom.store`). Pure functions: no clock, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac

from ticker.newsroom.errors import InvalidSignature, StaleSignature

HEADER = "X-Ticker-Signature"
WINDOW = 300.0  # seconds either side of the server's clock
MAX_HEADER_CHARS = 1024


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header value a sender writes (the CMS; tests and the bench use it too)."""
    return f"t={timestamp},v1={_mac(secret, str(timestamp), body)}"


def _mac(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def parse(header: str) -> tuple[str, list[str]]:
    """``(t, [v1, ...])`` as written; raises :class:`InvalidSignature` for another shape."""
    if len(header) > MAX_HEADER_CHARS:
        raise InvalidSignature()
    timestamp, macs = None, []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise InvalidSignature()
        if key == "t":
            timestamp = value
        elif key == "v1":
            macs.append(value.lower())
    if timestamp is None or not timestamp.isdigit() or len(timestamp) > 12 or not macs:
        raise InvalidSignature()
    return timestamp, macs


def verify(header: str, secret: str, body: bytes, now: float) -> str:
    """The matching ``v1`` value (the key for replay detection); raises otherwise.

    The MAC is checked before the time, so an unsigned caller learns nothing about our
    clock; both checks run in constant time with respect to the MAC.
    """
    if not secret:
        raise InvalidSignature("Signed requests are off: the server has no webhook_secret.")
    timestamp, macs = parse(header)
    expected = _mac(secret, timestamp, body)
    matched = None
    for mac in macs:
        if hmac.compare_digest(mac.encode(), expected.encode()):
            matched = mac
    if matched is None:
        raise InvalidSignature("The signature does not match the body.")
    if abs(now - int(timestamp)) > WINDOW:
        raise StaleSignature()
    return matched
