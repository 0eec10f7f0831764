"""Which addresses outbound requests may reach: public ones, and origins exempted by name.

A URL the server fetches because someone configured or submitted it (a feed, a data source,
a push endpoint) must not become a way into the server's own network (SSRF). Only globally
routable unicast addresses pass; an operator may exempt exact ``http://host:port`` origins
(test stand-ins, an intranet CMS) with ``feeds_allow_private``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit


def is_public(address: str) -> bool:
    """True for a globally routable unicast address (not private, loopback, link-local...)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(ip.is_global) and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
        or ip.is_reserved or ip.is_unspecified)


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def parse_origin(entry: str) -> tuple[str, int]:
    """``http://host:port`` -> ``(host, port)``; raises ValueError for anything else."""
    text = entry.strip().lower()
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if (parts.scheme not in ("http", "https") or not parts.hostname or port is None
            or parts.path not in ("", "/") or parts.query or parts.username):
        raise ValueError(f"{entry!r} is not an exact origin: write scheme://host:port")
    return parts.hostname, port


@dataclass(frozen=True)
class Exempt:
    """Exact ``(host, port)`` pairs that may be private (``feeds_allow_private``)."""

    origins: frozenset[tuple[str, int]] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Exempt:
        return cls(frozenset(parse_origin(e) for e in entries if e.strip()))

    def allows(self, host: str, port: int) -> bool:
        return (host.lower().strip("[]"), port) in self.origins
