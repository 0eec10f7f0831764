"""HTTP/1.1 for the push sender, without I/O: a request's bytes out, a response's bytes in.

Only what talking to a push service needs: ``POST`` with a known ``Content-Length``, and a
response framed by ``Content-Length``, ``chunked``, or the connection closing, of which we
keep the status, ``Retry-After``, whether the connection may be reused, and the first
``max_body`` bytes of the body (for the log; the rest is read and dropped so the
connection stays usable). Interim ``1xx`` responses are skipped. Anything malformed raises
:class:`ProtocolError` and the connection is closed. Responses are parsed by llhttp (the
``httptools`` binding, which aiohttp and uvicorn use too).
"""

from __future__ import annotations

from dataclasses import dataclass

import httptools

MAX_HEAD = 64 * 1024  # a status line and headers larger than this are not a push service
MAX_BODY_KEPT = 64 * 1024


class ProtocolError(Exception):
    pass


@dataclass(frozen=True)
class Response:
    status: int
    retry_after: str | None
    body: bytes
    keep_alive: bool


def encode_request(method: str, target: str, host: str, headers: dict[str, str],
                   body: bytes) -> bytes:
    """The request's bytes; refuses CR, LF or NUL anywhere a header could be split."""
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"]
    for name, value in headers.items():
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    head = "".join(lines)
    # Only the two separators per line may contain CR/LF: count them instead of scanning
    # every value separately.
    if head.count("\r") != len(headers) + 4 or head.count("\n") != len(headers) + 4 \
            or "\x00" in head or not target.startswith("/"):
        raise ValueError("CR, LF or NUL in the request target or a header")
    return head.encode("latin-1") + body


class _Message:
    """httptools' callbacks for one exchange: what the sender keeps of the final response.

    A separate object from :class:`ResponseParser`, so that the parser's references to these
    bound methods do not make the parser refer to itself; the one reference back (``parser``,
    for the status and keep-alive) is dropped when the response is done."""

    __slots__ = ("body", "chunked", "complete", "extra", "has_length", "head_done",
                 "keep_alive", "max_body", "parser", "retry_after", "status")

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self.parser: httptools.HttpResponseParser | None = None
        self.status = 0
        self.retry_after: str | None = None
        self.has_length = False
        self.chunked = False
        self.head_done = False  # the final (non-1xx) head is parsed
        self.keep_alive = False
        self.body = bytearray()
        self.complete = False
        self.extra = False  # bytes came after the response

    def on_message_begin(self) -> None:
        if self.complete:
            self.extra = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.head_done:
            return  # a chunked body's trailers
        name = name.lower()
        if name == b"retry-after":
            self.retry_after = value.decode("latin-1").strip()
        elif name == b"content-length":
            self.has_length = True
        elif name == b"transfer-encoding":
            self.chunked = b"chunked" in value.lower()

    def on_headers_complete(self) -> None:
        parser = self.parser
        if self.complete or parser is None:
            return
        status = parser.get_status_code()
        if 100 <= status < 200:
            return  # an interim response: the final one follows
        self.status = status
        self.head_done = True
        self.keep_alive = parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        room = self.max_body - len(self.body)
        if room > 0 and not self.complete:
            self.body += body[:room]

    def on_message_complete(self) -> None:
        if self.complete:
            return
        if not self.head_done:  # the end of an interim response: forget its headers
            self.retry_after = None
            self.has_length = self.chunked = False
            return
        self.complete = True


class ResponseParser:
    """Feed bytes; :meth:`feed` returns the response once it is complete (else None).

    The HTTP/1.1 parsing is llhttp's (through ``httptools``, as in aiohttp and uvicorn);
    this class keeps the sans-I/O shape and decides what the sender needs: 1xx skipped,
    the body cut at ``max_body``, no reuse after unexpected bytes, and read-until-close
    responses ended by :meth:`eof`."""

    def __init__(self, max_body: int = MAX_BODY_KEPT) -> None:
        self._msg = _Message(max_body)
        self._http = httptools.HttpResponseParser(self._msg)
        self._msg.parser = self._http
        self._head_bytes = 0  # fed before the final head was parsed

    def feed(self, data: bytes) -> Response | None:
        msg = self._msg
        if msg.complete:
            return None
        if not msg.head_done:
            self._head_bytes += len(data)
        try:
            self._http.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if not msg.complete:
                msg.parser = None
                raise ProtocolError(f"malformed response: {exc!r}"[:200]) from None
            msg.extra = True  # garbage after a complete response: answer, but do not reuse
        if msg.complete:
            msg.parser = None
            # Bytes after the response were not asked for (we do not pipeline): no reuse.
            return Response(msg.status, msg.retry_after, bytes(msg.body),
                            msg.keep_alive and not msg.extra)
        if not msg.head_done and self._head_bytes > MAX_HEAD:
            msg.parser = None
            raise ProtocolError("response head too large")
        return None

    def eof(self) -> Response:
        """The peer closed: the response, if closing was how it ended; else ProtocolError."""
        msg = self._msg
        msg.parser = None
        if msg.head_done and not msg.complete and not msg.has_length and not msg.chunked:
            return Response(msg.status, msg.retry_after, bytes(msg.body), False)
        raise ProtocolError("connection closed before the response was complete")
