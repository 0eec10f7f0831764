"""A small HTTP/1.1 keep-alive client for the push sender, on asyncio Protocols.

Why not aiohttp's client: a push is a ~300-byte POST answered by an empty 201, and the
benchmark (bench/README.md, "Push throughput") measured aiohttp's request machinery at
about 125 µs of CPU per request, twice the encryption. This client does only what the
sender needs, with the protocol itself in :mod:`subscribers.pushclient.http11` (no I/O):

* a pool of persistent connections per push-service origin, at most
  ``connections_per_host`` per origin and ``connections`` in all; one request at a time
  per connection (no pipelining); idle connections are dropped after
  :data:`IDLE_TIMEOUT` or when the service closes them;
* one deadline per request (connect, send and answer), and a separate connect timeout;
* TLS through an :class:`ssl.SSLContext` (certificate and host name verified) for https;
* names resolved through the event loop and cached for :data:`DNS_TTL`; every address,
  including a literal one, must be public unless the host is an allowed stand-in, and
  the check is made at every connect, so a name that passed validation cannot later be
  re-pointed (DNS rebinding) at an address inside our network.

Like aiohttp, it never resends a request by itself: a connection that fails is an error
for the caller (the outcome policy decides about retrying).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

from subscribers.pushclient.endpoints import is_public
from subscribers.pushclient.http11 import ProtocolError, Response, ResponseParser, encode_request

IDLE_TIMEOUT = 15.0  # seconds; below the usual server keep-alive, so we close first
DNS_TTL = 300.0


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str  # without brackets for IPv6
    port: int
    authority: str  # the Host header: as written in the URL


def split_url(url: str) -> tuple[Origin, str]:
    """``(origin, request target)`` of an http(s) URL; raises ValueError otherwise."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url[:80]!r}")
    authority, _, path = rest.partition("/")
    authority = authority.split("#", 1)[0].split("?", 1)[0]
    target = "/" + path.split("#", 1)[0]
    if "@" in authority or not authority:
        raise ValueError("a push endpoint has a plain host")
    if authority.startswith("["):
        host, _, port_text = authority[1:].partition("]")
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = authority.partition(":")
    port = int(port_text) if port_text else (443 if scheme == "https" else 80)
    if not host or not 0 < port < 65536:
        raise ValueError(f"bad host or port in {url[:80]!r}")
    return Origin(scheme, host.lower(), port, authority), target


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; at most one request outstanding."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_body: int) -> None:
        self._loop = loop
        self._max_body = max_body
        self.transport: asyncio.Transport | None = None
        self._parser: ResponseParser | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self.idle_since = 0.0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def send(self, data: bytes) -> asyncio.Future[Response]:
        assert self.transport is not None and self._waiter is None
        self._parser = ResponseParser(self._max_body)
        self._waiter = waiter = self._loop.create_future()
        self.transport.write(data)
        return waiter

    def data_received(self, data: bytes) -> None:
        if self._parser is None:
            self._fail(ProtocolError("data while no request was outstanding"))
            return
        try:
            response = self._parser.feed(data)
        except ProtocolError as exc:
            self._fail(exc)
            return
        if response is not None:
            self._finish(response)

    def eof_received(self) -> bool:
        if self._parser is not None:
            try:
                self._finish(self._parser.eof())
            except ProtocolError as exc:
                self._fail(exc)
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionResetError("push service closed the connection"))

    def timed_out(self) -> None:
        self._fail(TimeoutError("no answer from the push service in time"))

    def _finish(self, response: Response) -> None:
        waiter, self._waiter, self._parser = self._waiter, None, None
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def _fail(self, exc: BaseException) -> None:
        waiter, self._waiter, self._parser = self._waiter, None, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.abort()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


@dataclass
class _Pool:
    slots: asyncio.Semaphore
    idle: list[_Connection] = field(default_factory=list)

    def take(self, now: float) -> _Connection | None:
        while self.idle:
            conn = self.idle.pop()  # most recently used: least likely to be stale
            if not conn.closed and now - conn.idle_since < IDLE_TIMEOUT:
                return conn
            conn.abort()
        return None


