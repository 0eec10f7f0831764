"""The kernel's share: CPU per frame of a bare ``socket.send`` loop over loopback TCP.

A calibration, not a server: N connected loopback sockets whose other ends a child
process reads with epoll (as a load generator does), and a plain loop sending one small
frame to each, TCP_NODELAY as aiohttp sets it. On loopback the sender's ``send`` also
runs the receiver's TCP input path and wakes the reader, so this is the least CPU per
delivered frame any server on this machine can spend, before any Python of its own.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import time

FRAME = b"\x81\x7e\x00\xb4" + b"x" * 180  # about the size of a fan-out message


def _reader(addr: tuple[str, int], n: int, ready_fd: int, seconds: float) -> None:
    clients = [socket.create_connection(addr) for _ in range(n)]
    os.write(ready_fd, b"x")
    poller = select.epoll()
    by_fd = {c.fileno(): c for c in clients}
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for fd, _ in poller.poll(0.5):
            by_fd[fd].recv(65536)


def send_floor_us(n: int = 1000, rounds: int = 40, gap: float = 0.02) -> float:
    """Sender CPU µs per frame (user + system, this thread) for ``n * rounds`` sends."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    addr = listener.getsockname()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            _reader(addr, n, ready_w, seconds=rounds * gap + 30)
        finally:
            os._exit(0)
    try:
        servers = [listener.accept()[0] for _ in range(n)]
        os.read(ready_r, 1)
        for s in servers:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        time.sleep(0.2)
        used = 0
        for _ in range(rounds):
            started = time.thread_time_ns()
            for s in servers:
                s.send(FRAME)
            used += time.thread_time_ns() - started
            time.sleep(gap)  # let the reader drain: each send is one segment, one wake-up
        for s in servers:
            s.close()
        return used / 1000 / (n * rounds)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready_r)
        os.close(ready_w)
        listener.close()


if __name__ == "__main__":
    print(f"{send_floor_us():.2f} µs per frame")
