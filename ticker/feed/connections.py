"""The feed's connections as sinks: each writes pre-encoded frames straight to its transport.

A message's frame is encoded once (:attr:`Message.ws_frame`, :attr:`Message.sse_data`) and
written to each connection's transport synchronously, so fan-out to N clients is N
``transport.write`` calls and no tasks. Each transport's unsent bytes are the connection's
send buffer; one that passes the limit belongs to a client that stopped keeping up, which
is dropped (WebSocket: told 1013, try again later), so one slow reader never holds memory
or time that others need. :class:`Connections` is the node's registry of them.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from ticker.feed import wire
from ticker.feed.channels import Message, Position
from ticker.feed.resume import released
from ticker.feed.session import Outgoing, Reply, Session
from ticker.metrics import Metrics

log = logging.getLogger("ticker.feed")

# How long a dropped client gets to read its close frame before the socket is aborted.
CLOSE_GRACE_SECONDS = 2.0


class Connections:
    """Open feed connections of this node, for shutdown and the gauge."""

    def __init__(self) -> None:
        self.ws: dict[WsConnection, None] = {}
        self.sse: dict[SseConnection, None] = {}

    def __len__(self) -> int:
        return len(self.ws) + len(self.sse)


def plain_socket_fd(transport: asyncio.BaseTransport) -> int:
    """The socket's descriptor if ``transport`` writes unencrypted bytes to it, else -1."""
    sock = transport.get_extra_info("socket")
    if sock is None or transport.get_extra_info("sslcontext") is not None:
        return -1
    fd: int = sock.fileno()
    return fd


class WsConnection:
    """A :class:`~ticker.feed.channels.Sink` writing frames straight to one transport."""

    __slots__ = ("__weakref__", "closed", "fd", "held", "limit", "metrics", "pinged", "seen",
                 "session", "transport", "ws")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport, limit: int,
                 metrics: Metrics) -> None:
        self.ws = ws
        self.transport = transport
        self.limit = limit
        self.metrics = metrics
        self.closed = False
        self.seen = time.monotonic()  # when the peer last sent anything (pong included)
        self.pinged = 0.0  # when the heartbeat last pinged it (0: never)
        self.session: Session | None = None
        self.fd = plain_socket_fd(transport)
        self.held: list[Message] | None = None  # while a replay is read (see hold)

    def finish_direct(self, frame: bytes, sent: int) -> None:
        """After a direct write of ``sent`` bytes of ``frame`` (-1: the socket failed)."""
        if sent < 0:
            self.detach()
            self.transport.abort()
        elif sent < len(frame):
            self.transport.write(frame[sent:])  # asyncio sends the rest when it can

    def deliver(self, msg: Message) -> None:
        if self.held is not None:
            self.held.append(msg)
            return
        self._write(msg.ws_frame)

    def hold(self) -> None:
        """Keep what is delivered until :meth:`release` (a replay is being read): no direct
        writes meanwhile, so every message passes through :meth:`deliver`."""
        self.held = []
        self.fd = -1

    def release(self, out: list[Outgoing], stands: dict[str, Position]) -> None:
        """Send ``out`` (the replays), then what was held that they did not cover."""
        held, self.held = self.held or [], None
        self.fd = plain_socket_fd(self.transport)
        self.send_reply(Reply(out))
        for msg in released(held, stands):
            self.deliver(msg)

    def send_reply(self, reply: Reply) -> None:
        for item in reply.out:
            self._write(item.ws_frame if isinstance(item, Message) else wire.ws_text_frame(item))

    def _write(self, frame: bytes) -> None:
        if self.closed:
            return
        transport = self.transport
        if transport.is_closing():
            self.detach()
            return
        if transport.get_write_buffer_size() > self.limit:
            self.drop(wire.CLOSE_TRY_AGAIN, "slow consumer: reconnect and resume")
            self.metrics.slow_consumer_disconnects.labels("ws").inc()
            log.info("slow consumer dropped", extra={"transport": "ws"})
            return
        transport.write(frame)
        self.metrics.delivered.counts["ws"] += 1

    def detach(self) -> None:
        """Stop delivering to this connection and leave every channel (idempotent)."""
        self.closed = True
        if self.session is not None:
            self.session.close()

    def drop(self, code: int, reason: str) -> None:
        """Stop sending, queue a close frame behind what is buffered, abort after a grace."""
        if self.closed:
            return
        self.detach()
        transport = self.transport
        if not transport.is_closing():
            transport.write(wire.ws_close_frame(code, reason))
            asyncio.get_running_loop().call_later(CLOSE_GRACE_SECONDS, transport.abort)


