"""HTTP/1.1 for the push sender, without I/O: a request's bytes out, a response's bytes in.

Only what talking to a push service needs: ``POST`` with a known ``Content-Length``, and a
response framed by ``Content-Length``, ``chunked``, or the connection closing, of which we
keep the status, ``Retry-After``, whether the connection may be reused, and the first
``max_body`` bytes of the body (for the log; the rest is read and dropped so the
connection stays usable). Interim ``1xx`` responses are skipped. Anything malformed raises
:class:`ProtocolError` and the connection is closed.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_HEAD = 64 * 1024  # a status line and headers larger than this are not a push service
MAX_BODY_KEPT = 64 * 1024
_FORBIDDEN = frozenset("\r\n\x00")


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


class ResponseParser:
    """Feed bytes; :meth:`feed` returns the response once it is complete (else None)."""

    def __init__(self, max_body: int = MAX_BODY_KEPT) -> None:
        self._max_body = max_body
        self._buf = bytearray()
        self._head: tuple[int, str | None, bool] | None = None
        self._mode = ""  # "length", "chunked" or "close" once the head is parsed
        self._remaining = 0  # body bytes left ("length") or left in this chunk ("chunked")
        self._chunk_state = "size"  # "size", "data", "crlf", "trailer"
        self._body = bytearray()

    def feed(self, data: bytes) -> Response | None:
        self._buf += data
        while self._head is None:
            parsed = self._parse_head()
            if parsed is None:
                return None
        if self._mode == "length":
            return self._length()
        if self._mode == "chunked":
            return self._chunked()
        self._keep(self._buf)
        self._buf.clear()
        return None

    def eof(self) -> Response:
        """The peer closed: the response, if closing was how it ended; else ProtocolError."""
        if self._head is not None and self._mode == "close":
            status, retry_after, _ = self._head
            return Response(status, retry_after, bytes(self._body), False)
        raise ProtocolError("connection closed before the response was complete")

    def _keep(self, data: bytes | bytearray) -> None:
        room = self._max_body - len(self._body)
        if room > 0:
            self._body += data[:room]

    def _parse_head(self) -> bool | None:
        """True: the final head is parsed; False: an interim 1xx was skipped; None: more."""
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > MAX_HEAD:
                raise ProtocolError("response head too large")
            return None
        lines = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
        del self._buf[:end + 4]
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise ProtocolError(f"bad status line {lines[0][:80]!r}")
        status = int(code)
        fields: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise ProtocolError("bad header line")
            fields[name.strip().lower()] = value.strip()
        if 100 <= status < 200:
            return False  # interim response: the final one follows
        connection = fields.get("connection", "").lower()
        keep_alive = ("close" not in connection if version == "HTTP/1.1"
                      else "keep-alive" in connection)
        self._head = (status, fields.get("retry-after"), keep_alive)
        if "chunked" in fields.get("transfer-encoding", "").lower():
            self._mode = "chunked"
        elif "content-length" in fields:
            length = fields["content-length"]
            if not length.isdigit():
                raise ProtocolError("bad Content-Length")
            self._mode, self._remaining = "length", int(length)
        elif status in (204, 304):
            self._mode, self._remaining = "length", 0
        else:
            self._mode = "close"
            self._head = (status, self._head[1], False)
        return True

    def _done(self) -> Response:
        assert self._head is not None
        status, retry_after, keep_alive = self._head
        # Bytes after the response were not asked for (we do not pipeline): do not reuse.
        return Response(status, retry_after, bytes(self._body), keep_alive and not self._buf)

    def _length(self) -> Response | None:
        take = min(self._remaining, len(self._buf))
        self._keep(self._buf[:take])
        del self._buf[:take]
        self._remaining -= take
        return self._done() if self._remaining == 0 else None

    def _chunked(self) -> Response | None:
        buf = self._buf
        while True:
            if self._chunk_state == "data":
                take = min(self._remaining, len(buf))
                self._keep(buf[:take])
                del buf[:take]
                self._remaining -= take
                if self._remaining:
                    return None
                self._chunk_state = "crlf"
            line_end = buf.find(b"\r\n")
            if line_end < 0:
                if len(buf) > MAX_HEAD:
                    raise ProtocolError("chunk line too long")
                return None
            line = bytes(buf[:line_end])
            del buf[:line_end + 2]
            if self._chunk_state == "crlf":
                if line:
                    raise ProtocolError("chunk not followed by CRLF")
                self._chunk_state = "size"
            elif self._chunk_state == "size":
                size = line.split(b";", 1)[0].strip()
                try:
                    self._remaining = int(size, 16)
                except ValueError:
                    raise ProtocolError("bad chunk size") from None
                self._chunk_state = "data" if self._remaining else "trailer"
            elif not line:  # the empty line that ends the trailers
                return self._done()
