"""Who a request comes from behind proxies: a table of peers and X-Forwarded-For headers."""

from __future__ import annotations

import re

import pytest

from ticker.web.clientaddr import client_address, parse_networks

PROXIES = parse_networks(["127.0.0.1", "10.0.0.0/8", "::1"])


@pytest.mark.parametrize(("peer", "header", "trusted", "expected"), [
    # no trusted proxies configured: the header is ignored, whoever sends it
    ("203.0.113.9", ["198.51.100.1"], (), "203.0.113.9"),
    ("127.0.0.1", ["198.51.100.1"], (), "127.0.0.1"),
    # an untrusted peer cannot choose its address by sending the header
    ("203.0.113.9", ["198.51.100.1"], PROXIES, "203.0.113.9"),
    # one trusted proxy: the address it appended
    ("127.0.0.1", ["198.51.100.1"], PROXIES, "198.51.100.1"),
    # a client that forges a left-most entry still gets its own address
    ("127.0.0.1", ["1.2.3.4, 198.51.100.1"], PROXIES, "198.51.100.1"),
    # two proxies (CDN then local): trusted hops are skipped from the right
    ("127.0.0.1", ["198.51.100.1, 10.1.2.3"], PROXIES, "198.51.100.1"),
    ("127.0.0.1", ["198.51.100.1", "10.1.2.3"], PROXIES, "198.51.100.1"),
    # garbage in the header is an untrusted hop, never an error
    ("127.0.0.1", ["not-an-ip"], PROXIES, "not-an-ip"),
    # a trusted peer without the header is itself the client
    ("127.0.0.1", [], PROXIES, "127.0.0.1"),
    ("::1", ["2001:db8::7"], PROXIES, "2001:db8::7"),
    # every hop trusted: the left-most one
    ("127.0.0.1", ["10.0.0.5, 10.0.0.6"], PROXIES, "10.0.0.5"),
    (None, [], PROXIES, "-"),
])
def test_the_client_is_the_right_most_address_no_trusted_proxy_added(
        peer: str | None, header: list[str], trusted: tuple[object, ...], expected: str) -> None:
    assert client_address(peer, header, trusted) == expected  # type: ignore[arg-type]


def test_a_bad_network_is_named() -> None:
    with pytest.raises(ValueError, match=re.escape("'10.0.0.300'")):
        parse_networks(["10.0.0.0/8", "10.0.0.300"])
