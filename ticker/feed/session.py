"""One client's conversation with the feed, without I/O.

A :class:`Session` takes each client frame and returns what to send back (frames as bytes,
messages to replay) and whether to close. It is the one place that checks channel lists,
limits, positions and rates, for both transports: the WebSocket and SSE adapters only move
bytes; tests drive a session directly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ticker.feed import wire
from ticker.feed.channels import Hub, Message, Position, Recovery, Sink
from ticker.feed.names import CHANNEL_RE as CHANNEL_RE  # re-exported: older importers
from ticker.feed.names import is_private

MAX_CHANNELS_PER_SESSION = 64
# Error frames are capped so that a client cannot make the server send more error bytes than
# it sent: per client frame, this many individual errors and then one that counts the rest;
# per second, ERROR_RATE errors with bursts of ERROR_BURST (beyond that they are not sent,
# though still counted in the metrics).
ERRORS_SHOWN_PER_FRAME = 3
ERROR_RATE = 5.0
ERROR_BURST = 10

Outgoing = bytes | Message  # a ready JSON payload, or a message (shared encoding)


def _always() -> bool:
    return True


@dataclass
class Reply:
    out: list[Outgoing] = field(default_factory=list)
    close: int | None = None  # a close code when the session must end
    close_reason: str = ""
    # every refusal (code, message), whether or not its error frame was sent
    refused: list[tuple[str, str]] = field(default_factory=list)
    # where each channel subscribed by this reply stands (the replay follows in ``out``)
    positions: dict[str, Position] = field(default_factory=dict)
    # channels subscribed by this reply whose replay the broker's history must give, with the
    # position asked for and what this node's history said (see ticker.feed.resume)
    deferred: dict[str, tuple[Position, Recovery]] = field(default_factory=dict)
    allow_error: Callable[[], bool] = field(default=_always, repr=False)  # the per-second cap
    shown: int = 0  # error frames sent

    @property
    def errors(self) -> list[str]:
        """The error codes of this reply, for metrics."""
        return [code for code, _ in self.refused]

    def error(self, code: str, message: str, **extra: Any) -> Reply:
        self.refused.append((code, message))
        if self.shown < ERRORS_SHOWN_PER_FRAME and self.allow_error():
            self.out.append(wire.error(code, message, **extra))
            self.shown += 1
        return self

    def summarise(self) -> Reply:
        """Close the frame's errors: one last error counts those not sent one by one."""
        hidden = len(self.refused) - self.shown
        if hidden > 0 and self.allow_error():
            self.out.append(wire.error("too_many_errors",
                                       f"{hidden} more errors in this frame were not sent.",
                                       count=hidden))
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


def wall_ms() -> int:
    """The server's wall clock in milliseconds, for the ``time`` exchange."""
    return int(time.time() * 1000)


