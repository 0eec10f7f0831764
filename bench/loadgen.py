"""A load-generating process: holds many feed connections and times every message.

Run by :mod:`bench.fanout` (``python -m bench.loadgen --url ws://… --count N``), one
process per share of the connections. It speaks to the coordinator in JSON lines: it
prints ``{"event": "ready", …}`` once every connection is open and subscribed, then
answers each ``report`` line on stdin with the samples gathered since the last one, and
exits on ``close`` (or end of input). ``hold`` makes it stop reading as frames arrive, and
each ``drain`` then reads whatever is waiting (see :meth:`LoadGen.hold`).

The WebSocket protocol is the ``websockets`` library's own (its sans-I/O
:class:`~websockets.client.ClientProtocol`); the I/O is ours, so that each read can ask
the kernel when the bytes reached the socket (``SO_TIMESTAMPNS``). Two latencies are kept
per message, both from the ``t`` (``time.time_ns()``) the publisher put in the data:

* ``arrival``: publish → the frame is in the client's socket. What the server and the
  network are responsible for; the load generator's own CPU time does not count.
* ``observed``: publish → this process has parsed the frame. Adds the time the load
  generator needs to reach that socket among thousands of others, on cores it shares
  with the server: on one machine it overstates what a real reader would see. With
  ``hold`` it also includes the wait for the next ``drain``, so it means nothing then.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import select
import socket
import struct
import sys
import time
from array import array
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import WebSocketURI, parse_uri

from bench.common import raise_nofile

# Linux: SO_TIMESTAMPNS (== SCM_TIMESTAMPNS) delivers a struct timespec (two longs) with
# each read. Python's socket module does not export the constant.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
ANCILLARY_BYTES = socket.CMSG_SPACE(struct.calcsize("@qq"))
RECV_BYTES = 256 * 1024
HANDSHAKE_TIMEOUT = 30.0


class Client:
    """One connection: a non-blocking socket and the websockets protocol state."""

    __slots__ = ("gen", "proto", "sock", "subscribed")

    def __init__(self, gen: LoadGen, sock: socket.socket, proto: ClientProtocol) -> None:
        self.gen = gen
        self.sock = sock
        self.proto = proto
        self.subscribed = False

    def on_readable(self) -> None:
        try:
            data, ancdata, _flags, _addr = self.sock.recvmsg(RECV_BYTES, ANCILLARY_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.gen.lost(self)
            return
        if not data:
            self.gen.lost(self)
            return
        arrival = 0
        for level, kind, raw in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("@qq", raw[:16])
                arrival = sec * 1_000_000_000 + nsec
        self.proto.receive_data(data)
        events = self.proto.events_received()
        last = len(events) - 1
        for i, event in enumerate(events):
            if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                # The kernel stamps a read with its last segment's arrival (and merges the
                # stamps of segments it coalesces), so only the read's last frame has its
                # own arrival time; an earlier one (e.g. a frame a held reader had not read
                # yet when the server's ping came) gets a later time than its own.
                self.gen.on_text(self, bytes(event.data), arrival or time.time_ns(),
                                 exact=i == last)
        self.flush()  # pongs to the server's pings, a close reply
        if self.proto.state is State.CLOSED:
            self.gen.lost(self)

    def flush(self) -> None:
        out = self.proto.data_to_send()
        if out:
            with contextlib.suppress(OSError):
                self.sock.send(b"".join(out))



def stamp(data: dict[str, Any]) -> tuple[int, int]:
    """``(t, seq)`` of a message: its own keys, or for an article (whose headline has a
    fixed shape) its guid, ``bench:<seq>:<t>`` (bench/servers.py ArticleServer)."""
    if "t" in data:
        return int(data["t"]), int(data["seq"])
    _, seq, sent = str(data["guid"]).split(":")
    return int(sent), int(seq)

class LoadGen:
    def __init__(self, url: str, channel: str) -> None:
        self.uri: WebSocketURI = parse_uri(url)
        self.subscribe = json.dumps({"type": "subscribe", "channels": [channel]})
        self.loop = asyncio.get_running_loop()
        self.clients: dict[Client, None] = {}
        self.failed = 0
        self.dropped = 0
        self.unsubscribed = 0
        self.all_subscribed = asyncio.Event()
        self.seq = array("i")
        self.arrival_us = array("q")
        self.observed_us = array("q")
        self.shared_seq = array("i")  # frames read together with a later one (see on_readable)
        self.shared_us = array("q")
        self.errors: dict[str, int] = {}
        self.poller: select.epoll | None = None
        self.by_fd: dict[int, Client] = {}

    async def open(self, sem: asyncio.Semaphore) -> None:
        async with sem:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            try:
                async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                    proto = await self._handshake(sock)
            except (OSError, TimeoutError, RuntimeError) as exc:
                sock.close()
                self.failed += 1
                key = type(exc).__name__
                self.errors[key] = self.errors.get(key, 0) + 1
                return
        client = Client(self, sock, proto)
        self.clients[client] = None
        self.unsubscribed += 1
        proto.send_text(self.subscribe.encode())
        client.flush()
        self.loop.add_reader(sock.fileno(), client.on_readable)

    async def _handshake(self, sock: socket.socket) -> ClientProtocol:
        await self.loop.sock_connect(sock, (self.uri.host, self.uri.port))
        proto = ClientProtocol(self.uri)
        proto.send_request(proto.connect())
        await self.loop.sock_sendall(sock, b"".join(proto.data_to_send()))
        while proto.state is State.CONNECTING:
            data = await self.loop.sock_recv(sock, RECV_BYTES)
            if not data:
                raise RuntimeError("closed during the handshake")
            proto.receive_data(data)
            for event in proto.events_received():
                if isinstance(event, Response) and event.status_code != 101:
                    raise RuntimeError(f"handshake refused: {event.status_code}")
        if proto.handshake_exc is not None:
            raise RuntimeError(str(proto.handshake_exc))
        return proto

    def on_text(self, client: Client, payload: bytes, arrival_ns: int,
                exact: bool = True) -> None:
        msg: dict[str, Any] = json.loads(payload)
        kind = msg.get("type")
        if kind == "message":
            data = msg["data"]
            observed_ns = time.time_ns()
            sent_ns, seq = stamp(data)
            if not exact:  # its arrival is only known to be before arrival_ns
                self.shared_seq.append(seq)
                self.shared_us.append((arrival_ns - sent_ns) // 1000)
                return
            self.seq.append(seq)
            self.arrival_us.append((arrival_ns - sent_ns) // 1000)
            self.observed_us.append((observed_ns - sent_ns) // 1000)
        elif kind == "subscribed" and not client.subscribed:
            client.subscribed = True
            self.unsubscribed -= 1
            if self.unsubscribed == 0:
                self.all_subscribed.set()

    def lost(self, client: Client) -> None:
        if client in self.clients:
            del self.clients[client]
            if self.poller is None:
                self.loop.remove_reader(client.sock.fileno())
            else:
                self.poller.unregister(client.sock.fileno())
            client.sock.close()
            self.dropped += 1
            if not client.subscribed:
                self.unsubscribed -= 1

    def take_samples(self) -> dict[str, Any]:
        out = {"seq": self.seq.tolist(), "arrival_us": self.arrival_us.tolist(),
               "observed_us": self.observed_us.tolist(), "shared_seq": self.shared_seq.tolist(),
               "shared_us": self.shared_us.tolist()}
        self.seq, self.arrival_us, self.observed_us = array("i"), array("q"), array("q")
        self.shared_seq, self.shared_us = array("i"), array("q")
        return out

    def hold(self) -> None:
        """From now on leave frames in the sockets until :meth:`drain` is asked for.

        Clients that read as frames arrive share this machine's cores with the server and
        make each of its ``send`` calls wake a reader; clients on other machines do
        neither. Holding emulates that: the kernel still timestamps each frame as it
        arrives (``SO_TIMESTAMPNS``), so the arrival latency stays exact.
        """
        self.poller = select.epoll()
        self.by_fd = {client.sock.fileno(): client for client in self.clients}
        for fd in self.by_fd:
            self.loop.remove_reader(fd)
            self.poller.register(fd, select.EPOLLIN)

    def drain(self) -> int:
        """Read every socket that has something to read; returns how many reads."""
        assert self.poller is not None, "drain without hold"
        reads = 0
        while events := self.poller.poll(0):
            for fd, _ in events:
                client = self.by_fd.get(fd)
                if client is not None and client in self.clients:
                    client.on_readable()
                    reads += 1
        return reads

    def close_all(self) -> None:
        # RST rather than FIN: no TIME_WAIT left behind to use up local ports between runs.
        linger = struct.pack("ii", 1, 0)
        for client in list(self.clients):
            if self.poller is None:
                self.loop.remove_reader(client.sock.fileno())
            with contextlib.suppress(OSError):
                client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            client.sock.close()
        self.clients.clear()


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def run(args: argparse.Namespace) -> int:
    raise_nofile()
    gen = LoadGen(args.url, args.channel)
    sem = asyncio.Semaphore(args.concurrency)
    started = time.perf_counter()
    await asyncio.gather(*(gen.open(sem) for _ in range(args.count)))
    connected_in = time.perf_counter() - started
    if gen.unsubscribed > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gen.all_subscribed.wait(), HANDSHAKE_TIMEOUT)
    emit({"event": "ready", "connected": len(gen.clients), "failed": gen.failed,
          "errors": gen.errors, "connect_seconds": connected_in,
          "ready_seconds": time.perf_counter() - started, "unsubscribed": gen.unsubscribed})
    while True:
        line = (await asyncio.to_thread(sys.stdin.readline)).strip()
        if line == "hold":
            gen.hold()
            emit({"event": "held"})
        elif line == "drain":
            emit({"event": "drained", "read": gen.drain()})
        elif line == "report":
            emit({"event": "report", "open": len(gen.clients), "dropped": gen.dropped,
                  **gen.take_samples()})
        else:
            break
    gen.close_all()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/ws")
    parser.add_argument("--count", type=int, required=True, help="connections to hold")
    parser.add_argument("--channel", default="headlines")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="handshakes in flight at once (the listen backlog is finite)")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