class SseConnection:
    """A :class:`~ticker.feed.channels.Sink` writing Server-Sent Events to one transport.

    It exists, and can be subscribed, before the response has started: what it is given
    until :meth:`start` waits in order, so nothing published while the headers go out is
    lost or sent ahead of the replay."""

    __slots__ = ("chunked", "closed", "done", "fd", "held", "limit", "metrics", "pending",
                 "positions", "session", "transport")

    def __init__(self, transport: asyncio.Transport, chunked: bool, limit: int,
                 metrics: Metrics) -> None:
        self.transport = transport
        self.chunked = chunked
        self.limit = limit
        self.metrics = metrics
        self.positions: dict[str, str] = {}
        self.closed = False
        self.fd = -1  # events are not WebSocket frames: never written directly
        self.done = asyncio.Event()
        self.pending: list[bytes] | None = []  # None once the stream has started
        self.session: Session | None = None
        self.held: list[Message] | None = None  # while a replay is read (see hold)

    def event_id(self) -> str:
        return ",".join(self.positions.values())

    def deliver(self, msg: Message) -> None:
        if self.held is not None:
            self.held.append(msg)
            return
        self.positions[msg.channel] = f"{msg.epoch}:{msg.offset}"
        self.write(wire.sse_event(msg.sse_data, self.event_id()))

    def send_reply(self, reply: Reply) -> None:
        for item in reply.out:
            if isinstance(item, Message):
                self.deliver(item)
            else:  # protocol frames carry no position: no id
                self.write(wire.sse_event(wire.sse_data_lines(item)))

    def hold(self) -> None:
        """Keep what is delivered until :meth:`release` (a replay is being read)."""
        self.held = []

    def release(self, out: list[Outgoing], stands: dict[str, Position]) -> None:
        """Send ``out`` (the replays), then what was held that they did not cover."""
        held, self.held = self.held or [], None
        self.positions.update({n: f"{p.epoch}:{p.offset}" for n, p in stands.items()})
        self.send_reply(Reply(out))
        for msg in released(held, stands):
            self.deliver(msg)

    def finish_direct(self, frame: bytes, sent: int) -> None:
        raise AssertionError("an SSE connection is never written to directly (fd is -1)")

    def start(self) -> None:
        """The headers are out: send what waited, then write as events come."""
        pending, self.pending = self.pending, None
        for body in pending or ():
            self.write(body)

    def write(self, body: bytes) -> None:
        if self.closed:
            return
        if self.pending is not None:
            self.pending.append(body)
            return
        transport = self.transport
        if transport.is_closing():
            self.close()
            return
        if transport.get_write_buffer_size() > self.limit:
            self.metrics.slow_consumer_disconnects.labels("sse").inc()
            log.info("slow consumer dropped", extra={"transport": "sse"})
            self.close()
            transport.abort()
            return
        transport.write(wire.http_chunk(body) if self.chunked else body)
        self.metrics.delivered.counts["sse"] += 1

    def close(self) -> None:
        """Stop writing, end the stream and leave every channel (idempotent)."""
        self.closed = True
        self.done.set()
        if self.session is not None:
            self.session.close()