class Session:
    """Subscriptions, resume and the ``time`` exchange for one connection, whatever carries
    it: ``/ws`` feeds it every client frame, ``/sse`` one subscribe built from its query."""

    # One per open connection: slots keep the idle footprint small (10,000 per node).
    __slots__ = ("_bucket", "_errors", "_now", "_wall_ms", "channels", "hub", "private", "sink")

    def __init__(self, hub: Hub, sink: Sink, *, rate: float, now: Callable[[], float],
                 wall_ms: Callable[[], int], private: bool = False) -> None:
        self.hub = hub
        # Whether ``console:*`` channels may be subscribed (the transport checked the login).
        self.private = private
        self.sink = sink
        self.channels: set[str] = set()
        self._now = now
        self._wall_ms = wall_ms
        self._bucket = TokenBucket(rate, max(2 * rate, 10), now())
        # Made on the first error: most connections never send one, and there are 10,000.
        self._errors: TokenBucket | None = None

    def _allow_error(self) -> bool:
        now = self._now()
        if self._errors is None:
            self._errors = TokenBucket(ERROR_RATE, ERROR_BURST, now)
        return self._errors.take(now)

    def _reply(self, out: list[Outgoing] | None = None) -> Reply:
        return Reply(out or [], allow_error=self._allow_error)

    def handle_control(self) -> Reply:
        """A frame of any kind (ping, pong, binary: every one counts against the rate):
        an empty reply, or the close when the client sends too fast."""
        if not self._bucket.take(self._now()):
            return Reply(close=wire.CLOSE_POLICY, close_reason="too many messages")
        return Reply()

    def handle_binary(self) -> Reply:
        reply = self.handle_control()
        if reply.close is None:
            reply = self._reply().error("invalid_request", "Send JSON text frames, not binary.")
        return reply

    def handle(self, text: str) -> Reply:
        """A text frame: what to send back, errors capped (see ``ERRORS_SHOWN_PER_FRAME``)."""
        reply = self.handle_control()
        if reply.close is not None:
            return reply
        try:
            frame = json.loads(text)
        except ValueError:
            return self._reply().error("bad_json", "The frame is not valid JSON.")
        return self.dispatch(frame).summarise()

    def dispatch(self, frame: Any) -> Reply:
        """A decoded frame (not rate-counted: :meth:`handle` counts)."""
        if not isinstance(frame, dict):
            return self._reply().error("invalid_request", "A frame must be a JSON object.")
        kind = frame.get("type")
        if kind == "subscribe":
            return self._subscribe(frame)
        if kind == "unsubscribe":
            return self._unsubscribe(frame)
        if kind == "time":
            return self._reply([wire.time_reply(frame.get("t0"), self._wall_ms())])
        if kind == "ping":
            return self._reply([wire.dumps({"type": "pong"})])
        return self._reply().error("unknown_type", f"Unknown message type {kind!r}.",
                                   known=["subscribe", "unsubscribe", "time", "ping"])

    @staticmethod
    def _channel_list(frame: dict[str, Any]) -> list[str] | str:
        """The frame's channel names (duplicates dropped), or why there are none."""
        channels = frame.get("channels")
        if not isinstance(channels, list) or not channels:
            return "'channels' must be a non-empty list of names."
        # One error for the whole frame, not one per name: a frame of 100,000 unknown
        # names would otherwise draw more error bytes than it holds.
        if len(channels) > MAX_CHANNELS_PER_SESSION:
            return f"A frame may name at most {MAX_CHANNELS_PER_SESSION} channels."
        if not all(isinstance(c, str) for c in channels):
            return "'channels' must be a non-empty list of names."
        return list(dict.fromkeys(channels))

    def _subscribe(self, frame: dict[str, Any]) -> Reply:
        names = self._channel_list(frame)
        if isinstance(names, str):
            return self._reply().error("invalid_request", names)
        since = frame.get("since")
        since = {} if since is None else since
        if not isinstance(since, dict):
            return self._reply().error("invalid_request", "'since' must map channel to position.")
        reply = self._reply()
        for name in names:
            if not CHANNEL_RE.match(name):
                reply.error("invalid_channel", f"{name[:80]!r} is not a channel name.",
                            channel=name[:80])
                continue
            if self.hub.get(name) is None:
                reply.error("unknown_channel", f"There is no channel {name!r}.", channel=name)
                continue
            if is_private(name) and not self.private:
                reply.error("forbidden_channel", f"Channel {name!r} needs a console login.",
                            channel=name)
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
            if pos is not None and not rec.recovered and self.hub.remote_history:
                reply.deferred[name] = (pos, rec)
                continue
            reply.positions[name] = Position(rec.head.epoch, rec.offset)
            reply.out.append(wire.subscribed(name, rec.head.epoch, rec.offset, rec.recovered))
            reply.out.extend(rec.messages)
        return reply

    def _unsubscribe(self, frame: dict[str, Any]) -> Reply:
        names = self._channel_list(frame)
        if isinstance(names, str):
            return self._reply().error("invalid_request", names)
        reply = self._reply()
        for name in names:
            if name in self.channels:
                self.channels.discard(name)
                self.hub.unsubscribe(name, self.sink)
            reply.out.append(wire.unsubscribed(name))
        return reply

    def close(self) -> None:
        self.hub.unsubscribe_all(self.sink, self.channels)
        self.channels.clear()
