"""The push sender's HTTP/1.1 client: the response parser as a table of byte streams (no
sockets), then the client against a real raw socket server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from subscribers.pushclient.client import HttpClient, split_url
from subscribers.pushclient.http11 import ProtocolError, Response, ResponseParser, encode_request


def parse(chunks: list[bytes], *, max_body: int = 64, eof: bool = False) -> Response | None:
    parser = ResponseParser(max_body)
    for chunk in chunks:
        got = parser.feed(chunk)
        if got is not None:
            return got
    return parser.eof() if eof else None


@pytest.mark.parametrize(("chunks", "eof", "expected"), [
    ([b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"], False,
     Response(201, None, b"", True)),
    ([b"HTTP/1.1 429 Too", b" Many\r\nRetry-After: 120\r\nContent-Len", b"gth: 4\r\n\r\nsl",
      b"ow"], False, Response(429, "120", b"slow", True)),
    ([b"HTTP/1.1 410 Gone\r\nTransfer-Encoding: chunked\r\n\r\n4;x=1\r\ngone\r\n",
      b"3\r\n!!!\r\n0\r\nTrailer: t\r\n\r\n"], False, Response(410, None, b"gone!!!", True)),
    ([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"],
     False, Response(201, None, b"", True)),
    ([b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"], False,
     Response(201, None, b"", False)),
    ([b"HTTP/1.0 201 Created\r\nContent-Length: 0\r\n\r\n"], False,
     Response(201, None, b"", False)),
    ([b"HTTP/1.1 400 Bad Request\r\n\r\nuntil the ", b"end"], True,
     Response(400, None, b"until the end", False)),
    ([b"HTTP/1.1 204 No Content\r\n\r\n"], False, Response(204, None, b"", True)),
    ([b"HTTP/1.1 413 Too Large\r\nContent-Length: 100\r\n\r\n" + b"x" * 100], False,
     Response(413, None, b"x" * 64, True)),  # the body is read but only 64 bytes kept
    # bytes after the answer (a second response, or garbage): answered, but not reused
    ([b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\nHTTP/1.1 201 Created\r\n"], False,
     Response(201, None, b"", False)),
    ([b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n\x00\x01"], False,
     Response(201, None, b"", False)),
    ([b"HTTP/1.1 410 Gone\r\nTransfer-Encoding: chunked\r\nRetry-After: 5\r\n\r\n",
      b"0\r\nRetry-After: 9\r\n\r\n"], False, Response(410, "5", b"", True)),  # not trailers
    ([b"HTTP/1.1 103 Early Hints\r\nRetry-After: 1\r\n\r\n",
      b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"], False,
     Response(201, None, b"", True)),  # an interim response's headers are not the answer's
])
def test_responses_are_framed_by_length_chunks_or_close(
        chunks: list[bytes], eof: bool, expected: Response) -> None:
    assert parse(chunks, eof=eof) == expected


@pytest.mark.parametrize("chunks", [
    [b"SMTP ready\r\n\r\n"],
    [b"HTTP/1.1 2x1 Created\r\n\r\n"],
    [b"HTTP/1.1 201 Created\r\nno colon\r\n\r\n"],
    [b"HTTP/1.1 201 Created\r\nContent-Length: -1\r\n\r\n"],
    [b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
    [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"],
    [b"HTTP/1.1 201 Created\r\nX-Big: " + b"a" * 70_000],  # a head past MAX_HEAD
    [b"HTTP/1.1 201 Created\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"],
])
def test_malformed_responses_are_refused(chunks: list[bytes]) -> None:
    with pytest.raises(ProtocolError):
        parse(chunks)


def test_a_response_cut_short_is_an_error_not_an_answer() -> None:
    with pytest.raises(ProtocolError):
        parse([b"HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\nabc"], eof=True)


@pytest.mark.parametrize("target, headers", [
    ("/push/a\r\nX-Evil: 1", {}), ("/push/a", {"TTL": "60\r\nX-Evil: 1"}),
    ("/push/a", {"Topic": "a\nb"}), ("/push/a", {"Topic": "a\x00"}), ("push", {}),
])
def test_requests_cannot_be_split_by_a_stored_endpoint_or_header(
        target: str, headers: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        encode_request("POST", target, "push.example", headers, b"")


def test_a_request_is_plain_http_1_1_with_its_length() -> None:
    assert encode_request("POST", "/p/1", "h:8", {"TTL": "60"}, b"abc") == (
        b"POST /p/1 HTTP/1.1\r\nHost: h:8\r\nContent-Length: 3\r\nTTL: 60\r\n\r\nabc")


@pytest.mark.parametrize(("url", "origin", "target"), [
    ("https://fcm.googleapis.com/fcm/send/abc", ("https", "fcm.googleapis.com", 443),
     "/fcm/send/abc"),
    ("http://127.0.0.1:8080/push/x?y=1", ("http", "127.0.0.1", 8080), "/push/x?y=1"),
    ("https://[2001:db8::1]:8443/p", ("https", "2001:db8::1", 8443), "/p"),
])
def test_urls_split_into_origin_and_target(url: str, origin: tuple[str, str, int],
                                           target: str) -> None:
    got, got_target = split_url(url)
    assert ((got.scheme, got.host, got.port), got_target) == (origin, target)


# -- the client against a real server -------------------------------------------------

Answer = Callable[[bytes], bytes | None]  # request head -> raw response (None: hang up)
RawServer = tuple[list[int], Callable[[Answer], str]]


@pytest.fixture
async def raw_server() -> AsyncIterator[RawServer]:
    """A socket server answering each request head with ``answer(head)``; yields the
    connection counter and a function installing the answer and returning the base URL."""
    connections = [0]
    state: dict[str, Answer] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections[0] += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                reply = state["answer"](head)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    def install(answer: Answer) -> str:
        state["answer"] = answer
        return f"http://127.0.0.1:{port}"

    yield connections, install
    server.close()


def client(**kwargs: object) -> HttpClient:
    options: dict[str, object] = {"connections_per_host": 2, "connections": 4,
                                  "allowed_private_hosts": frozenset({"127.0.0.1"}),
                                  "timeout": 2.0}
    options.update(kwargs)
    return HttpClient(**options)  # type: ignore[arg-type]


async def test_connections_are_kept_alive_and_bounded_per_host(raw_server: RawServer) -> None:
    connections, install = raw_server
    url = install(lambda head: b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    http = client()
    replies = await asyncio.gather(*(http.post(f"{url}/push/{i}", {"TTL": "60"}, b"x" * 100)
                                     for i in range(50)))
    assert {r.status for r in replies} == {201}
    assert connections[0] == 2  # 50 requests on at most connections_per_host connections
    await http.close()


async def test_a_closed_connection_is_replaced_and_chunked_answers_are_read(
        raw_server: RawServer) -> None:
    connections, install = raw_server
    url = install(lambda head: b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n")
    http = client()
    for _ in range(3):
        reply = await http.post(f"{url}/push/a", {}, b"")
        assert (reply.status, reply.body) == (404, b"no")
    assert connections[0] == 3
    await http.close()


async def test_no_answer_in_time_is_a_timeout(raw_server: RawServer) -> None:
    _, install = raw_server
    url = install(lambda head: b"")  # reads the request, never answers
    http = client(timeout=0.2)
    with pytest.raises(TimeoutError):
        await http.post(f"{url}/push/a", {}, b"")
    await http.close()


async def test_a_hang_up_without_an_answer_is_an_error(raw_server: RawServer) -> None:
    _, install = raw_server
    url = install(lambda head: None)
    http = client()
    with pytest.raises((ConnectionError, ProtocolError)):
        await http.post(f"{url}/push/a", {}, b"")
    await http.close()


async def test_private_addresses_are_refused_at_send_time_unless_allowed(
        raw_server: RawServer) -> None:
    _, install = raw_server
    url = install(lambda head: b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    http = client(allowed_private_hosts=frozenset())
    with pytest.raises(OSError, match="no public address"):
        await http.post(f"{url}/push/a", {}, b"")
    with pytest.raises(OSError, match="no public address"):
        await http.post(url.replace("127.0.0.1", "localhost") + "/push/a", {}, b"")
    await http.close()
