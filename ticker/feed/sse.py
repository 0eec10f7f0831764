"""``GET /sse?channels=a,b``: the feed as Server-Sent Events, for networks that block WebSockets.

The request is one ``subscribe`` of a :class:`~ticker.feed.session.Session`, the same as on
``/ws``: channel names, limits, resume and error codes are the session's. What is SSE's own
is here: the query and ``Last-Event-ID`` syntax, the event encoding, ``retry`` and keepalives,
and that a request of which nothing can be subscribed is a JSON answer (4xx) rather than a
stream; when only some channels are refused, their errors are events in the stream.

Every event is a JSON object of the same shape as on ``/ws`` (``type`` first), sent as an
unnamed event so ``EventSource.onmessage`` sees them all. A ``message`` event's ``id`` is
``epoch:offset``; with several channels it lists every channel's position, comma-separated
(``e1:41,e2:7``), because a browser resends only the last id it saw. ``Last-Event-ID`` (or
``?lastEventId=``) resumes each channel whose epoch it names.

The stream is meant for pages on any site (the widget's fallback): every answer, errors
included, allows any origin. No credentials are involved, so ``*`` is enough.

Like ``/ws``, events are written to the transport directly (as chunks of the chunked
encoding aiohttp set up) and a client whose unsent bytes pass the limit is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from ticker import appkeys
from ticker.errors import ApiError
from ticker.feed import resume
from ticker.feed.channels import Hub, Position
from ticker.feed.connections import SseConnection
from ticker.feed.names import is_private
from ticker.feed.session import MAX_CHANNELS_PER_SESSION, Session, wall_ms
from ticker.web.auth import may_read_console

log = logging.getLogger("ticker.feed.sse")

KEEPALIVE_SECONDS = 15.0
CORS = {"Access-Control-Allow-Origin": "*"}
# A preflight is only sent by clients that add headers of their own (EventSource polyfills
# built on fetch or XHR send Last-Event-ID themselves); EventSource does not need one.
PREFLIGHT = {**CORS, "Access-Control-Allow-Methods": "GET",
             "Access-Control-Allow-Headers": "Last-Event-ID, Cache-Control",
             "Access-Control-Max-Age": "86400"}


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


def subscribe_frame(request: web.Request, hub: Hub) -> dict[str, Any]:
    """The session frame this request stands for: its channels and where to resume them."""
    raw = request.query.get("channels", "")
    names = list(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    if not names:
        raise ApiError("invalid_request", "Name the channels: /sse?channels=clock,headlines",
                       headers=CORS)
    last_id = request.headers.get("Last-Event-ID") or request.query.get("lastEventId", "")
    since = parse_last_event_id(last_id, hub, names) if last_id else {}
    return {"type": "subscribe", "channels": names,
            "since": {n: {"epoch": p.epoch, "offset": p.offset} for n, p in since.items()}}


async def sse_handler(request: web.Request) -> web.StreamResponse:
    app = request.app
    hub = app[appkeys.hub]
    settings = app[appkeys.settings]
    metrics = app[appkeys.metrics]
    frame = subscribe_frame(request, hub)
    private = any(is_private(n) for n in frame["channels"]) and await may_read_console(
        request, bearer=True)
    transport = request.transport
    if transport is None:  # the client is already gone
        return web.Response(status=204)
    conn = SseConnection(transport, request.version >= (1, 1), settings.feed.ws_send_buffer_bytes,
                         metrics)
    session = conn.session = Session(hub, conn, rate=settings.feed.ws_max_client_rate,
                                     now=time.monotonic, wall_ms=wall_ms, private=private)
    # Subscribing and queueing the replay are one step: whatever is published while the
    # headers go out waits behind it in the connection (see SseConnection).
    reply = session.dispatch(frame)
    if reply.refused and not reply.positions and not reply.deferred:
        # Nothing to stream. A 4xx also stops EventSource from retrying in vain.
        conn.close()
        code, message = reply.refused[0]
        raise ApiError(code, message, headers=CORS)
    # Some channels refused, others subscribed: stream, with the refusals as error events
    # (as /ws sends error frames). A 4xx here would end the whole stream for good, since
    # EventSource does not retry one: a widget asking for one channel this server lacks
    # would lose the others too.
    conn.write(f"retry: {settings.feed.sse_retry_ms}\n\n".encode())
    conn.positions.update({n: f"{p.epoch}:{p.offset}" for n, p in reply.positions.items()})
    conns = app[appkeys.connections]
    conns.sse[conn] = None
    metrics.connections.labels("sse").inc()
    try:
        conn.send_reply(reply)
        if reply.deferred:
            # No await since the subscribe: nothing delivered can slip past the replay.
            conn.hold()
            out, stands = await resume.replay(reply.deferred, app[appkeys.broker].history)
            conn.release(out, stands)
        resp = web.StreamResponse(headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache, no-transform",
            "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
            **CORS,
        })
        await resp.prepare(request)
        conn.start()
        while not conn.closed:
            try:
                await asyncio.wait_for(conn.done.wait(), KEEPALIVE_SECONDS)
            except TimeoutError:
                conn.write(b": keepalive\n\n")
    finally:
        conn.close()
        conns.sse.pop(conn, None)
        metrics.connections.labels("sse").dec()
    return resp


async def sse_preflight(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=PREFLIGHT)


async def close_all(conns: dict[SseConnection, None]) -> None:
    for conn in list(conns):
        conn.close()
