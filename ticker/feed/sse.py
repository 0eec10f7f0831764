"""``GET /sse?channels=a,b``: the feed as Server-Sent Events, for networks that block WebSockets.

Every event is a JSON object of the same shape as on ``/ws`` (``type`` first), sent as an
unnamed event so ``EventSource.onmessage`` sees them all. A ``message`` event's ``id`` is
``epoch:offset``; with several channels it lists every channel's position, comma-separated
(``e1:41,e2:7``), because a browser resends only the last id it saw. ``Last-Event-ID`` (or
``?lastEventId=``) resumes each channel whose epoch it names.

Like ``/ws``, events are written to the transport directly (as chunks of the chunked
encoding aiohttp set up) and a client whose unsent bytes pass the limit is dropped.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from ticker import appkeys
from ticker.errors import ApiError
from ticker.feed import wire
from ticker.feed.channels import Hub, Position
from ticker.feed.connections import SseConnection
from ticker.feed.session import CHANNEL_RE, MAX_CHANNELS_PER_SESSION

log = logging.getLogger("ticker.feed.sse")

KEEPALIVE_SECONDS = 15.0


def parse_last_event_id(value: str, hub: Hub, names: list[str]) -> dict[str, Position]:
    """Positions per channel from ``e1:41,e2:7``; entries with unknown epochs still count
    (as a stale position) for a channel only when the id names a single position."""
    by_epoch = {hub.channels[n].epoch: n for n in names if n in hub.channels}
    out: dict[str, Position] = {}
    parts = [p for p in value.split(",") if p.strip()][:MAX_CHANNELS_PER_SESSION]
    for part in parts:
        epoch, _, offset = part.strip().partition(":")
        if not offset.isdigit():
            continue
        name = by_epoch.get(epoch)
        if name is not None:
            out[name] = Position(epoch, int(offset))
    # An id from an older epoch (a restart) cannot be matched to its channel by epoch;
    # resuming such a channel must still say recovered: false rather than start silently.
    if not out and parts:
        for name in names:
            out[name] = Position("stale", 0)
    return out


def _channels(request: web.Request, hub: Hub) -> list[str]:
    raw = request.query.get("channels", "")
    names = list(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    if not names:
        raise ApiError("invalid_request", "Name the channels: /sse?channels=clock,headlines")
    if len(names) > MAX_CHANNELS_PER_SESSION:
        raise ApiError("invalid_request", "Too many channels on one connection.")
    for name in names:
        if not CHANNEL_RE.match(name):
            raise ApiError("invalid_channel", f"{name[:80]!r} is not a channel name.")
        if hub.get(name) is None:
            raise ApiError("unknown_channel", f"There is no channel {name!r}.")
    return names


async def sse_handler(request: web.Request) -> web.StreamResponse:
    app = request.app
    hub = app[appkeys.hub]
    settings = app[appkeys.settings]
    metrics = app[appkeys.metrics]
    names = _channels(request, hub)
    last_id = request.headers.get("Last-Event-ID") or request.query.get("lastEventId", "")
    since = parse_last_event_id(last_id, hub, names) if last_id else {}

    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-cache, no-transform",
        "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
    })
    await resp.prepare(request)
    transport = request.transport
    if transport is None:
        return resp
    chunked = request.version >= (1, 1)
    conn = SseConnection(transport, chunked, settings.feed.ws_send_buffer_bytes, metrics)
    conns = app[appkeys.connections]
    conns.sse[conn] = None
    metrics.connections.labels("sse").inc()
    try:
        conn.write(f"retry: {settings.feed.sse_retry_ms}\n\n".encode())
        for name in names:
            channel = hub.channels[name]
            conn.positions[name] = f"{channel.epoch}:{channel.offset}"
        for name in names:
            rec = hub.subscribe(name, conn, since.get(name))
            conn.positions[name] = f"{rec.head.epoch}:{rec.offset}"
            conn.write(wire.sse_event(wire.sse_data_lines(
                wire.subscribed(name, rec.head.epoch, rec.offset, rec.recovered))))
            for msg in rec.messages:
                conn.deliver(msg)
        while not conn.closed:
            try:
                await asyncio.wait_for(conn.done.wait(), KEEPALIVE_SECONDS)
            except TimeoutError:
                conn.write(b": keepalive\n\n")
    finally:
        conn.close()
        hub.unsubscribe_all(conn, names)
        conns.sse.pop(conn, None)
        metrics.connections.labels("sse").dec()
    return resp


async def close_all(conns: dict[SseConnection, None]) -> None:
    for conn in list(conns):
        conn.close()
