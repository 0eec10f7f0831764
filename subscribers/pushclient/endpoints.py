"""Which push endpoints the server may send to: the allow list and the address check.

A subscription names a URL the server will later POST to, so it must not become a way to
reach the server's own network (SSRF). Endpoints must be ``https`` on an allowed push-service
host whose addresses are all public; an allow-list entry written ``http://host:port`` also
admits plain HTTP to exactly that host and port (test stand-ins), and only that entry may
name a private address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from subscribers.errors import EndpointNotAllowed, InvalidSubscription
from ticker.errors import Unavailable
from ticker.net.addresses import is_public  # the platform's rule; importable from here too

__all__ = ["MAX_ENDPOINT_CHARS", "AllowList", "Resolver", "Target", "check_addresses",
           "check_endpoint", "is_public"]

MAX_ENDPOINT_CHARS = 2048

Resolver = Callable[[str, int], Awaitable[list[str]]]


@dataclass(frozen=True)
class AllowList:
    https_hosts: frozenset[str]
    https_suffixes: tuple[str, ...]  # from "*.example.com": ".example.com"
    http_exact: frozenset[tuple[str, int]]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        hosts: set[str] = set()
        suffixes: list[str] = []
        exact: set[tuple[str, int]] = set()
        for raw in entries:
            entry = raw.strip().lower()
            if entry.startswith("http://"):
                parts = urlsplit(entry)
                if not parts.hostname or parts.port is None:
                    raise ValueError(f"push_allowed_hosts: {raw!r} needs http://host:port")
                exact.add((parts.hostname, parts.port))
            elif entry.startswith("*."):
                suffixes.append(entry[1:])
            elif entry:
                hosts.add(entry.removeprefix("https://").rstrip("/"))
        return cls(frozenset(hosts), tuple(suffixes), frozenset(exact))

    def allows_https(self, host: str) -> bool:
        return host in self.https_hosts or any(
            host.endswith(s) and len(host) > len(s) for s in self.https_suffixes)


@dataclass(frozen=True)
class Target:
    """An endpoint that passed the allow list; ``resolve`` says its addresses need checking."""

    host: str
    port: int
    resolve: bool


def _refuse(message: str) -> EndpointNotAllowed:
    return EndpointNotAllowed(message)


def check_endpoint(endpoint: str, allow: AllowList) -> Target:
    """The endpoint's host and port if the allow list admits it; raises otherwise (pure)."""
    if len(endpoint) > MAX_ENDPOINT_CHARS:
        raise InvalidSubscription(
            f"'endpoint' must be at most {MAX_ENDPOINT_CHARS} characters.")
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        raise InvalidSubscription("'endpoint' is not a valid URL.") from None
    host = (parts.hostname or "").lower()
    if not host or parts.username is not None or parts.password is not None:
        raise InvalidSubscription("'endpoint' must be a URL with a host.")
    if parts.scheme == "http":
        if port is not None and (host, port) in allow.http_exact:
            return Target(host, port, resolve=False)
        raise _refuse("The push endpoint must use https.")
    if parts.scheme != "https":
        raise _refuse("The push endpoint must use https.")
    if port not in (None, 443) or not allow.allows_https(host):
        raise _refuse(f"{host!r} is not one of the push services this site sends to.")
    return Target(host, 443, resolve=True)


async def check_addresses(target: Target, resolve: Resolver) -> None:
    """Refuse a host that is, or resolves to, a non-public address."""
    if not target.resolve:
        return
    try:
        ipaddress.ip_address(target.host)
        addresses = [target.host]
    except ValueError:
        try:
            addresses = await resolve(target.host, target.port)
        except OSError:
            raise Unavailable(f"Could not resolve {target.host!r}; try again later.") from None
    if not addresses or not all(is_public(a) for a in addresses):
        raise _refuse(f"{target.host!r} resolves to a private or local address.")
