"""The WebSocket heartbeat (``ticker.feed.ws.heartbeat`` and ``sweep``) on stand-in transports.

What it pins: pings go out a slice at a time, with the event loop free between slices (a
sweep of every connection in one loop iteration stalled a broadcast behind it, and brought
all the pongs back in one burst: bench/README.md, "The stall"), every connection is still
pinged once per interval, and a peer is dropped only when it has not answered a ping for
``grace`` seconds, so a slow reader that answers late is kept.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
from typing import Any

from ticker.feed import ws
from ticker.feed.connections import Connections, WsConnection
from ticker.feed.ws import PING_FRAME, heartbeat, sweep


class StandInTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def get_write_buffer_size(self) -> int:
        return 0


def connection(seen: float = 0.0) -> tuple[WsConnection, StandInTransport]:
    transport = StandInTransport()
    conn = WsConnection(ws=None, transport=transport, limit=1 << 20,  # type: ignore[arg-type]
                        metrics=None)  # type: ignore[arg-type]
    conn.seen = seen
    return conn, transport


def test_a_peer_is_pinged_then_dropped_only_after_grace_without_an_answer() -> None:
    conn, transport = connection(seen=50.0)
    assert sweep([conn], 100.0, grace=5.0) == 0
    assert transport.written == [PING_FRAME] and conn.pinged == 100.0
    # visited again soon (peers before it closed, so it moved up the round): not due yet,
    # and not pinged twice
    assert sweep([conn], 101.0, grace=5.0) == 0
    assert transport.written == [PING_FRAME] and not transport.aborted
    assert sweep([conn], 105.0, grace=5.0) == 1
    assert transport.aborted and conn.closed


def test_a_peer_that_answers_late_within_grace_is_kept_and_pinged_again() -> None:
    # a held reader: it reads (and answers the ping) only when it gets round to it
    conn, transport = connection(seen=50.0)
    sweep([conn], 100.0, grace=5.0)
    conn.seen = 104.0  # its pong, 4 s late
    assert sweep([conn], 110.0, grace=5.0) == 0
    assert transport.written == [PING_FRAME, PING_FRAME] and not transport.aborted
    assert conn.pinged == 110.0


async def test_the_heartbeat_pings_a_slice_at_a_time_and_the_loop_runs_between() -> None:
    conns = Connections()
    transports = []
    for _ in range(1000):
        conn, transport = connection(seen=float("inf"))  # always "just heard from"
        conns.ws[conn] = None
        transports.append(transport)
    seen_counts: list[int] = []

    async def observer() -> None:  # what a broadcast arriving meanwhile would find
        while True:
            seen_counts.append(sum(len(t.written) for t in transports))
            if seen_counts[-1] >= len(transports):
                return
            await asyncio.sleep(0.002)

    beating = asyncio.create_task(heartbeat(conns, interval=0.5, tick=0.05))  # 10 slices
    await asyncio.wait_for(observer(), 10)
    beating.cancel()
    await asyncio.gather(beating, return_exceptions=True)
    # one round: every connection pinged exactly once
    assert all(t.written == [PING_FRAME] for t in transports)
    # in slices of 100, each in its own loop iteration, the loop free between them
    steps = [b - a for a, b in itertools.pairwise([0, *seen_counts]) if b != a]
    assert len(steps) == 10 and max(steps) == 100, steps


async def test_a_round_does_not_keep_closed_connections_alive() -> None:
    conns = Connections()
    conn, _ = connection(seen=float("inf"))
    conns.ws[conn] = None
    visited: list[int] = []
    real_sweep = ws.sweep

    def counting(batch: list[WsConnection], now: float, grace: float) -> int:
        visited.append(len(batch))
        return real_sweep(batch, now, grace)

    ws.sweep = counting  # type: ignore[assignment]
    try:
        beating = asyncio.create_task(heartbeat(conns, interval=10.0, tick=0.05))
        await asyncio.sleep(0)  # the round starts with the one connection in it
        del conns.ws[conn]
        del conn
        gc.collect()
        await asyncio.sleep(0.2)
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)
    finally:
        ws.sweep = real_sweep
    assert visited == []
