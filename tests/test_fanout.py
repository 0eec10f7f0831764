"""The writer threads' part of a broadcast (``write_all``, in C and in Python), on real
sockets. The whole broadcast path runs in tests/test_feed_server.py (``WRITERS``)."""

from __future__ import annotations

import importlib.util
import os
import socket
from array import array
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support import need
from ticker.feed import fanout
from ticker.feed.channels import Message
from ticker.feed.fanout import Fanout, plan
from ticker.metrics import Metrics

FRAME = b"\x81\x05hello"
WriteAll = Callable[[bytes, "array[int]"], list[tuple[int, int]]]
WriteShared = Callable[[bytes, "array[int]", "array[int]", int], list[tuple[int, int]]]


def implementations() -> list[object]:
    found: list[object] = [pytest.param(fanout.py_write_all, id="python")]
    if importlib.util.find_spec("ticker.feed._fanout") is not None:
        from ticker.feed._fanout import write_all

        found.append(pytest.param(write_all, id="c"))
    return found


def test_the_c_loop_is_built() -> None:
    need(importlib.util.find_spec("ticker.feed._fanout") is not None,
         "ticker.feed._fanout was not built (no C compiler?): broadcasts use the Python loop")
    assert fanout.write_all is not fanout.py_write_all


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made = [socket.socketpair() for _ in range(4)]
    for ours, _theirs in made:
        ours.setblocking(False)
    yield made
    for ours, theirs in made:
        ours.close()
        theirs.close()


