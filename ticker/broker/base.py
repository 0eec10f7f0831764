"""The broker's small interface: what the feed asks of whatever carries messages between nodes.

A broker numbers each channel's messages (``epoch`` + ``offset``), hands every message to this
node's :class:`~ticker.feed.channels.Hub` in order, once, and answers "what came after this
position" from its own history. ``memory://`` is one process (the Hub is the authority, its
history kept in the app's database between runs); ``redis://`` is shared by every node.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

from ticker.feed.channels import Message, Position, Recovery
from ticker.storage.database import Database, StorageError


class BrokerUnavailable(ConnectionError):
    """The broker cannot be reached now: nothing was published (the caller may retry)."""


class BrokerUnreachable(StorageError):
    """The broker cannot be reached at start: one line for the operator, naming the place."""


class Broker(Protocol):
    """One node's view of the feed's broker."""

    @property
    def url(self) -> str:
        """The URL with any password masked: safe to show and log."""

    async def start(self, db: Database) -> None:
        """Connect, bring the Hub's channels up to date, and start delivering to it."""

    async def publish(self, channel: str, data: Mapping[str, Any]) -> Message:
        """Number the message and send it to every node (this one included); raises
        :class:`BrokerUnavailable` when it cannot, and :class:`KeyError` for no such channel."""

    async def history(self, channel: str, since: Position | None) -> Recovery:
        """What follows ``since`` in the broker's own history, ``recovered`` when all of it."""

    def health(self) -> dict[str, Any]:
        """``{"status": "ok" | "degraded", "url": masked}`` for ``/healthz``."""

    async def close(self) -> None:
        """Stop delivering; what was published is kept (flushed) where the backend keeps it."""


_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)[^@/]*@", re.IGNORECASE)


def mask_url(url: str) -> str:
    """``redis://user:secret@host/0`` -> ``redis://***@host/0``: no password in logs or health."""
    return _USERINFO.sub(r"\1***@", url)
