"""A push-service stand-in and browser-like subscribers, for tests and benchmarks.

:class:`PushServiceStandIn` plays FCM's or Mozilla's part on 127.0.0.1: it checks each
request's VAPID JWT (ES256 against the ``k=`` key, ``aud`` = its origin, ``exp`` within
24 h, ``sub`` mailto:/https:) and that ``k=`` is the key the subscription was made with,
decrypts the body with the subscriber's private key (through ``http_ece``, an independent
implementation of RFC 8291), records what arrived, and answers as cued per endpoint.
Servers reach it only because tests allow ``http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import http_ece
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from subscribers.validate import b64url_decode, b64url_encode

MAX_BODY = 4096  # what FCM and Mozilla accept


@dataclass
class BrowserSubscriber:
    """What a browser holds for one subscription: a P-256 key pair and an auth secret."""

    endpoint: str
    application_server_key: str  # the VAPID public key it subscribed with
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth_secret: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        return b64url_encode(self.private_key.public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint))

    @property
    def auth(self) -> str:
        return b64url_encode(self.auth_secret)

    def subscription(self) -> dict[str, Any]:
        """``PushSubscription.toJSON()``."""
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": self.p256dh, "auth": self.auth}}

    def decrypt(self, body: bytes) -> bytes:
        return bytes(http_ece.decrypt(body, private_key=self.private_key,
                                      auth_secret=self.auth_secret, version="aes128gcm"))


@dataclass(frozen=True)
class Cue:
    """How to answer the next request to one endpoint."""

    status: int = 201
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    delay: float = 0.0  # seconds before answering (the message counts as arrived at once)


@dataclass(frozen=True)
class Arrival:
    token: str
    status: int
    payload: dict[str, Any] | None  # decrypted JSON, for accepted messages
    headers: dict[str, str]
    jwt: str
    vapid_key: str
    at: float


class VapidError(Exception):
    pass


def verify_vapid(header: str, origin: str, now: float) -> tuple[str, str]:
    """``(jwt, k)`` from a valid ``Authorization: vapid t=..., k=...``; raises VapidError."""
    scheme, _, params = header.partition(" ")
    if scheme.lower() != "vapid":
        raise VapidError("Authorization scheme must be vapid")
    fields = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
    token, key = fields.get("t", ""), fields.get("k", "")
    try:
        head, claims_b64, sig_b64 = token.split(".")
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(),
                                                              b64url_decode(key))
        sig = b64url_decode(sig_b64)
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                   int.from_bytes(sig[32:], "big"))
        public.verify(der, f"{head}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        header_doc = json.loads(b64url_decode(head))
        claims = json.loads(b64url_decode(claims_b64))
    except (ValueError, InvalidSignature) as exc:
        raise VapidError(f"bad JWT: {type(exc).__name__}") from None
    if len(sig) != 64 or header_doc.get("alg") != "ES256":
        raise VapidError("JWT must be ES256 with a raw 64-byte signature")
    if claims.get("aud") != origin:
        raise VapidError(f"aud {claims.get('aud')!r} is not {origin!r}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or not now < exp <= now + 24 * 3600:
        raise VapidError("exp must be in the next 24 hours")
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        raise VapidError("sub must be mailto: or https:")
    return token, key


class PushServiceStandIn:
    """``async with PushServiceStandIn() as ps``: a push service on 127.0.0.1."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.origin = ""
        self.subscribers: dict[str, BrowserSubscriber] = {}
        self.gone: set[str] = set()  # tokens that answer 410 (unsubscribed in the browser)
        self.cues: dict[str, deque[Cue]] = {}
        self.default = Cue()
        self.arrivals: list[Arrival] = []
        self.rejections: list[tuple[str, int, str]] = []
        self.jwts: set[str] = set()
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()  # ends slow answers at once when the stand-in stops

    async def __aenter__(self) -> PushServiceStandIn:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/push/{token}", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.origin = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def subscribe(self, application_server_key: str) -> BrowserSubscriber:
        """What ``pushManager.subscribe({applicationServerKey})`` does in a browser."""
        token = secrets.token_urlsafe(16)
        sub = BrowserSubscriber(f"{self.origin}/push/{token}", application_server_key)
        self.subscribers[token] = sub
        return sub

    @staticmethod
    def token_of(sub: BrowserSubscriber) -> str:
        return sub.endpoint.rsplit("/", 1)[1]

    def cue(self, sub: BrowserSubscriber, *cues: Cue) -> None:
        self.cues.setdefault(self.token_of(sub), deque()).extend(cues)

    def received(self, sub: BrowserSubscriber) -> list[dict[str, Any]]:
        """Payloads this subscriber's browser would have been shown (accepted ones)."""
        token = self.token_of(sub)
        return [a.payload for a in self.arrivals
                if a.token == token and a.payload is not None and a.status < 300]

    def requests_for(self, sub: BrowserSubscriber) -> list[Arrival]:
        token = self.token_of(sub)
        return [a for a in self.arrivals if a.token == token]

    def _reject(self, token: str, status: int, reason: str) -> web.Response:
        self.rejections.append((token, status, reason))
        return web.json_response({"reason": reason}, status=status)

    async def _receive(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        sub = self.subscribers.get(token)
        if sub is None or token in self.gone:
            return self._reject(token, 410 if token in self.gone else 404, "no such subscription")
        try:
            jwt, key = verify_vapid(request.headers.get("Authorization", ""), self.origin,
                                    self._clock())
        except VapidError as exc:
            return self._reject(token, 401, str(exc))
        if key != sub.application_server_key:
            return self._reject(token, 403, "k= is not the key this subscription was made with")
        problem = self._check_headers(request)
        if problem:
            return self._reject(token, 400, problem)
        body = await request.read()
        if len(body) > MAX_BODY:
            return self._reject(token, 413, f"body of {len(body)} bytes")
        self.jwts.add(jwt)
        queue = self.cues.get(token)
        cue = queue.popleft() if queue else self.default
        payload = None
        if cue.status < 300:
            try:
                payload = json.loads(sub.decrypt(body))
            except Exception as exc:
                return self._reject(token, 400, f"cannot decrypt: {exc}")
        self.arrivals.append(Arrival(token, cue.status, payload, dict(request.headers), jwt,
                                     key, self._clock()))
        if cue.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), cue.delay)
        return web.Response(status=cue.status, text=cue.body, headers=cue.headers)

    @staticmethod
    def _check_headers(request: web.Request) -> str | None:
        ttl = request.headers.get("TTL", "")
        if not ttl.isdigit():
            return "TTL header missing"
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return "Content-Encoding must be aes128gcm"
        if request.headers.get("Urgency", "normal") not in ("very-low", "low", "normal", "high"):
            return "bad Urgency"
        topic = request.headers.get("Topic")
        if topic is not None and (len(topic) > 32 or not all(
                c.isalnum() or c in "-_" for c in topic)):
            return "Topic must be at most 32 base64url characters"
        return None
