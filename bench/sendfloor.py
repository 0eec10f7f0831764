"""The kernel's share: what a bare ``socket.send`` loop costs over loopback TCP.

A calibration, not a server: N connected loopback sockets whose other ends a child process
holds, and plain loops sending one small frame to each (TCP_NODELAY, as aiohttp sets it),
split over K sender processes. On loopback the sender's ``send`` also runs the receiver's
TCP input path (and its ACK), so this is the least any server written on this machine can
spend, before any Python of its own:

* **CPU per frame** (K = 1): the least server CPU per delivered frame;
* **wall time per broadcast** (K = 1, 2, …): the earliest moment the last of N clients
  can have a broadcast, so the best p99 any server can reach here with K cores sending.

The reader either holds the frames (reads nothing until the end, like the fan-out
benchmark's load generators between drains) or reads each one as it arrives with epoll
(``--eager``), which adds a wake-up per frame to the sender's bill.

``python -m bench.sendfloor [--n 10000] [--senders 1,2] [--eager]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import socket
import statistics
import sys
import time
from dataclasses import dataclass

FRAME = b"\x81\x7e\x00\xb4" + b"x" * 180  # about the size of a fan-out message
ROUNDS = 8
GAP_SECONDS = 0.25


@dataclass
class Floor:
    n: int
    senders: int
    eager: bool
    cpu_us_per_frame: float  # median over rounds, summed over the senders
    wall_ms: list[float]  # per round: from "go" until the slowest sender finished

    @property
    def wall_ms_median(self) -> float:
        return statistics.median(self.wall_ms)


def _reader(addr: tuple[str, int], n: int, ready_fd: int, eager: bool) -> None:
    clients = [socket.create_connection(addr) for _ in range(n)]
    os.write(ready_fd, b"x")
    if not eager:
        signal.pause()  # hold every frame: the parent kills this process at the end
    poller = select.epoll()
    by_fd = {c.fileno(): c for c in clients}
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    while True:
        for fd, _ in poller.poll():
            by_fd[fd].recv(65536)


def _sender(socks: list[socket.socket], go_fd: int, out_fd: int, rounds: int) -> None:
    for _ in range(rounds):
        os.read(go_fd, 1)
        cpu = time.thread_time_ns()
        for s in socks:
            s.send(FRAME)
        # One line per round: CPU ns used and the monotonic ns it finished at.
        os.write(out_fd, f"{time.thread_time_ns() - cpu} {time.monotonic_ns()}\n".encode())


def measure(n: int, senders: int = 1, eager: bool = False, rounds: int = ROUNDS) -> Floor:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(min(n, 65535))
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    children: list[int] = []
    reader = os.fork()
    if reader == 0:  # pragma: no cover - the child
        try:
            _reader(listener.getsockname(), n, ready_w, eager)
        finally:
            os._exit(0)
    children.append(reader)
    try:
        socks = [listener.accept()[0] for _ in range(n)]
        os.read(ready_r, 1)
        for s in socks:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for k in range(senders):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                try:
                    _sender(socks[k::senders], go_r, out_w, rounds)
                finally:
                    os._exit(0)
            children.append(pid)
        time.sleep(0.3)
        lines = []
        walls = []
        with os.fdopen(out_r, "r", closefd=False) as results:
            for _ in range(rounds):
                started = time.monotonic_ns()
                os.write(go_w, b"x" * senders)
                done = [results.readline().split() for _ in range(senders)]
                lines.append(sum(int(cpu) for cpu, _ in done))
                walls.append((max(int(end) for _, end in done) - started) / 1e6)
                time.sleep(GAP_SECONDS)
        return Floor(n, senders, eager, statistics.median(lines) / 1000 / n, walls)
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        for fd in (ready_r, ready_w, go_r, go_w, out_r, out_w):
            os.close(fd)
        listener.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="connections (default 10,000)")
    parser.add_argument("--senders", default="1,2",
                        help="comma-separated sender process counts (default 1,2)")
    parser.add_argument("--eager", action="store_true",
                        help="the reader reads each frame as it arrives (epoll)")
    args = parser.parse_args(argv)
    from bench.common import raise_nofile

    raise_nofile()
    print(f"{'senders':>7} {'N':>7} {'CPU µs/frame':>13} {'wall ms/broadcast (median, max)':>32}")
    for k in (int(v) for v in args.senders.split(",")):
        floor = measure(args.n, k, args.eager)
        print(f"{k:>7} {args.n:>7,} {floor.cpu_us_per_frame:>13.2f} "
              f"{floor.wall_ms_median:>20.1f}, {max(floor.wall_ms):.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
