"""The encryption floor: the least CPU one Web Push message's encryption costs here.

RFC 8291 needs, for every message: a fresh P-256 key pair (and its public key's bytes, which
go into the message), an ECDH with the subscriber's key, HKDF (three HMAC-SHA-256 for the
key, two for the content key and nonce: with one output block each, HKDF's extract and
expand are single HMACs) and one AES-128-GCM record. This does exactly that and nothing
else, one message at a time on one thread, straight on ``cryptography`` (HMACs with the
standard library's OpenSSL-backed ``hmac.digest``), with the subscriber's key parsed once
outside the loop. No sender can encrypt a message for less on this machine; ``bench.push``
judges its CPU per push against it.

``python -m bench.cryptofloor [--n 5000] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import hmac
import os
import sys
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PLAINTEXT = b'{"title": "Flood warning for the city centre", "body": "' + b"x" * 120 + b'"}'


@dataclass
class CryptoFloor:
    us_per_message: float  # the whole message, best of the rounds
    parts_us: dict[str, float]  # each step alone, best of the rounds


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


def _best(step: object, n: int, rounds: int) -> float:
    assert callable(step)
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(n):
            step()
        best = min(best, time.process_time() - started)
    return best / n * 1e6


def measure(n: int = 5000, rounds: int = 3) -> CryptoFloor:
    curve, ecdh = ec.SECP256R1(), ec.ECDH()
    subscriber = ec.generate_private_key(curve).public_key()
    ua_public = subscriber.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    auth = os.urandom(16)

    def one_message() -> bytes:
        ephemeral = ec.generate_private_key(curve)
        as_public = ephemeral.public_key().public_bytes(Encoding.X962,
                                                        PublicFormat.UncompressedPoint)
        shared = ephemeral.exchange(ecdh, subscriber)
        ikm = _hmac(_hmac(auth, shared), b"WebPush: info\x00" + ua_public + as_public + b"\x01")
        prk = _hmac(os.urandom(16), ikm)
        cek = _hmac(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
        nonce = _hmac(prk, b"Content-Encoding: nonce\x00\x01")[:12]
        return AESGCM(cek).encrypt(nonce, PLAINTEXT + b"\x02", None)

    key = ec.generate_private_key(curve)
    shared = key.exchange(ecdh, subscriber)
    prk = os.urandom(32)
    parts = {
        "key generation": lambda: ec.generate_private_key(curve).public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint),
        "ECDH": lambda: key.exchange(ecdh, subscriber),
        "HKDF": lambda: (_hmac(_hmac(auth, shared), ua_public + b"\x01"), _hmac(prk, b"a"),
                         _hmac(prk, b"b"), _hmac(prk, b"c")),
        "AES-GCM": lambda: AESGCM(prk[:16]).encrypt(prk[:12], PLAINTEXT, None),
    }
    whole = _best(one_message, n, rounds)
    return CryptoFloor(whole, {name: _best(step, n, rounds) for name, step in parts.items()})


def line(floor: CryptoFloor) -> str:
    parts = ", ".join(f"{name} {us:.1f}" for name, us in floor.parts_us.items())
    return (f"encryption floor on this machine (one message, cryptography, one thread): "
            f"{floor.us_per_message:.1f} µs ({parts})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="messages per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(line(measure(args.n, args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
