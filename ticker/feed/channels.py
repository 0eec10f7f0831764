"""Channels, their history and resume: the feed's core, without I/O.

A channel numbers its messages: ``offset`` rises by one per message within an ``epoch``.
The epoch is a random token chosen when the channel's numbering starts (here: when the
process starts), so a client holding ``(epoch, offset)`` from an older numbering is told
``recovered: false`` instead of being handed messages that do not follow what it saw.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ticker.feed import wire
from ticker.feed.names import is_latest, is_on_demand


class Message:
    """One published message. Its wire encodings are built once, on first use, and shared
    by every connection it is delivered to (one serialisation per broadcast)."""

    __slots__ = ("_json", "_sse", "_ws", "channel", "data", "epoch", "offset", "ts")

    def __init__(self, channel: str, epoch: str, offset: int, data: Mapping[str, Any],
                 ts: float) -> None:
        self.channel = channel
        self.epoch = epoch
        self.offset = offset
        self.data = data
        self.ts = ts
        self._json: bytes | None = None
        self._ws: bytes | None = None
        self._sse: bytes | None = None

    def envelope(self) -> dict[str, Any]:
        return {"type": "message", "channel": self.channel, "epoch": self.epoch,
                "offset": self.offset, "data": self.data}

    @property
    def json(self) -> bytes:
        if self._json is None:
            self._json = wire.dumps(self.envelope())
        return self._json

    @property
    def ws_frame(self) -> bytes:
        """The complete server-to-client WebSocket text frame (servers do not mask)."""
        if self._ws is None:
            self._ws = wire.ws_text_frame(self.json)
        return self._ws

    @property
    def sse_data(self) -> bytes:
        """The ``data:`` line(s) of this message as a Server-Sent Event."""
        if self._sse is None:
            self._sse = wire.sse_data_lines(self.json)
        return self._sse

    def __repr__(self) -> str:
        return f"Message({self.channel!r}, {self.epoch}:{self.offset})"


@dataclass(frozen=True)
class Position:
    epoch: str
    offset: int


@dataclass(frozen=True)
class Recovery:
    """What a subscriber gets when it (re)subscribes."""

    recovered: bool
    messages: list[Message]
    head: Position

    @property
    def offset(self) -> int:
        """The offset the subscriber stands at: every message that follows is newer."""
        return self.messages[0].offset - 1 if self.messages else self.head.offset


class Channel:
    """A named stream with bounded history.

    ``latest`` channels (clock, breaking, data tickers) hand their current value to every
    new subscriber; stream channels (headlines) start new subscribers at the head.
    """

    def __init__(self, name: str, *, latest: bool, max_size: int, max_age: float,
                 epoch: str | None = None) -> None:
        self.name = name
        self.latest = latest
        self.epoch = epoch or secrets.token_hex(4)
        self.offset = 0  # offset of the last message; 0 while there is none
        self._max_size = max(1, max_size)
        self._max_age = max_age
        self._history: deque[Message] = deque(maxlen=self._max_size)

    def append(self, data: Mapping[str, Any], now: float) -> Message:
        self.offset += 1
        msg = Message(self.name, self.epoch, self.offset, data, now)
        self._history.append(msg)
        self.prune(now)
        return msg

    def accept(self, epoch: str, offset: int, data: Mapping[str, Any],
               ts: float) -> Message | None:
        """Take a message numbered elsewhere (by the broker); ``None`` for one already held.

        A new epoch, or an offset that skips some, starts the local history afresh: what it
        held no longer leads without a hole to what follows, so resuming from before the
        hole must say ``recovered: false`` (or be served from the broker's own history)."""
        if epoch == self.epoch and offset <= self.offset:
            return None
        if epoch != self.epoch or offset != self.offset + 1:
            self._history.clear()
            self.epoch = epoch
        self.offset = offset
        msg = Message(self.name, epoch, offset, data, ts)
        self._history.append(msg)
        self.prune(ts)
        return msg

    def restore(self, epoch: str, offset: int, messages: Iterable[Message]) -> None:
        """Start from numbering kept elsewhere (the database, after a restart)."""
        self.epoch = epoch
        self.offset = offset
        self._history.clear()
        self._history.extend(m for m in messages if m.epoch == epoch and m.offset <= offset)

    def skip_to(self, epoch: str, offset: int) -> None:
        """The numbering went on without us and its messages are gone: jump to the head."""
        if epoch != self.epoch or offset > self.offset:
            self._history.clear()
            self.epoch, self.offset = epoch, offset

    def prune(self, now: float) -> None:
        """Drop messages older than the age bound, keeping the latest value of a latest channel."""
        history = self._history
        keep = 1 if self.latest else 0
        while len(history) > keep and now - history[0].ts > self._max_age:
            history.popleft()

    @property
    def position(self) -> Position:
        return Position(self.epoch, self.offset)

    def last(self) -> Message | None:
        return self._history[-1] if self._history else None

    def recent(self, limit: int) -> list[Message]:
        if limit <= 0:
            return []
        return list(self._history)[-limit:]

    def since(self, pos: Position | None, now: float) -> Recovery:
        """Messages after ``pos``; ``recovered`` says whether they are all of them.

        Without a position a latest channel gives its current value and a stream channel
        nothing: the subscriber starts at the head. With one, ``recovered`` is true only
        when history still holds every message after it.
        """
        self.prune(now)
        head = self.position
        if pos is None:
            last = self.last()
            return Recovery(True, [last] if self.latest and last else [], head)
        if pos.epoch != self.epoch or pos.offset > self.offset or pos.offset < 0:
            return self._unrecovered(head)
        if pos.offset == self.offset:
            return Recovery(True, [], head)
        first = self._history[0].offset if self._history else self.offset + 1
        if pos.offset + 1 < first:
            return self._unrecovered(head)
        missed = [m for m in self._history if m.offset > pos.offset]
        return Recovery(True, missed, head)

    def _unrecovered(self, head: Position) -> Recovery:
        last = self.last()
        return Recovery(False, [last] if self.latest and last else [], head)


class Buffer(Protocol):
    """What a broadcast reads of a sink's transport (an :class:`asyncio.Transport` has it)."""

    def is_closing(self) -> bool: ...

    def get_write_buffer_size(self) -> int: ...


class Sink(Protocol):
    """Where a connection's messages go: handed each message with ``deliver``, or written to
    directly by a broadcast (:mod:`ticker.feed.fanout`).

    A direct write sends the message's :attr:`Message.ws_frame` (the complete WebSocket
    frame) to the socket ``fd`` from a helper thread, so a sink offers it only when those are
    the bytes its peer expects on that socket: ``fd`` is -1 for any other sink (SSE, TLS).
    It is attempted only when the sink is not ``closed`` and its ``transport`` is not closing
    and holds no unsent bytes (the frame must not overtake them). Afterwards, on the loop
    thread, ``finish_direct(frame, sent)`` is called for a write that did not send the whole
    frame (``sent`` bytes went out; -1: the socket failed). Plain attributes rather than a
    method: they are read once per subscriber of every broadcast.
    """

    # Read-only here (a sink may keep them as plain attributes, as the connections do).
    @property
    def fd(self) -> int: ...

    @property
    def closed(self) -> bool: ...

    @property
    def transport(self) -> Buffer: ...

    def deliver(self, msg: Message) -> None:
        """Send ``msg``; must not block or await."""

    def finish_direct(self, frame: bytes, sent: int) -> None:
        """Complete a direct write of which only ``sent`` bytes went out (-1: failed)."""


def deliver_each(msg: Message, sinks: list[Sink]) -> None:
    """The plain fan-out: hand ``msg`` to each sink in turn, on this thread."""
    for sink in sinks:
        sink.deliver(msg)


class Hub:
    """The channels of one node and who is subscribed to each."""

    def __init__(self, names: Iterable[str], *, max_size: int, max_age: float,
                 clock: Callable[[], float], max_on_demand: int = 1000) -> None:
        self._clock = clock
        # Channels made because a client named them (the headlines family), oldest first:
        # at most ``max_on_demand``, so a hostile client cannot make a million.
        self._on_demand: dict[str, None] = {}
        self._max_on_demand = max_on_demand
        self._max_size = max_size
        self._max_age = max_age
        self.channels: dict[str, Channel] = {}
        self._subscribers: dict[str, dict[Sink, None]] = {}
        # How a message reaches its subscribers; a node may install one that spreads the
        # writes over threads (ticker.feed.fanout). Must deliver to every sink before returning.
        self.fanout: Callable[[Message, list[Sink]], None] = deliver_each
        # Whether a broker shared with other nodes holds history this node's may lack (then
        # a resume this node cannot serve is asked of the broker: ticker.feed.resume).
        self.remote_history = False
        for name in names:
            self.add_channel(name)

    @property
    def max_size(self) -> int:
        """How many messages each channel's history holds."""
        return self._max_size

    def add_channel(self, name: str) -> Channel:
        if name not in self.channels:
            self.channels[name] = Channel(name, latest=is_latest(name),
                                          max_size=self._max_size, max_age=self._max_age)
            self._subscribers[name] = {}
        return self.channels[name]

    def get(self, name: str) -> Channel | None:
        """The channel, made now if it is of a family made on first use and the cap allows."""
        channel = self.channels.get(name)
        if channel is None and is_on_demand(name) and self._room_for_one():
            channel = self.add_channel(name)
            self._on_demand[name] = None
        return channel

    def _room_for_one(self) -> bool:
        if len(self._on_demand) < self._max_on_demand:
            return True
        # Full: forget one that was named but never used (no message, no subscriber), so
        # names a client tried once do not lock the family for good.
        for name in self._on_demand:
            if self.channels[name].offset == 0 and not self._subscribers[name]:
                del self._on_demand[name], self.channels[name], self._subscribers[name]
                return True
        return False

    def subscribe(self, name: str, sink: Sink, since: Position | None) -> Recovery:
        """Register ``sink`` and return what it must be sent first. Registration and the
        replay are one step (no await in between) so no message can fall in the gap."""
        channel = self.channels[name]
        self._subscribers[name][sink] = None
        return channel.since(since, self._clock())

    def unsubscribe(self, name: str, sink: Sink) -> None:
        subs = self._subscribers.get(name)
        if subs is not None:
            subs.pop(sink, None)

    def unsubscribe_all(self, sink: Sink, names: Iterable[str]) -> None:
        for name in names:
            self.unsubscribe(name, sink)

    def subscriber_count(self, name: str | None = None) -> int:
        if name is not None:
            return len(self._subscribers.get(name, ()))
        return sum(len(s) for s in self._subscribers.values())

    def channel_for(self, name: str) -> Channel | None:
        """The channel a message of the server's is for (made now if of the family made on
        first use: the server publishing is not a client naming, so no cap applies)."""
        channel = self.channels.get(name)
        if channel is None and is_on_demand(name):
            channel = self.add_channel(name)
        return channel

    def accept(self, name: str, epoch: str, offset: int, data: Mapping[str, Any],
               ts: float) -> Message | None:
        """Hand a message numbered by the broker to this node's subscribers, once: one
        already held (a duplicate) or for a channel this node lacks gives ``None``."""
        channel = self.channel_for(name)
        if channel is None:
            return None
        msg = channel.accept(epoch, offset, data, ts)
        if msg is not None:
            self.fanout(msg, list(self._subscribers[name]))
        return msg

    def publish(self, name: str, data: Mapping[str, Any]) -> tuple[Message, int]:
        """Append to the channel and hand the message to every subscriber.

        Returns the message and how many sinks it was handed to. A sink that gives up
        (slow consumer) removes itself from ``_subscribers`` during ``deliver``, hence the
        copy of the keys.
        """
        channel = self.channel_for(name)
        if channel is None:
            raise KeyError(name)
        msg = channel.append(data, self._clock())
        sinks = list(self._subscribers[name])
        self.fanout(msg, sinks)
        return msg, len(sinks)
