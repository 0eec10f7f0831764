"""RFC 8291 (``aes128gcm``) as two independent implementations read it: what ticker encrypts
and what pywebpush encrypts both decrypt with ``http_ece`` and the subscriber's private key.

pywebpush is the reference ticker replaced for speed (bench/ measures both); keeping it as
an oracle here means a change to ticker's encryption that drifts from the RFC fails a test
even if the stand-in (which also decrypts with http_ece) were changed along with it.
"""

from __future__ import annotations

import http_ece
import pytest
from pywebpush import WebPusher

from subscribers.crypto.encrypt import RECORD_SIZE, encrypt
from subscribers.delivery.payload import MAX_PLAINTEXT_BYTES
from subscribers.testing import BrowserSubscriber
from subscribers.validate import b64url_decode

PLAINTEXTS = [b"{}", b'{"title":"Flood warning","url":"https://news.example/flood"}',
              "Überschwemmung — 洪水警报".encode(), b"x" * MAX_PLAINTEXT_BYTES]


def open_body(sub: BrowserSubscriber, body: bytes) -> bytes:
    return bytes(http_ece.decrypt(body, private_key=sub.private_key,
                                  auth_secret=sub.auth_secret, version="aes128gcm"))


@pytest.mark.parametrize("plaintext", PLAINTEXTS, ids=["empty-object", "alert", "utf8", "largest"])
def test_ticker_and_pywebpush_bodies_both_decrypt_with_http_ece(plaintext: bytes) -> None:
    sub = BrowserSubscriber("https://push.example/1", "k")
    ours = encrypt(plaintext, b64url_decode(sub.p256dh), sub.auth_secret)
    theirs = WebPusher(sub.subscription()).encode(plaintext, "aes128gcm")["body"]
    assert open_body(sub, ours) == plaintext
    assert open_body(sub, theirs) == plaintext
    # Same header layout (RFC 8188 section 2.1): salt, record size, key id = our public key.
    assert int.from_bytes(ours[16:20], "big") == RECORD_SIZE
    assert ours[20] == 65 and ours[21] == 0x04  # an uncompressed P-256 point


def test_a_body_for_another_subscriber_does_not_decrypt() -> None:
    sub, other = (BrowserSubscriber(f"https://push.example/{i}", "k") for i in range(2))
    body = encrypt(b"{}", b64url_decode(sub.p256dh), sub.auth_secret)
    with pytest.raises(http_ece.ECEException, match="Decryption error"):
        open_body(other, body)
