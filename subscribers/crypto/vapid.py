"""VAPID (RFC 8292): the server's key pairs, rotation, and signed JWTs cached per origin.

Keys live in the database (``vapid_keys``), so every node and ``ticker worker`` share them.
The newest key is current: new subscriptions are made with it. Rotation only adds a key;
a subscription keeps the key it was made with, because push services bind a subscription
to its ``applicationServerKey`` and answer 403 to any other.

A JWT is signed once per (push-service origin, key) and reused until half its life is
spent: never signed per message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from subscribers.validate import b64url_decode, b64url_encode
from ticker.storage.database import Database

JWT_LIFETIME = 12 * 3600.0  # RFC 8292 allows up to 24 h; stay well inside it
JWT_RENEW_AFTER = 6 * 3600.0  # re-sign at half-life so no request carries a near-expired JWT
DEMO_SUBJECT = "mailto:ticker-demo@example.com"
_HEADER = b64url_encode(b'{"typ":"JWT","alg":"ES256"}')


@dataclass(frozen=True)
class VapidKey:
    id: int
    public_key: str  # base64url uncompressed point: the browser's applicationServerKey
    private: ec.EllipticCurvePrivateKey
    created_at: float  # Unix seconds


def public_b64(private: ec.EllipticCurvePrivateKey) -> str:
    return b64url_encode(private.public_key().public_bytes(Encoding.X962,
                                                           PublicFormat.UncompressedPoint))


def private_from_b64(text: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(b64url_decode(text), "big"), ec.SECP256R1())


def _row_key(row: dict[str, object]) -> VapidKey:
    return VapidKey(int(str(row["id"])), str(row["public_key"]),
                    private_from_b64(str(row["private_key"])), float(str(row["created_at"])))


async def current_key(db: Database) -> VapidKey | None:
    row = await db.fetchone("SELECT id, public_key, private_key, created_at FROM vapid_keys "
                            "ORDER BY id DESC LIMIT 1")
    return _row_key(row) if row else None


async def add_key(db: Database) -> VapidKey:
    """Generate a new key pair; it becomes the current one."""
    private = ec.generate_private_key(ec.SECP256R1())
    d = private.private_numbers().private_value.to_bytes(32, "big")
    now = time.time()
    key_id = await db.insert(
        "INSERT INTO vapid_keys (public_key, private_key, created_at) VALUES (?, ?, ?)",
        (public_b64(private), b64url_encode(d), now))
    return VapidKey(key_id, public_b64(private), private, now)


async def ensure_key(db: Database) -> VapidKey:
    """The current key, generated on first use."""
    return await current_key(db) or await add_key(db)


async def all_keys(db: Database) -> list[VapidKey]:
    rows = await db.fetchall("SELECT id, public_key, private_key, created_at FROM vapid_keys "
                             "ORDER BY id")
    return [_row_key(r) for r in rows]


async def key_id_for(db: Database, public_key: str) -> int | None:
    row = await db.fetchone("SELECT id FROM vapid_keys WHERE public_key = ?", (public_key,))
    return int(row["id"]) if row else None


def sign_jwt(private: ec.EllipticCurvePrivateKey, claims: dict[str, object]) -> str:
    """A compact ES256 JWT (the signature as raw r || s, as JOSE wants, not DER)."""
    body = b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{_HEADER}.{body}".encode("ascii")
    r, s = decode_dss_signature(private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return f"{_HEADER}.{body}.{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


class KeyRing:
    """Keys by id (immutable once made, so cached forever) from the database."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._keys: dict[int, VapidKey] = {}

    async def get(self, key_id: int) -> VapidKey:
        key = self._keys.get(key_id)
        if key is None:
            for k in await all_keys(self._db):
                self._keys[k.id] = k
            key = self._keys[key_id]
        return key


class JwtCache:
    """``Authorization`` header values per (origin, key id), re-signed at half-life."""

    def __init__(self, subject: str, clock: Callable[[], float],
                 on_sign: Callable[[str], None] = lambda origin: None) -> None:
        self.subject = subject
        self._clock = clock
        self._on_sign = on_sign
        self._cache: dict[tuple[str, int], tuple[str, float]] = {}

    def authorization(self, origin: str, key: VapidKey) -> str:
        now = self._clock()
        hit = self._cache.get((origin, key.id))
        if hit is not None and now < hit[1]:
            return hit[0]
        token = sign_jwt(key.private, {"aud": origin, "exp": int(now + JWT_LIFETIME),
                                       "sub": self.subject})
        value = f"vapid t={token}, k={key.public_key}"
        self._cache[(origin, key.id)] = (value, now + JWT_RENEW_AFTER)
        self._on_sign(origin)
        return value
