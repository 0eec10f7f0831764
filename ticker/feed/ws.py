"""The ``/ws`` endpoint: moves bytes between aiohttp and a :class:`~ticker.feed.session.Session`.

Broadcasts bypass aiohttp's per-call ``send_str`` coroutine: a message's frame is encoded
once (:attr:`Message.ws_frame`) and written to each connection's transport synchronously,
so fan-out to N clients is N ``transport.write`` calls and no tasks. Each transport's
unsent bytes are the connection's send buffer; one that passes the limit belongs to a
client that stopped keeping up, which is told 1013 (try again later: reconnect and resume)
and dropped, so one slow reader never holds memory or time that others need.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import WSMsgType, web

from ticker import appkeys
from ticker.feed import wire
from ticker.feed.connections import Connections, WsConnection
from ticker.feed.session import Reply, Session

log = logging.getLogger("ticker.feed.ws")

def wall_ms() -> int:
    return int(time.time() * 1000)


async def ws_handler(request: web.Request) -> web.StreamResponse:
    app = request.app
    settings = app[appkeys.settings]
    metrics = app[appkeys.metrics]
    conns = app[appkeys.connections]
    ws = web.WebSocketResponse(
        # Pings are sent by one shared sweep (see ``heartbeat``) rather than a timer per
        # connection: cheaper in memory and CPU at 10,000 connections.
        heartbeat=None,
        autoping=False,
        max_msg_size=settings.feed.ws_max_message_bytes,
        compress=False,  # frames are shared between clients; per-client deflate would not be
    )
    await ws.prepare(request)
    transport = request.transport
    if transport is None:
        return ws
    conn = WsConnection(ws, transport, settings.feed.ws_send_buffer_bytes, metrics)
    session = Session(app[appkeys.hub], conn, rate=settings.feed.ws_max_client_rate,
                      now=time.monotonic, wall_ms=wall_ms)
    conn.session = session
    conns.ws[conn] = None
    metrics.connections.labels("ws").inc()
    try:
        async for msg in ws:
            conn.seen = time.monotonic()
            if msg.type == WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type == WSMsgType.TEXT:
                reply = session.handle(msg.data)
                conn.send_reply(reply)
                for code in reply.errors:
                    metrics.protocol_errors.labels(code).inc()
                if reply.close is not None:
                    metrics.protocol_errors.labels(str(reply.close)).inc()
                    conn.drop(reply.close, reply.close_reason)
                    break
            elif msg.type == WSMsgType.BINARY:
                conn.send_reply(Reply().error("invalid_request",
                                              "Send JSON text frames, not binary."))
            elif msg.type == WSMsgType.ERROR:
                metrics.protocol_errors.labels(str(ws.close_code or "error")).inc()
                break
    finally:
        conn.detach()
        conns.ws.pop(conn, None)
        metrics.connections.labels("ws").dec()
    return ws


async def close_all(conns: Connections, code: int = wire.CLOSE_GOING_AWAY,
                    grace: float = 3.0) -> None:
    """Tell every client the server is going away (they reconnect and resume elsewhere);
    clients that do not answer the close handshake in time are cut off."""
    live = list(conns.ws)
    for conn in live:
        conn.detach()
    tasks = [asyncio.ensure_future(c.ws.close(code=code, message=b"server shutting down"))
             for c in live]
    if tasks:
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
    for conn in live:
        if not conn.transport.is_closing():
            conn.transport.abort()


PING_FRAME = b"\x89\x00"  # an empty ping, the same bytes for every connection


def sweep(conns: Connections, pinged_at: float) -> int:
    """Drop peers silent since the previous sweep pinged them (at ``pinged_at``); ping the
    rest. Returns how many were dropped."""
    dropped = 0
    for conn in list(conns.ws):
        transport = conn.transport
        if transport.is_closing():
            continue
        if conn.seen < pinged_at:
            # No pong (nor anything else) for a whole interval after our ping: the peer or
            # the path to it is dead. Abort: a close handshake would only wait in vain.
            conn.detach()
            transport.abort()
            dropped += 1
        elif not conn.closed:
            transport.write(PING_FRAME)
    return dropped


async def heartbeat(conns: Connections, interval: float) -> None:
    """Ping every connection each ``interval`` seconds, dropping dead ones (one task)."""
    pinged_at = time.monotonic()
    while True:
        await asyncio.sleep(interval)
        dropped = sweep(conns, pinged_at)
        pinged_at = time.monotonic()
        if dropped:
            log.info("dead peers dropped", extra={"count": dropped})
