"""Which address a request comes from, when proxies may stand in between (no I/O).

Behind a reverse proxy every request arrives from the proxy's address, so a per-client
limit would throttle everyone together. ``X-Forwarded-For`` names the real client, but
anyone can send that header: it is believed only from peers in ``trusted`` networks, and
read from the right, skipping trusted hops, so the first address not ours is the client's
(left-most entries are whatever the client chose to write).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``"10.0.0.0/8"``, ``"127.0.0.1"``, ``"::1"`` → networks; ValueError names a bad one."""
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return tuple(out)


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_address(peer: str | None, forwarded_for: Sequence[str],
                   trusted: Sequence[Network]) -> str:
    """The client's address: ``peer`` unless it is a trusted proxy, in which case the
    right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy (or, when every
    entry is trusted, the left-most one). ``forwarded_for`` holds the header's values."""
    if peer is None or not _trusted(peer, trusted):
        return peer or "-"
    hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def request_scheme(peer: str | None, scheme: str, forwarded_proto: Sequence[str],
                   trusted: Sequence[Network]) -> str:
    """``http`` or ``https`` as the client used it: the socket's ``scheme``, unless the
    peer is a trusted proxy that says otherwise in ``X-Forwarded-Proto`` (its first value:
    the proxy nearest the client wrote it)."""
    if peer is None or not _trusted(peer, trusted):
        return scheme
    values = [v.strip().lower() for value in forwarded_proto for v in value.split(",")]
    return values[0] if values and values[0] in ("http", "https") else scheme