def fill(sock: socket.socket) -> None:
    """Write until the kernel takes no more: the peer has stopped reading."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    while True:
        try:
            sock.send(b"x" * 65536)
        except BlockingIOError:
            return


@pytest.mark.parametrize("write_all", implementations())
def test_every_socket_that_takes_the_whole_frame_is_left_out_of_the_result(
    pairs: list[tuple[socket.socket, socket.socket]], write_all: WriteAll,
) -> None:
    assert write_all(FRAME, array("i", [ours.fileno() for ours, _ in pairs])) == []
    for _, theirs in pairs:
        assert theirs.recv(100) == FRAME


@pytest.mark.parametrize("write_all", implementations())
def test_full_closed_and_invalid_sockets_are_reported_for_the_loop_thread(
    pairs: list[tuple[socket.socket, socket.socket]], write_all: WriteAll,
) -> None:
    (ok, ok_peer), (full, _), (gone, gone_peer), _ = pairs
    fill(full)
    gone_peer.close()
    closed_fd = os.dup(ok.fileno())
    os.close(closed_fd)
    fds = array("i", [ok.fileno(), full.fileno(), gone.fileno(), closed_fd])
    # full: nothing taken (0 bytes sent, the rest is queued by the loop thread); gone and a
    # descriptor that is no longer open: -1 (the loop thread drops the connection)
    assert write_all(FRAME, fds) == [(1, 0), (2, -1), (3, -1)]
    assert ok_peer.recv(100) == FRAME


@pytest.mark.parametrize("write_all", implementations())
def test_a_share_with_no_sockets_writes_nothing(write_all: WriteAll) -> None:
    assert write_all(FRAME, array("i")) == []


def shared_implementations() -> list[object]:
    found: list[object] = [pytest.param(fanout.py_write_shared, id="python")]
    if importlib.util.find_spec("ticker.feed._fanout") is not None:
        from ticker.feed._fanout import write_shared

        found.append(pytest.param(write_shared, id="c"))
    return found


@pytest.mark.parametrize("write_shared", shared_implementations())
def test_threads_sharing_a_cursor_write_every_socket_exactly_once(
    write_shared: WriteShared,
) -> None:
    made = [socket.socketpair() for _ in range(200)]
    try:
        for ours, _ in made:
            ours.setblocking(False)
        fds = array("i", [ours.fileno() for ours, _ in made])
        fds[150] = -1  # a bad descriptor keeps its index in the shared array
        cursor = array("q", [0])
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(lambda _: write_shared(FRAME, fds, cursor, 7), range(3)))
        assert sorted(short for result in results for short in result) == [(150, -1)]
        for k, (_, theirs) in enumerate(made):
            if k != 150:
                theirs.setblocking(False)
                assert theirs.recv(100) == FRAME
        assert cursor[0] >= len(fds)
    finally:
        for ours, theirs in made:
            ours.close()
            theirs.close()


@pytest.mark.parametrize("write_shared", shared_implementations())
def test_a_shared_write_starts_at_the_cursor(
    pairs: list[tuple[socket.socket, socket.socket]], write_shared: WriteShared,
) -> None:
    fds = array("i", [ours.fileno() for ours, _ in pairs])
    assert write_shared(FRAME, fds, array("q", [2]), 1) == []
    for k, (_, theirs) in enumerate(pairs):
        theirs.setblocking(False)
        if k < 2:
            with pytest.raises(BlockingIOError):
                theirs.recv(100)
        else:
            assert theirs.recv(100) == FRAME


def test_a_shared_write_refuses_a_cursor_that_is_not_one_int64() -> None:
    need(importlib.util.find_spec("ticker.feed._fanout") is not None, "C loop not built")
    from ticker.feed._fanout import write_shared

    with pytest.raises(ValueError, match="cursor"):
        write_shared(FRAME, array("i"), array("i", [0]), 1)
    with pytest.raises(ValueError, match="chunk"):
        write_shared(FRAME, array("i"), array("q", [0]), 0)


@pytest.mark.parametrize(("n", "threads", "expected"), [
    (1000, 0, [(0, 1000)]),
    # one helper: a starter to begin on while the rest is checked, then the shared rest
    (1000, 1, [(0, 120), (120, 1000)]),
    (10000, 3, [(0, 1200), (1200, 2400), (2400, 3600), (3600, 10000)]),
    # many helpers: the starters together stay within half of the subscribers
    (1000, 7, [(0, 62), (62, 124), (124, 186), (186, 248), (248, 310), (310, 372),
               (372, 434), (434, 1000)]),
    (3, 2, [(0, 3)]),
])
def test_the_plan_hands_each_helper_a_starter_and_leaves_the_rest_to_share(
        n: int, threads: int, expected: list[tuple[int, int]]) -> None:
    assert plan(n, threads) == expected


@pytest.mark.parametrize("threads", [0, 1, 2, 3, 7])
@pytest.mark.parametrize("n", [1, 2, 999, 1000, 10_001])
def test_the_plan_covers_every_subscriber_exactly_once(n: int, threads: int) -> None:
    covered = [i for start, stop in plan(n, threads) for i in range(start, stop)]
    assert sorted(covered) == list(range(n))


class Buffered:
    """What a broadcast reads of a transport: here, one that is open and has nothing queued."""

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


class SocketSink:
    """Any sink that offers a socket (``fd`` >= 0) is written to directly, WebSocket or not."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.closed = False
        self.transport = Buffered()
        self.delivered: list[Message] = []
        self.finished: list[tuple[bytes, int]] = []

    def deliver(self, msg: Message) -> None:
        self.delivered.append(msg)

    def finish_direct(self, frame: bytes, sent: int) -> None:
        self.finished.append((frame, sent))


@pytest.mark.parametrize("threads", [0, 1])
def test_the_fanout_writes_the_frame_to_every_sink_offering_a_socket_and_delivers_to_the_rest(
    pairs: list[tuple[socket.socket, socket.socket]], threads: int,
) -> None:
    (a, a_peer), (b, b_peer), (full, _), _ = pairs
    fill(full)
    a_peer.settimeout(1)
    b_peer.settimeout(1)
    direct = [SocketSink(a.fileno()), SocketSink(b.fileno())]
    backed_up = SocketSink(full.fileno())
    no_socket, closed = SocketSink(-1), SocketSink(a.fileno())  # e.g. SSE; a closed one
    closed.closed = True
    msg = Message("headlines", "e1", 1, {"title": "x"}, 0.0)
    fan = Fanout(threads, Metrics(), min_sinks=1)
    try:
        fan(msg, [*direct, backed_up, no_socket, closed])
    finally:
        fan.close()
    assert a_peer.recv(1000) == b_peer.recv(1000) == msg.ws_frame
    assert all(s.delivered == [] and s.finished == [] for s in direct)
    assert backed_up.finished == [(msg.ws_frame, 0)]  # the loop thread queues the rest
    assert no_socket.delivered == [msg] and closed.delivered == [msg]
