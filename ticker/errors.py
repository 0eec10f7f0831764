"""Errors are a table: a stable code, an HTTP status and a human sentence.

Handlers raise :class:`ApiError`; one middleware renders it as
``{"error": {"code": ..., "message": ...}}``. WebSocket errors use the same codes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from ticker.feed.names import NAME_PATTERN

log = logging.getLogger("ticker.http")


@dataclass(frozen=True)
class ErrorKind:
    code: str
    status: int
    message: str


def _kinds(*kinds: ErrorKind) -> dict[str, ErrorKind]:
    return {k.code: k for k in kinds}


ERRORS = _kinds(
    ErrorKind("bad_json", 400, "The body is not valid JSON."),
    ErrorKind("invalid_request", 400, "The request is not of the expected shape."),
    ErrorKind("invalid_message", 400, "The message must be a JSON object with a 'data' object."),
    ErrorKind("invalid_channel", 400, f"Channel names match {NAME_PATTERN}."),
    ErrorKind("invalid_subscription", 400, "The push subscription is not valid."),
    ErrorKind("invalid_alert", 400, "The alert is not valid."),
    ErrorKind("unknown_topic", 400, "One of the topics is not offered by this site."),
    ErrorKind("endpoint_not_allowed", 400,
              "The push endpoint's host is not an allowed push service."),
    ErrorKind("invalid_event", 400,
              "A receipt is {'alert': id, 'event': 'shown' or 'clicked'}."),
    ErrorKind("unknown_alert", 404, "There is no such alert."),
    ErrorKind("unknown_subscription", 404,
              "There is no subscription with that endpoint and secret."),
    ErrorKind("idempotency_conflict", 409,
              "This Idempotency-Key was already used for a different alert."),
    ErrorKind("push_unavailable", 503, "Web Push is not configured on this server."),
    ErrorKind("payload_too_large", 413, "The payload would exceed the size push services accept."),
    ErrorKind("body_too_large", 413, "The request body is too large."),
    ErrorKind("uri_too_long", 414, "The request line (path and query) is over 8 KB."),
    ErrorKind("header_too_large", 431, "A request header is over 8 KB, or there are too many."),
    ErrorKind("unauthorized", 401, "A valid 'Authorization: Bearer <token>' header is required."),
    ErrorKind("bad_signature", 401, "The request signature does not match."),
    ErrorKind("forbidden", 403, "This token's role may not do that."),
    ErrorKind("not_found", 404, "There is nothing here."),
    ErrorKind("unknown_channel", 404, "There is no such channel."),
    ErrorKind("method_not_allowed", 405, "That method is not allowed here."),
    ErrorKind("conflict", 409, "The request conflicts with the current state."),
    ErrorKind("unsupported_media_type", 415, "Send the body as application/json."),
    ErrorKind("rate_limited", 429, "Too many requests; try again later."),
    ErrorKind("unavailable", 503, "The service is not available right now."),
    ErrorKind("internal", 500, "Something went wrong on our side; it has been logged."),
    # WebSocket-only codes (sent as error frames, never as HTTP statuses).
    ErrorKind("unknown_type", 400, "Unknown message type."),
    ErrorKind("slow_consumer", 400, "The client did not keep up and was disconnected."),
    ErrorKind("too_many_errors", 400, "More errors in one frame than are sent one by one."),
)


class ApiError(Exception):
    """Raise in a handler to answer with the table's status and a JSON body."""

    def __init__(self, code: str, message: str | None = None, *, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        kind = ERRORS[code]
        self.code = code
        self.status = status or kind.status
        self.message = message or kind.message
        self.headers = headers or {}
        super().__init__(f"{code}: {self.message}")

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


def error_response(err: ApiError) -> web.Response:
    return web.Response(
        status=err.status,
        text=json.dumps(err.body()),
        content_type="application/json",
        headers=err.headers,
    )


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as err:
        return error_response(err)
    except web.HTTPException as exc:
        code = _HTTP_CODES.get(exc.status)
        if code is None or exc.status < 400:
            raise
        return error_response(ApiError(code, headers={k: v for k, v in exc.headers.items()
                                                      if k.lower() == "allow"}))
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return error_response(ApiError("internal"))


async def read_json(request: web.Request, max_bytes: int) -> object:
    """The request's JSON body, refusing oversize, non-JSON and wrongly typed bodies."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError("body_too_large", f"The body must be at most {max_bytes} bytes.")
    ctype = request.content_type
    if ctype not in ("application/json", "text/plain", "application/octet-stream", ""):
        raise ApiError("unsupported_media_type")
    raw = await request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise ApiError("body_too_large", f"The body must be at most {max_bytes} bytes.")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise ApiError("bad_json") from None
