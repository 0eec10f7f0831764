"""One client's conversation with the feed, without I/O.

A :class:`Session` takes the text of each client frame and returns what to send back
(frames as bytes, messages to replay) and whether to close. The WebSocket adapter moves
those bytes; tests drive a session directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ticker.feed import wire
from ticker.feed.channels import Hub, Message, Position, Sink
from ticker.feed.names import CHANNEL_RE as CHANNEL_RE  # re-exported: older importers

MAX_CHANNELS_PER_SESSION = 64

Outgoing = bytes | Message  # a ready JSON payload, or a message (shared encoding)


@dataclass
class Reply:
    out: list[Outgoing] = field(default_factory=list)
    close: int | None = None  # a close code when the session must end
    close_reason: str = ""
    errors: list[str] = field(default_factory=list)  # error codes sent, for metrics

    def error(self, code: str, message: str, **extra: Any) -> Reply:
        self.out.append(wire.error(code, message, **extra))
        self.errors.append(code)
        return self


class TokenBucket:
    """Allows ``rate`` events per second with bursts up to ``burst``."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def parse_position(raw: Any) -> Position | None:
    if not isinstance(raw, dict):
        return None
    epoch, offset = raw.get("epoch"), raw.get("offset")
    if not isinstance(epoch, str) or isinstance(offset, bool) or not isinstance(offset, int):
        return None
    return Position(epoch, offset)


class Session:
    """Subscriptions, resume and the ``time`` exchange for one connection."""

    # One per open connection: slots keep the idle footprint small (10,000 per node).
    __slots__ = ("_bucket", "_now", "_wall_ms", "channels", "hub", "sink")

    def __init__(self, hub: Hub, sink: Sink, *, rate: float, now: Callable[[], float],
                 wall_ms: Callable[[], int]) -> None:
        self.hub = hub
        self.sink = sink
        self.channels: set[str] = set()
        self._now = now
        self._wall_ms = wall_ms
        self._bucket = TokenBucket(rate, max(2 * rate, 10), now())

    def handle(self, text: str) -> Reply:
        if not self._bucket.take(self._now()):
            return Reply(close=wire.CLOSE_POLICY, close_reason="too many messages")
        try:
            frame = json.loads(text)
        except ValueError:
            return Reply().error("bad_json", "The frame is not valid JSON.")
        if not isinstance(frame, dict):
            return Reply().error("invalid_request", "A frame must be a JSON object.")
        kind = frame.get("type")
        if kind == "subscribe":
            return self._subscribe(frame)
        if kind == "unsubscribe":
            return self._unsubscribe(frame)
        if kind == "time":
            return Reply([wire.time_reply(frame.get("t0"), self._wall_ms())])
        if kind == "ping":
            return Reply([wire.dumps({"type": "pong"})])
        return Reply().error("unknown_type", f"Unknown message type {kind!r}.",
                                 known=["subscribe", "unsubscribe", "time", "ping"])

    @staticmethod
    def _channel_list(frame: dict[str, Any]) -> list[str] | None:
        channels = frame.get("channels")
        if (not isinstance(channels, list) or not channels
                or not all(isinstance(c, str) for c in channels)):
            return None
        return list(dict.fromkeys(channels))

    def _subscribe(self, frame: dict[str, Any]) -> Reply:
        names = self._channel_list(frame)
        if names is None:
            return Reply().error("invalid_request", "'channels' must be a non-empty list of names.")
        since = frame.get("since")
        since = {} if since is None else since
        if not isinstance(since, dict):
            return Reply().error("invalid_request", "'since' must map channel to position.")
        reply = Reply()
        for name in names:
            if not CHANNEL_RE.match(name):
                reply.error("invalid_channel", f"{name[:80]!r} is not a channel name.",
                            channel=name[:80])
                continue
            if self.hub.get(name) is None:
                reply.error("unknown_channel", f"There is no channel {name!r}.", channel=name)
                continue
            if name not in self.channels and len(self.channels) >= MAX_CHANNELS_PER_SESSION:
                reply.error("invalid_request", "Too many channels on one connection.",
                            channel=name)
                continue
            pos = parse_position(since.get(name)) if name in since else None
            if name in since and pos is None:
                reply.error("invalid_request", 'A position is {"epoch": str, "offset": int}.',
                            channel=name)
                continue
            self.channels.add(name)
            rec = self.hub.subscribe(name, self.sink, pos)
            reply.out.append(wire.subscribed(name, rec.head.epoch, rec.offset, rec.recovered))
            reply.out.extend(rec.messages)
        return reply

    def _unsubscribe(self, frame: dict[str, Any]) -> Reply:
        names = self._channel_list(frame)
        if names is None:
            return Reply().error("invalid_request", "'channels' must be a non-empty list of names.")
        reply = Reply()
        for name in names:
            if name in self.channels:
                self.channels.discard(name)
                self.hub.unsubscribe(name, self.sink)
            reply.out.append(wire.unsubscribed(name))
        return reply

    def close(self) -> None:
        self.hub.unsubscribe_all(self.sink, self.channels)
        self.channels.clear()
