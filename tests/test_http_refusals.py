"""Requests aiohttp cannot parse (oversize request line or header, a NUL in a header) are
refused with the JSON error table and one rate-limited log line, never a traceback, against a
real ``ticker serve`` process over raw sockets."""

from __future__ import annotations

import json
import logging
import socket

import pytest

from tests.support import ServerProcess
from ticker.errors import ApiError
from ticker.web.server import Refusals

BIG = "a" * 9000


def raw_request(port: int, head: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` as is; return the status, the headers and the body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    top, _, body = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


REFUSED = {
    "oversize-header": (f"GET /sse?channels=clock HTTP/1.1\r\nHost: t\r\nX-Big: {BIG}\r\n\r\n",
                        431, "header_too_large"),
    "oversize-query": (f"GET /sse?channels=clock&x={BIG} HTTP/1.1\r\nHost: t\r\n\r\n",
                       414, "uri_too_long"),
    "nul-in-header": ("GET /sse?channels=clock HTTP/1.1\r\nHost: t\r\nX-Nul: a\x00b\r\n\r\n",
                      400, "invalid_request"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_an_unparseable_request_gets_a_json_error(server: ServerProcess, case: str) -> None:
    head, status, code = REFUSED[case]
    got, headers, body = raw_request(server.port, head.encode("latin-1"))
    assert got == status
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"]
    assert BIG not in error["message"]  # the refusal does not echo what it refused


def test_twenty_refusals_write_at_most_one_log_line_and_no_traceback(
    server: ServerProcess,
) -> None:
    before = len(server.log().splitlines())
    for n in range(20):
        head, status, _code = list(REFUSED.values())[n % len(REFUSED)]
        assert raw_request(server.port, head.encode("latin-1"))[0] == status
    # (the access line of the start-up health check may land late: it is not ours)
    new = [line for line in server.log().splitlines()[before:] if "GET /healthz" not in line]
    assert len(new) <= 1, new
    assert "Traceback" not in server.log()
    assert all(json.loads(line)["level"] == "warning" for line in new)
    # still serving
    assert raw_request(server.port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close"
                                    b"\r\n\r\n")[0] == 200


def test_refusals_log_one_line_per_interval_with_the_count_in_between(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    refusals = Refusals(logging.getLogger("test.refusals"), interval=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "test.refusals"):
        for t in (0, 1, 2, 9.9, 10, 10.5, 25):
            now[0] = t
            refusals.note(ApiError("header_too_large"), "192.0.2.1")
    assert [getattr(r, "suppressed", None) for r in caplog.records] == [0, 3, 1]
