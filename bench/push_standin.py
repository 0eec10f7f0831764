"""A lean push-service stand-in for the throughput benchmark, in its own process.

``python -m bench.push_standin --port P``. It answers every ``POST`` with ``201 Created``
at once, without checking VAPID or decrypting (``subscribers.testing`` does that, for the
tests; here the point is to cost the sender as little as possible on a shared machine).
It is raw asyncio: a few microseconds per request, so it does not skew the sender's rate.

Control, on the same port: ``GET /stats`` answers JSON ``{"requests", "first_ns",
"last_ns", "connections", "bytes"}`` counted since the last ``POST /reset`` (times are
``time.time_ns()`` when a request's head arrived), and ``POST /reset`` zeroes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

CREATED = (b"HTTP/1.1 201 Created\r\nLocation: /m/1\r\nContent-Length: 0\r\n"
           b"Connection: keep-alive\r\n\r\n")


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.first_ns = 0
        self.last_ns = 0
        self.connections = 0
        self.bytes = 0

    def as_json(self) -> bytes:
        return json.dumps({"requests": self.requests, "first_ns": self.first_ns,
                           "last_ns": self.last_ns, "connections": self.connections,
                           "bytes": self.bytes}).encode()


STATS = Stats()


def _reply(status: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.skip = 0  # body bytes of the current request still to come

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        STATS.connections += 1

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        out = []
        while buf:
            if self.skip:
                n = min(self.skip, len(buf))
                self.skip -= n
                buf = buf[n:]
                continue
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head, buf = buf[:end], buf[end + 4:]
            length = 0
            at = head.lower().find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17:stop if stop > 0 else len(head)])
            self.skip = length
            out.append(self._answer(head))
        self.buf = buf
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    @staticmethod
    def _answer(head: bytes) -> bytes:
        if head.startswith(b"POST /push/"):
            now = time.time_ns()
            if not STATS.requests:
                STATS.first_ns = now
            STATS.requests += 1
            STATS.last_ns = now
            STATS.bytes += len(head)
            return CREATED
        if head.startswith(b"GET /stats"):
            return _reply("200 OK", STATS.as_json())
        if head.startswith(b"POST /reset"):
            STATS.reset()
            return _reply("200 OK", b"{}")
        return _reply("404 Not Found", b"{}")


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Connection, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
