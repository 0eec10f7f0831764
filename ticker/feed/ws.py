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
import math
import time
import weakref
from collections.abc import Iterable

from aiohttp import WSMsgType, web

from ticker import appkeys
from ticker.errors import ApiError
from ticker.feed import resume, wire
from ticker.feed.connections import Connections, WsConnection
from ticker.feed.session import Reply, Session, wall_ms
from ticker.web.auth import may_read_console

log = logging.getLogger("ticker.feed.ws")


def require_upgrade(request: web.Request) -> None:
    """A plain GET (a browser tab, ``curl``) learns what the endpoint wants: 426 Upgrade
    Required rather than a bare 400; a request that asks to upgrade but gets the handshake
    wrong still gets aiohttp's 400. Checked here, not in a wrapping handler: a wrapper's
    coroutine frame would live as long as each connection (10,000 of them)."""
    if ("upgrade" not in request.headers.get("Connection", "").lower()
            and not request.headers.get("Upgrade")):
        raise ApiError("upgrade_required", headers={"Upgrade": "websocket",
                                                    "Connection": "Upgrade"})


async def ws_handler(request: web.Request) -> web.StreamResponse:
    require_upgrade(request)
    # Asked once, at the upgrade: a same-origin page's WebSocket carries the console cookie.
    # Readers send none and cost no lookup.
    private = bool(request.cookies) and await may_read_console(request, bearer=False)
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
                      now=time.monotonic, wall_ms=wall_ms, private=private)
    conn.session = session
    conns.ws[conn] = None
    metrics.connections.labels("ws").inc()
    try:
        async for msg in ws:
            conn.seen = time.monotonic()
            if msg.type == WSMsgType.ERROR:
                metrics.protocol_errors.labels(str(ws.close_code or "error")).inc()
                break
            reply = _answer(session, msg.type, msg.data)
            if reply.deferred:
                conn.hold()  # before any await: nothing delivered can slip past the replay
            if reply.close is None and msg.type == WSMsgType.PING:
                await ws.pong(msg.data)
            conn.send_reply(reply)
            if reply.deferred:
                out, stands = await resume.replay(reply.deferred, app[appkeys.broker].history)
                conn.release(out, stands)
            for code in reply.errors:
                metrics.protocol_errors.labels(code).inc()
            if reply.close is not None:
                metrics.protocol_errors.labels(str(reply.close)).inc()
                conn.drop(reply.close, reply.close_reason)
                break
    finally:
        conn.detach()
        conns.ws.pop(conn, None)
        metrics.connections.labels("ws").dec()
    return ws


def _answer(session: Session, kind: WSMsgType, data: object) -> Reply:
    """Every frame aiohttp hands over counts against the client's rate, whatever its kind
    (pings included: ``autoping`` is off, so each one reaches this handler)."""
    if kind == WSMsgType.TEXT:
        assert isinstance(data, str)
        return session.handle(data)
    if kind == WSMsgType.BINARY:
        return session.handle_binary()
    return session.handle_control()


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


# The heartbeat pings a slice of the connections every HEARTBEAT_TICK seconds, so that each
# is pinged once per interval, rather than all of them in one loop iteration: at 10,000
# connections that took 85-190 ms, and their 10,000 pongs then came back in one burst whose
# objects, all alive at once, set off a full garbage collection (0.4-0.5 s over ~760,000
# objects on the bench machine) in front of the next broadcast. See bench/README.md,
# "Session 3: the stall".
HEARTBEAT_TICK = 0.1


def sweep(conns: Iterable[WsConnection], now: float, grace: float) -> int:
    """Visit ``conns``: drop those silent for at least ``grace`` seconds since their previous
    ping, ping the others (noting ``now`` as their ping time), except those whose ping is
    unanswered but younger than ``grace``: they are left for the next visit. Returns how
    many were dropped."""
    dropped = 0
    for conn in conns:
        transport = conn.transport
        if transport.is_closing():
            continue
        if conn.seen < conn.pinged:
            if now - conn.pinged < grace:
                # Pinged late in the previous round and early in this one (connections
                # before it closed): not its fault, it answers by the next visit.
                continue
            # No pong (nor anything else) for a long time after our ping: the peer or the
            # path to it is dead. Abort: a close handshake would only wait in vain.
            conn.detach()
            transport.abort()
            dropped += 1
        elif not conn.closed:
            transport.write(PING_FRAME)
            conn.pinged = now
    return dropped


async def heartbeat(conns: Connections, interval: float, tick: float = HEARTBEAT_TICK) -> None:
    """Ping every connection once each ``interval`` seconds, dropping dead ones (one task).

    Each round takes the connections open at its start and visits them a slice at a time,
    one slice every ``tick`` seconds, so pings (and the pongs they bring back) are spread
    over the interval and the loop runs broadcasts between slices. The round holds weak
    references: a connection that closes meanwhile is not kept alive by it."""
    loop = asyncio.get_running_loop()
    slices = max(1, round(interval / tick)) if tick > 0 else 1
    step = interval / slices
    started = loop.time()
    while True:
        round_ = [weakref.ref(conn) for conn in conns.ws]
        size = math.ceil(len(round_) / slices)
        dropped = 0
        for k in range(slices):
            started += step
            await asyncio.sleep(max(0.0, started - loop.time()))
            part = [conn for ref in round_[k * size:(k + 1) * size]
                    if (conn := ref()) is not None]
            if part:
                dropped += sweep(part, time.monotonic(), interval / 2)
        if dropped:
            log.info("dead peers dropped", extra={"count": dropped})
