"""The writer threads' part of a broadcast (``ticker.fanout.write_all``), on real sockets."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from ticker.fanout import write_all

FRAME = b"\x81\x05hello"


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


def test_every_socket_that_takes_the_whole_frame_is_left_out_of_the_result(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    assert write_all(FRAME, [ours.fileno() for ours, _ in pairs]) == []
    for _, theirs in pairs:
        assert theirs.recv(100) == FRAME


def test_full_closed_and_invalid_sockets_are_reported_for_the_loop_thread(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    (ok, ok_peer), (full, _), (gone, gone_peer), _ = pairs
    fill(full)
    gone_peer.close()
    closed_fd = os.dup(ok.fileno())
    os.close(closed_fd)
    fds = [ok.fileno(), full.fileno(), gone.fileno(), closed_fd]
    # full: nothing taken (0 bytes sent, the rest is queued by the loop thread); gone and a
    # descriptor that is no longer open: -1 (the loop thread drops the connection)
    assert write_all(FRAME, fds) == [(1, 0), (2, -1), (3, -1)]
    assert ok_peer.recv(100) == FRAME
