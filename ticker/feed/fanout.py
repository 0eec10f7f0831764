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
only when its transport holds no unsent bytes (nothing to overtake) and it offers a
descriptor (plain TCP carrying WebSocket frames: the :class:`~ticker.feed.channels.Sink`
protocol). Short writes and failures come back to the loop thread, which hands them to the
sink's ``finish_direct`` (queue the rest, or drop the connection, as ``transport.write``
would have). Other sinks (SSE, TLS, closing or backed-up connections) get ``deliver``.
"""

from __future__ import annotations

import itertools
import os
import threading
from array import array
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ticker.feed.channels import Message, Sink, deliver_each
from ticker.metrics import Metrics


def py_write_all(frame: bytes, fds: array[int]) -> list[tuple[int, int]]:
    """Write ``frame`` to each descriptor; returns (index, bytes sent or -1) for those not
    written whole. Runs on any thread: it touches nothing but the descriptors. The C
    version (``ticker/feed/_fanout.c``) does the same with the GIL released once, not per write."""
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
    from ticker.feed._fanout import write_all
except ImportError:  # built without a C compiler
    write_all = py_write_all


# The loop thread checks every connection before any of it can be written (``_direct``),
# which costs about 7% of a send (measured: ~0.6 µs against ~8.5 on loopback); its own
# share is smaller by that much, so that it finishes with the helpers rather than after.
CHECK_COST = 0.07
# Each helper gets a small first part of its share as soon as that part is checked, so it
# starts sending while the loop thread checks the rest, and then the rest in one piece: a
# helper needs the GIL to take more work, which it would wait for while the loop thread
# runs Python.
STARTER = 0.2

# How long the loop thread waits for a helper to pick up its starter: far more than a
# thread wake-up takes; a helper later than that is not waited for.
STARTED_WAIT = 0.05

Slice = tuple[int, int]


def plan(n: int, threads: int) -> list[Slice]:
    """How ``n`` subscribers are split: ``[start, stop)`` slices in the order they are handed
    out (each helper's starter, then each helper's rest), the loop thread's own share last."""
    if threads == 0:
        return [(0, n)]
    own = max(0, round(n * (1 / threads - CHECK_COST) / (1 + 1 / threads)))
    bounds = [round(k * (n - own) / threads) for k in range(threads + 1)]
    parts = list(itertools.pairwise(bounds))
    starters = [(a, a + round((b - a) * STARTER)) for a, b in parts]
    rests = [(s, b) for (_, s), (_, b) in zip(starters, parts, strict=True)]
    return [x for x in starters + rests if x[0] < x[1]] + [(n - own, n)]


class Fanout:
    """A :attr:`Hub.fanout <ticker.feed.channels.Hub.fanout>` for large broadcasts: plain
    WebSocket connections get the frame through :func:`write_all`, split by :func:`plan`
    between ``threads`` helpers and the loop thread (``threads`` may be 0: the loop thread
    alone, still in C)."""

    def __init__(self, threads: int, metrics: Metrics, min_sinks: int) -> None:
        self.threads = threads
        self.metrics = metrics
        self.min_sinks = min_sinks
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="ticker-fanout") \
            if threads else None

    def __call__(self, msg: Message, sinks: list[Sink]) -> None:
        if len(sinks) < self.min_sinks:
            deliver_each(msg, sinks)
            return
        frame = msg.ws_frame
        *helpers, (start, stop) = plan(len(sinks), self.threads)
        pending = []
        for k, (a, b) in enumerate(helpers):
            conns, fds = self._direct(msg, sinks[a:b])
            assert self.pool is not None
            if k < self.threads:  # one of the first pieces (the starters): see it picked up
                started = threading.Event()
                pending.append((conns, self.pool.submit(_write_started, started, frame, fds)))
                # The helper needs the GIL for a moment to reach write_all, and this thread,
                # busy in Python, would only give it up after the switch interval (5 ms).
                started.wait(STARTED_WAIT)
            else:
                pending.append((conns, self.pool.submit(write_all, frame, fds)))
        conns, fds = self._direct(msg, sinks[start:stop])
        written = [(conns, write_all(frame, fds))]
        written += [(conns, future.result()) for conns, future in pending]
        delivered = 0
        for conns, short in written:
            delivered += len(conns)
            for i, sent in short:
                conns[i].finish_direct(frame, sent)
                delivered -= sent < 0
        self.metrics.delivered.counts["ws"] += delivered

    @staticmethod
    def _direct(msg: Message, sinks: list[Sink]) -> tuple[list[Sink], array[int]]:
        """The sinks that can be written to directly and their descriptors (built in the
        same pass); the rest get ``deliver``.

        Direct means: a descriptor (``fd`` >= 0), open, with nothing buffered in its
        transport that the frame could overtake. Attribute reads written out inline rather
        than a method call per sink: this runs once per subscriber before the helpers can
        start."""
        direct: list[Sink] = []
        fds = array("i")
        keep, keep_fd = direct.append, fds.append
        for sink in sinks:
            if sink.fd >= 0 and not sink.closed:
                transport = sink.transport
                if not transport.is_closing() and not transport.get_write_buffer_size():
                    keep(sink)
                    keep_fd(sink.fd)
                    continue
            sink.deliver(msg)
        return direct, fds

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)


def _write_started(started: threading.Event, frame: bytes,
                   fds: array[int]) -> list[tuple[int, int]]:
    started.set()
    return write_all(frame, fds)