class HttpClient:
    def __init__(self, *, connections_per_host: int, connections: int,
                 allowed_private_hosts: frozenset[str] = frozenset(), timeout: float = 30.0,
                 connect_timeout: float = 10.0, max_body: int = 2048,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._per_host = connections_per_host
        self._slots = asyncio.Semaphore(connections)
        self._allowed = allowed_private_hosts
        self._timeout = timeout
        self._connect_timeout = min(connect_timeout, timeout)
        self._max_body = max_body
        self._ssl = ssl_context
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self._origins: dict[str, Origin] = {}  # scheme://authority -> parsed
        self._dns: dict[tuple[str, int], tuple[list[str], float]] = {}
        self._closed = False

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> Response:
        """POST and read the answer; raises OSError, TimeoutError, ProtocolError, ValueError."""
        if self._closed:
            raise ConnectionError("client closed")
        origin, target = self._split(url)
        data = encode_request("POST", target, origin.authority, headers, body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        key = (origin.scheme, origin.host, origin.port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool(asyncio.Semaphore(self._per_host))
        async with self._slots, pool.slots:
            conn = pool.take(loop.time()) or await self._connect(loop, origin, deadline)
            timer = loop.call_at(deadline, conn.timed_out)
            try:
                response = await conn.send(data)
            except BaseException:
                conn.abort()  # cancelled or failed mid-request: the connection is unusable
                raise
            finally:
                timer.cancel()
            if response.keep_alive and not conn.closed and not self._closed:
                conn.idle_since = loop.time()
                pool.idle.append(conn)
            else:
                conn.abort()
            return response

    async def close(self) -> None:
        self._closed = True
        for pool in self._pools.values():
            for conn in pool.idle:
                conn.abort()
            pool.idle.clear()

    def _split(self, url: str) -> tuple[Origin, str]:
        # The origin is parsed once per push service, not once per message.
        scheme, _, rest = url.partition("://")
        authority = rest.partition("/")[0]
        prefix = f"{scheme}://{authority}"
        origin = self._origins.get(prefix)
        if origin is None:
            origin, _ = split_url(url)
            if len(self._origins) < 1024:
                self._origins[prefix] = origin
        return origin, url[len(prefix):].split("#", 1)[0] or "/"

    async def _connect(self, loop: asyncio.AbstractEventLoop, origin: Origin,
                       deadline: float) -> _Connection:
        addresses = await self._addresses(loop, origin)
        tls = origin.scheme == "https"
        context = (self._ssl or ssl.create_default_context()) if tls else None
        if tls and self._ssl is None:
            self._ssl = context
        error: Exception = OSError(f"could not connect to {origin.authority}")
        for address in addresses:
            wait = min(self._connect_timeout, deadline - loop.time())
            if wait <= 0:
                raise TimeoutError(f"connecting to {origin.authority} took too long")
            try:
                _, conn = await asyncio.wait_for(loop.create_connection(
                    lambda: _Connection(loop, self._max_body), address, origin.port,
                    ssl=context, server_hostname=origin.host if tls else None), wait)
                return conn
            except (OSError, TimeoutError) as exc:
                error = exc
        raise error

    async def _addresses(self, loop: asyncio.AbstractEventLoop, origin: Origin) -> list[str]:
        key = (origin.host, origin.port)
        hit = self._dns.get(key)
        now = loop.time()
        if hit is not None and hit[1] > now:
            return hit[0]
        try:
            ipaddress.ip_address(origin.host)
            found = [origin.host]
        except ValueError:
            infos = await loop.getaddrinfo(origin.host, origin.port, type=socket.SOCK_STREAM)
            found = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if origin.host not in self._allowed:
            found = [a for a in found if is_public(a)]
            if not found:
                raise OSError(f"{origin.host} resolves to no public address")
        self._dns[key] = (found, now + DNS_TTL)
        return found
