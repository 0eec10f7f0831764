"""Bytes on the wire: JSON, WebSocket frames, Server-Sent Events. No sockets here."""

from __future__ import annotations

import json
import struct
from typing import Any

# Close codes (RFC 6455 §7.4.1 and the IANA registry).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001  # server shutting down: reconnect (to another node) and resume
CLOSE_POLICY = 1008  # flood of client frames
CLOSE_TOO_BIG = 1009  # oversize client frame
CLOSE_TRY_AGAIN = 1013  # slow consumer: reconnect after a pause and resume from your offsets

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(obj: Any) -> bytes:
    return _dumps(obj).encode("utf-8")


def ws_text_frame(payload: bytes) -> bytes:
    """A single unmasked, uncompressed FIN text frame (server to client)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


def ws_close_frame(code: int, reason: str = "") -> bytes:
    payload = struct.pack("!H", code) + reason.encode("utf-8")[:120]
    return struct.pack("!BB", 0x88, len(payload)) + payload


def sse_data_lines(payload: bytes) -> bytes:
    # Our JSON never contains a raw newline, but a data line must not, so split defensively.
    return b"".join(b"data: " + line + b"\n" for line in payload.split(b"\n"))


def sse_event(data_lines: bytes, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n".encode() if event_id is not None else b""
    return head + data_lines + b"\n"


def http_chunk(body: bytes) -> bytes:
    """One chunk of HTTP/1.1 chunked transfer encoding."""
    return f"{len(body):x}\r\n".encode() + body + b"\r\n"


def subscribed(channel: str, epoch: str, offset: int, recovered: bool) -> bytes:
    return dumps({"type": "subscribed", "channel": channel, "epoch": epoch,
                  "offset": offset, "recovered": recovered})


def unsubscribed(channel: str) -> bytes:
    return dumps({"type": "unsubscribed", "channel": channel})


def error(code: str, message: str, **extra: Any) -> bytes:
    return dumps({"type": "error", "code": code, "message": message, **extra})


def time_reply(t0: Any, server_ms: int) -> bytes:
    return dumps({"type": "time", "t0": t0, "server": server_ms})
