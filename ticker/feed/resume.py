"""Resuming from the broker's history, for a client whose position this node's does not reach.

With a shared broker, a node's history may not reach back as far as the broker's: it started
a moment ago, it missed a while during a Redis outage, or the client saw, on another node, a
message this node has not been handed yet. The session then subscribes the client at once
(:attr:`Reply.deferred`) and its connection holds what is delivered meanwhile; the replay is
read from the broker, sent, and only then what was held, without what the replay already
gave. No message can fall between registering and replaying, and none comes twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ticker.feed import wire
from ticker.feed.channels import Message, Position, Recovery
from ticker.feed.session import Outgoing

log = logging.getLogger("ticker.feed")

History = Callable[[str, Position], Awaitable[Recovery]]


async def replay(deferred: dict[str, tuple[Position, Recovery]],
                 history: History) -> tuple[list[Outgoing], dict[str, Position]]:
    """The ``subscribed`` frame and replay of each deferred channel, and where each then
    stands. A broker that cannot answer leaves the node's own answer (``recovered: false``)."""
    out: list[Outgoing] = []
    stands: dict[str, Position] = {}
    for name, (since, local) in deferred.items():
        try:
            rec = await history(name, since)
        except ConnectionError:
            log.info("resume from the broker's history failed", extra={"channel": name})
            rec = local
        out.append(wire.subscribed(name, rec.head.epoch, rec.offset, rec.recovered))
        out.extend(rec.messages)
        stands[name] = rec.head
    return out, stands


def released(held: list[Message], stands: dict[str, Position]) -> list[Message]:
    """What was held, in order, but for what the replays already covered (at or below the
    head each replay stood at)."""
    out = []
    for msg in held:
        pos = stands.get(msg.channel)
        if pos is not None and msg.epoch == pos.epoch and msg.offset <= pos.offset:
            continue
        out.append(msg)
    return out
