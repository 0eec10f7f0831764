"""One broadcast's socket writes, spread over threads.

A broadcast to 10,000 WebSocket clients is 10,000 ``send`` calls. Each costs several µs
in the kernel (on loopback the receiver's TCP input runs in it too), and Python releases
the GIL around it, so on a machine with more than one core the writes can proceed in
parallel. :class:`Fanout` has helper threads and the event-loop thread write the
message's one pre-encoded frame with :func:`write_all` / :func:`write_shared` (a C loop that
releases the GIL once per share, ``_fanout.c``; a Python loop where it was not built),
taking the connections a chunk at a time from one shared cursor, so all finish together;
the loop thread then waits for the helpers.

Why this is safe: the loop thread is inside the broadcast until every share is written,
so nothing else can touch those transports meanwhile; a connection is written to directly
only when its transport holds no unsent bytes (nothing to overtake) and it offers a
descriptor (plain TCP carrying WebSocket frames: the :class:`~ticker.feed.channels.Sink`
protocol). Short writes and failures come back to the loop thread, which hands them to the
sink's ``finish_direct`` (queue the rest, or drop the connection, as ``transport.write``
would have). Other sinks (SSE, TLS, closing or backed-up connections) get ``deliver``.
"""

from __future__ import annotations

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
    return py_write_shared(frame, fds, array("q", [0]), max(1, len(fds)))


_claiming = threading.Lock()


def py_write_shared(frame: bytes, fds: array[int], cursor: array[int],
                    chunk: int) -> list[tuple[int, int]]:
    """As :func:`py_write_all`, for the indices claimed ``chunk`` at a time from ``cursor``
    (``array("q", [start])``), which several threads writing the same ``fds`` share: each
    takes the next chunk when done with its last, so they finish together however the cost
    of a send varies."""
    short: list[tuple[int, int]] = []
    size = len(frame)
    while True:
        with _claiming:
            start = cursor[0]
            cursor[0] = start + chunk
        if start >= len(fds):
            return short
        for i in range(start, min(start + chunk, len(fds))):
            try:
                sent = os.write(fds[i], frame)
            except BlockingIOError:
                sent = 0
            except OSError:
                sent = -1
            if sent != size:
                short.append((i, sent))


write_all: Callable[[bytes, array[int]], list[tuple[int, int]]]
write_shared: Callable[[bytes, array[int], array[int], int], list[tuple[int, int]]]
try:
    from ticker.feed._fanout import write_all, write_shared
except ImportError:  # built without a C compiler
    write_all, write_shared = py_write_all, py_write_shared


# The loop thread checks every connection before any of it can be written (``_direct``,
# about 0.65 µs a connection against ~8 µs a loopback send). So each helper first gets a
# starter, a part checked first, to send while the loop thread checks the rest; then all
# threads share the rest (``write_shared``). A starter must outlast the checks: a helper
# that finishes it early waits for the GIL (up to the 5 ms switch interval) to take more
# work while the loop thread runs Python. Longer is harmless, short of a fair share.
STARTER = 0.12
# How many sockets a thread claims at a time from the shared rest: the threads finish
# within one chunk's sends of each other (~0.3 ms here).
CHUNK = 32

# How long the loop thread waits for a helper to pick up its starter: far more than a
# thread wake-up takes; a helper later than that is not waited for.
STARTED_WAIT = 0.05

Slice = tuple[int, int]


def plan(n: int, threads: int) -> list[Slice]:
    """How ``n`` subscribers are split: ``[start, stop)`` slices, each helper's starter in the
    order they are handed out, then the rest, which every thread writes (``write_shared``)."""
    size = round(n * min(STARTER, 0.5 / (threads + 1))) if threads else 0
    starters = [(k * size, (k + 1) * size) for k in range(threads) if size]
    return [*starters, (len(starters) * size, n)]


class Fanout:
    """A :attr:`Hub.fanout <ticker.feed.channels.Hub.fanout>` for large broadcasts: plain
    WebSocket connections get the frame from ``threads`` helpers and the loop thread: each
    helper a starter (:func:`plan`), then all of them the rest through one shared cursor
    (``threads`` may be 0: the loop thread alone, still in C)."""

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
        *starters, (start, stop) = plan(len(sinks), self.threads)
        pending = []
        for a, b in starters:
            conns, fds = self._direct(msg, sinks[a:b])
            assert self.pool is not None
            started = threading.Event()
            pending.append((conns, self.pool.submit(_write_started, started, frame, fds)))
            # The helper needs the GIL for a moment to reach write_all, and this thread,
            # busy in Python, would only give it up after the switch interval (5 ms).
            started.wait(STARTED_WAIT)
        conns, fds = self._direct(msg, sinks[start:stop])
        cursor = array("q", [0])
        if self.pool is not None and len(fds) > CHUNK:
            pending += [(conns, self.pool.submit(write_shared, frame, fds, cursor, CHUNK))
                        for _ in range(self.threads)]
        written = [(conns, write_shared(frame, fds, cursor, CHUNK))]
        written += [(conns, future.result()) for conns, future in pending]
        delivered = len(fds) + sum(len(part) for part, _ in pending[:len(starters)])
        for conns, short in written:
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
