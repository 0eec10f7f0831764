"""An aiohttp client that only reaches public addresses, at every connect and every redirect.

Three holes are closed, each where it can be closed for good:

* names: the connector's resolver refuses a name with any non-public address. The check is
  made when a connection is opened, so a name that resolved to a public address once and is
  later re-pointed inward (DNS rebinding) is still refused;
* literal addresses (``http://10.0.0.1/``): aiohttp never asks the resolver about them, so
  each URL's host is checked before it is requested;
* redirects: never followed by aiohttp; :meth:`PublicClient.get` follows at most
  :data:`MAX_REDIRECTS` of them itself, checking each ``Location`` as a new URL.

Origins in :class:`~ticker.net.addresses.Exempt` (``feeds_allow_private``) skip the
address check; exempting ``http://cms.intranet:8080`` does not exempt anything it redirects to.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from ticker.net.addresses import Exempt, is_ip_literal, is_public

MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "ticker/0.1 (+https://github.com/ticker)"
NO_EXEMPTIONS = Exempt()


class Refused(Exception):
    """The URL may not be fetched: a private address, a bad scheme, too many redirects."""


class TooLarge(Exception):
    """A document over the caller's byte cap (the message says by which measure)."""


CHUNK_BYTES = 64 * 1024


async def read_capped(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The body, refused (:class:`TooLarge`) as soon as it is over ``max_bytes``: by its
    Content-Length up front, else while it arrives (the header may be absent, chunked, or
    describe the compressed size), never buffering past the cap."""
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise TooLarge(f"Content-Length {resp.content_length} is over {max_bytes} bytes")
    parts: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"body is over {max_bytes} bytes")
        parts.append(chunk)
    return b"".join(parts)


class PrivateAddress(OSError):
    """Raised by the resolver (an OSError is what aiohttp expects of one)."""


class PublicResolver(AbstractResolver):
    """Resolves through aiohttp's default resolver, then refuses non-public answers."""

    def __init__(self, exempt: Exempt) -> None:
        self._exempt = exempt
        self._inner = aiohttp.DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        if self._exempt.allows(host, port):
            return answers
        if not answers or not all(is_public(a["host"]) for a in answers):
            raise PrivateAddress(f"{host!r} resolves to a private or local address; refused")
        return answers

    async def close(self) -> None:
        await self._inner.close()


def check_url(url: URL, exempt: Exempt) -> None:
    """Refuse what the resolver cannot see: a non-http(s) URL or a private literal address."""
    if url.scheme not in ("http", "https") or not url.host:
        raise Refused(f"only http(s) URLs may be fetched, not {str(url)[:100]!r}")
    port = url.port or (443 if url.scheme == "https" else 80)
    if exempt.allows(url.host, port):
        return
    if is_ip_literal(url.host) and not is_public(url.host):
        raise Refused(f"{url.host!r} is a private or local address; refused")


class PublicClient:
    """One aiohttp session for a node's outgoing fetches (feeds, data sources)."""

    def __init__(self, exempt: Exempt = NO_EXEMPTIONS, *, timeout: float = 30.0) -> None:
        self.exempt = exempt
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=PublicResolver(exempt)),
            timeout=aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 10.0)),
            headers={"User-Agent": USER_AGENT})

    @asynccontextmanager
    async def get(self, url: str, *, headers: Mapping[str, str] | None = None,
                  seconds: float | None = None) -> AsyncIterator[aiohttp.ClientResponse]:
        """The final (non-redirect) answer to GET ``url``; raises :class:`Refused` or
        aiohttp's errors. Request headers (validators) are sent to every hop; ``seconds``
        bounds each hop (the session's default otherwise)."""
        target = URL(url)
        extra: dict[str, Any] = {}
        if seconds is not None:
            extra["timeout"] = aiohttp.ClientTimeout(total=seconds)
        for _hop in range(MAX_REDIRECTS + 1):
            check_url(target, self.exempt)
            try:
                resp = await self.session.get(target, headers=dict(headers or {}),
                                              allow_redirects=False, **extra)
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, PrivateAddress):
                    raise Refused(str(exc.os_error)) from None
                raise
            location = resp.headers.get("Location")
            if resp.status in REDIRECTS and location:
                resp.release()
                target = resp.url.join(URL(location))
                continue
            try:
                yield resp
            finally:
                resp.release()
            return
        raise Refused(f"more than {MAX_REDIRECTS} redirects from {url[:100]!r}")

    async def close(self) -> None:
        await self.session.close()
