"""The notification payload and its byte budget (pure).

What the service worker receives is compact JSON; its size after RFC 8291 encryption must
fit what every push service accepts. Firefox on Android refuses bodies over 3070 bytes,
the smallest limit among the services we target, so that is the budget.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass

# aes128gcm (RFC 8188) with one record: a header of salt (16) + record size (4) + key-id
# length (1) + key id = the sender's uncompressed P-256 key (65), then the ciphertext:
# plaintext + the 0x02 padding delimiter (1) + the AES-GCM tag (16).
HEADER_BYTES = 16 + 4 + 1 + 65
DELIMITER_BYTES = 1
TAG_BYTES = 16
OVERHEAD_BYTES = HEADER_BYTES + DELIMITER_BYTES + TAG_BYTES  # 103
MAX_ENCRYPTED_BYTES = 3070
MAX_PLAINTEXT_BYTES = MAX_ENCRYPTED_BYTES - OVERHEAD_BYTES  # 2967

_TOPIC_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


@dataclass(frozen=True)
class Notification:
    """The contract's payload: ``{"title","body","url","icon","image","tag","alert"}``."""

    title: str
    body: str
    url: str
    icon: str
    image: str
    tag: str
    alert: int

    def encode(self) -> bytes:
        doc = {"title": self.title, "body": self.body, "url": self.url, "icon": self.icon,
               "image": self.image, "tag": self.tag, "alert": self.alert}
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encrypted_size(plaintext_bytes: int) -> int:
    """Bytes on the wire for a plaintext of this size, exactly (one aes128gcm record)."""
    return plaintext_bytes + OVERHEAD_BYTES


def over_budget(payload: bytes) -> str | None:
    """Why ``payload`` cannot be sent, or None when it fits."""
    size = encrypted_size(len(payload))
    if size <= MAX_ENCRYPTED_BYTES:
        return None
    return (f"The notification would be {size} bytes once encrypted; push services accept "
            f"at most {MAX_ENCRYPTED_BYTES} (shorten the title or body by "
            f"{size - MAX_ENCRYPTED_BYTES} bytes).")


def topic_header(tag: str) -> str | None:
    """RFC 8030 ``Topic`` (<= 32 base64url characters) for a collapse key, or None.

    A key that already fits is used as is; any other is hashed so that updates of one story
    still share one topic and replace each other while undelivered.
    """
    if not tag:
        return None
    if _TOPIC_SAFE.match(tag):
        return tag
    digest = hashlib.sha256(tag.encode("utf-8")).digest()[:24]
    return base64.urlsafe_b64encode(digest).decode("ascii")  # 24 bytes -> 32 chars, no '='


def alert_topic(alert_id: int, collapse: str | None) -> str:
    """The RFC 8030 ``Topic`` every push of one alert carries, so that a push service keeps
    one copy per reader: a second send (after a crash, see the delivery store) replaces an
    undelivered first. The alert's collapse topic when it has one (several alerts on one
    story then replace each other), else one of its own."""
    return topic_header(collapse or "") or f"alert-{alert_id}"
