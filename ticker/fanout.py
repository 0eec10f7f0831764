"""One broadcast's socket writes, spread over threads.

A broadcast to 10,000 WebSocket clients is 10,000 ``send`` calls. Each costs several µs
in the kernel (on loopback the receiver's TCP input runs in it too), and Python releases
the GIL around it, so on a machine with more than one core the writes can proceed in
parallel. :class:`ThreadedFanout` hands shares of the connections to helper threads,
which write the message's one pre-encoded frame with ``os.write``, while the event-loop
thread writes its own share and then waits for theirs.

Why this is safe: the loop thread is inside the broadcast until every share is written,
so nothing else can touch those transports meanwhile; a connection is written to directly
only when its transport holds no unsent bytes (nothing to overtake) and speaks plain TCP
(TLS is the transport's business). Short writes and failures come back to the loop thread,
which queues the rest on the transport or drops the connection, as ``transport.write``
would have. Other sinks (SSE, closing or backed-up connections) get the ordinary path.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from ticker.feed.channels import Message, Sink, deliver_each
from ticker.metrics import Metrics
from ticker.ws import WsConnection


def write_all(frame: bytes, fds: list[int]) -> list[tuple[int, int]]:
    """Write ``frame`` to each descriptor; returns (index, bytes sent or -1) for those not
    written whole. Runs on any thread: it touches nothing but the descriptors."""
    short: list[tuple[int, int]] = []
    size = len(frame)
    for i, fd in enumerate(fds):
        try:
            sent = os.write(fd, frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            sent = -1
        if sent != size:
            short.append((i, sent))
    return short


class ThreadedFanout:
    """A :attr:`Hub.fanout <ticker.feed.channels.Hub.fanout>` using ``threads`` helpers."""

    def __init__(self, threads: int, metrics: Metrics, min_sinks: int) -> None:
        self.threads = threads
        self.metrics = metrics
        self.min_sinks = min_sinks
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="ticker-fanout")

    def __call__(self, msg: Message, sinks: list[Sink]) -> None:
        if len(sinks) < self.min_sinks:
            deliver_each(msg, sinks)
            return
        direct: list[WsConnection] = []
        for sink in sinks:
            if isinstance(sink, WsConnection) and sink.can_write_directly():
                direct.append(sink)
            else:
                sink.deliver(msg)
        frame = msg.ws_frame
        parts = self.threads + 1
        shares = [direct[k::parts] for k in range(parts)]
        futures = [self.pool.submit(write_all, frame, [c.fd for c in share])
                   for share in shares[1:]]
        results = [write_all(frame, [c.fd for c in shares[0]])]
        results += [f.result() for f in futures]
        failed = 0
        for share, short in zip(shares, results, strict=True):
            for i, sent in short:
                share[i].finish_direct(frame, sent)
                failed += sent < 0
        self.metrics.delivered.counts["ws"] += len(direct) - failed

    def close(self) -> None:
        self.pool.shutdown(wait=True)
