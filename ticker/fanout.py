"""One broadcast's socket writes, spread over threads.

A broadcast to 10,000 WebSocket clients is 10,000 ``send`` calls. Each costs several µs
in the kernel (on loopback the receiver's TCP input runs in it too), and Python releases
the GIL around it, so on a machine with more than one core the writes can proceed in
parallel. :class:`Fanout` hands shares of the connections to helper threads, which
write the message's one pre-encoded frame with :func:`write_all` (a C loop that releases
the GIL once per share, ``_fanout.c``; a Python loop where it was not built), while the
event-loop thread writes its own share and then waits for theirs.

Why this is safe: the loop thread is inside the broadcast until every share is written,
so nothing else can touch those transports meanwhile; a connection is written to directly
only when its transport holds no unsent bytes (nothing to overtake) and speaks plain TCP
(TLS is the transport's business). Short writes and failures come back to the loop thread,
which queues the rest on the transport or drops the connection, as ``transport.write``
would have. Other sinks (SSE, closing or backed-up connections) get the ordinary path.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ticker.feed.channels import Message, Sink, deliver_each
from ticker.metrics import Metrics
from ticker.ws import WsConnection


def py_write_all(frame: bytes, fds: array[int]) -> list[tuple[int, int]]:
    """Write ``frame`` to each descriptor; returns (index, bytes sent or -1) for those not
    written whole. Runs on any thread: it touches nothing but the descriptors. The C
    version (``ticker/_fanout.c``) does the same with the GIL released once, not per write."""
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


write_all: Callable[[bytes, array[int]], list[tuple[int, int]]]
try:
    from ticker._fanout import write_all
except ImportError:  # built without a C compiler
    write_all = py_write_all


class Fanout:
    """A :attr:`Hub.fanout <ticker.feed.channels.Hub.fanout>` for large broadcasts: plain
    WebSocket connections get the frame through :func:`write_all`, in ``threads + 1``
    shares written at once (``threads`` may be 0: the loop thread alone, still in C)."""

    def __init__(self, threads: int, metrics: Metrics, min_sinks: int) -> None:
        self.parts = threads + 1
        self.metrics = metrics
        self.min_sinks = min_sinks
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="ticker-fanout") \
            if threads else None

    def __call__(self, msg: Message, sinks: list[Sink]) -> None:
        if len(sinks) < self.min_sinks:
            deliver_each(msg, sinks)
            return
        frame = msg.ws_frame
        written: list[tuple[list[WsConnection], list[tuple[int, int]]]] = []
        pending = []
        # The helpers' shares first, so they are writing while this thread sorts its own.
        for k in reversed(range(self.parts)):
            conns = self._direct(msg, sinks[k::self.parts])
            fds = array("i", [c.fd for c in conns])
            if k and self.pool is not None:
                pending.append((conns, self.pool.submit(write_all, frame, fds)))
            else:
                written.append((conns, write_all(frame, fds)))
        written += [(conns, future.result()) for conns, future in pending]
        delivered = 0
        for conns, short in written:
            delivered += len(conns)
            for i, sent in short:
                conns[i].finish_direct(frame, sent)
                delivered -= sent < 0
        self.metrics.delivered.counts["ws"] += delivered

    @staticmethod
    def _direct(msg: Message, sinks: list[Sink]) -> list[WsConnection]:
        """The connections that can be written to directly; the rest get ``deliver``.

        Direct means: a plain socket, open, with nothing buffered in its transport that the
        frame could overtake. Written out inline rather than as a method of
        :class:`WsConnection`: it runs once per subscriber before the helpers can start."""
        direct: list[WsConnection] = []
        keep = direct.append
        for sink in sinks:
            if type(sink) is WsConnection and sink.fd >= 0 and not sink.closed:
                transport = sink.transport
                if not transport.is_closing() and not transport.get_write_buffer_size():
                    keep(sink)
                    continue
            sink.deliver(msg)
        return direct

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
