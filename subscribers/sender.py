"""The HTTP side of a push: one shared client session, one POST, the answer as values.

Connections are pooled per push-service host (``limit_per_host``) so a 100,000-reader alert
rides a few dozen keep-alive connections. Names are resolved through
:class:`PublicOnlyResolver`, so a host that passed validation cannot later be re-pointed
(DNS rebinding) at an address inside our network.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from subscribers.endpoints import is_public

LOG_BODY_CHARS = 500


class PublicOnlyResolver(AbstractResolver):
    """Resolves like aiohttp does, then drops every non-public address.

    ``allowed`` names hosts that may resolve privately (``http://host:port`` allow-list
    entries, i.e. test stand-ins).
    """

    def __init__(self, allowed: frozenset[str] = frozenset()) -> None:
        self._inner = DefaultResolver()
        self._allowed = allowed

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if host in self._allowed:
            return results
        public = [r for r in results if is_public(r["host"])]
        if not public:
            raise OSError(f"{host} resolves to no public address")
        return public

    async def close(self) -> None:
        await self._inner.close()


def make_session(connections_per_host: int, connections: int,
                 allowed_private_hosts: frozenset[str] = frozenset(),
                 timeout: float = 30.0) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=connections, limit_per_host=connections_per_host,
        resolver=PublicOnlyResolver(allowed_private_hosts), ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout, connect=min(10.0, timeout)),
        skip_auto_headers=("User-Agent",), auto_decompress=False)


@dataclass(frozen=True)
class Reply:
    """A push service's answer; ``status`` None means no answer (timeout, connection)."""

    status: int | None
    retry_after: str | None = None
    text: str = ""


class Sender:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> Reply:
        try:
            async with self._session.post(url, data=body, headers=headers,
                                          allow_redirects=False) as resp:
                # Reading the (small) body lets the connection go back to the pool.
                raw = await resp.content.read(64 * 1024)
                return Reply(resp.status, resp.headers.get("Retry-After"),
                             raw[:LOG_BODY_CHARS].decode("utf-8", "replace"))
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return Reply(None, None, f"{type(exc).__name__}: {exc}"[:LOG_BODY_CHARS])
