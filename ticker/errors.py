"""Errors are a table: a stable code, an HTTP status and a human sentence.

Core and storage code raise what happened in their own words; only :func:`error_middleware`
turns an error into an HTTP answer, ``{"error": {"code": ..., "message": ...}}`` with the
table's status. WebSocket error frames use the same codes. Web Push adds its own kinds
(and exceptions) in ``subscribers/errors.py``.

The tree (``subscribers`` adds the ones marked *)::

    TickerError                      internal             500  (``code``: its row)
    ├── ApiError                     any row by its code (handlers; the old name, kept)
    ├── InvalidInput                 invalid_request      400
    │   ├── BadJson                  bad_json             400
    │   ├── InvalidChannel           invalid_channel      400
    │   ├── InvalidMessage           invalid_message      400
    │   ├── InvalidSubscription *    invalid_subscription 400
    │   ├── InvalidAlert *           invalid_alert        400
    │   ├── InvalidEvent *           invalid_event        400
    │   ├── UnknownTopic *           unknown_topic        400
    │   └── EndpointNotAllowed *     endpoint_not_allowed 400
    ├── BodyTooLarge                 body_too_large       413
    ├── PayloadTooLarge *            payload_too_large    413
    ├── UnsupportedMediaType         unsupported_media_type 415
    ├── InvalidToken                 unauthorized         401
    ├── Forbidden                    forbidden            403
    │   └── BadCsrf                  bad_csrf             403
    ├── LoginFailed                  login_failed         401
    ├── NotFound                     not_found            404
    │   ├── UnknownChannel           unknown_channel      404
    │   ├── UnknownAlert *           unknown_alert        404
    │   └── UnknownSubscription *    unknown_subscription 404
    ├── Conflict                     conflict             409
    │   ├── AlreadyFinished *        conflict             409
    │   └── IdempotencyConflict *    idempotency_conflict 409
    ├── RateLimited                  rate_limited         429
    └── Unavailable                  unavailable          503
        └── PushUnavailable *        push_unavailable     503

A pydantic ``ValidationError`` that escapes a handler is a 400 ``invalid_request`` naming
the first field at fault; :func:`read_body` gives the route's own code instead
(``invalid_subscription``...) or, for a validator that raised a code of the table
(``unknown_topic``, ``payload_too_large``...), that code and its status.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pydantic
from aiohttp import web
from pydantic_core import PydanticCustomError

from ticker.broker.base import BrokerUnavailable
from ticker.feed.names import NAME_PATTERN

log = logging.getLogger("ticker.http")


@dataclass(frozen=True)
class ErrorKind:
    code: str
    status: int
    message: str


ERRORS: dict[str, ErrorKind] = {}


def add_kinds(*kinds: ErrorKind) -> None:
    """Add rows to the table (a part of the app with its own errors calls this on import)."""
    for kind in kinds:
        known = ERRORS.setdefault(kind.code, kind)
        if known != kind:
            raise ValueError(f"error code {kind.code!r} is already defined differently")


add_kinds(
    ErrorKind("bad_json", 400, "The body is not valid JSON."),
    ErrorKind("invalid_request", 400, "The request is not of the expected shape."),
    ErrorKind("invalid_message", 400, "The message must be a JSON object with a 'data' object."),
    ErrorKind("invalid_channel", 400, f"Channel names match {NAME_PATTERN}."),
    ErrorKind("body_too_large", 413, "The request body is too large."),
    ErrorKind("uri_too_long", 414, "The request line (path and query) is over 8 KB."),
    ErrorKind("header_too_large", 431, "A request header is over 8 KB, or there are too many."),
    ErrorKind("unauthorized", 401, "A valid 'Authorization: Bearer <token>' header, or a console "
                                   "login, is required."),
    ErrorKind("bad_signature", 401, "The request signature does not match."),
    ErrorKind("forbidden", 403, "This token's role may not do that."),
    ErrorKind("bad_csrf", 403, "A request made with the console's session cookie must carry "
                               "its CSRF token (header X-CSRF-Token, or form field csrf)."),
    ErrorKind("login_failed", 401, "The name or the password is wrong."),
    ErrorKind("not_found", 404, "There is nothing here."),
    ErrorKind("unknown_channel", 404, "There is no such channel."),
    ErrorKind("method_not_allowed", 405, "That method is not allowed here."),
    ErrorKind("conflict", 409, "The request conflicts with the current state."),
    ErrorKind("unsupported_media_type", 415, "Send the body as application/json."),
    ErrorKind("upgrade_required", 426, "This is a WebSocket endpoint: send an upgrade request."),
    ErrorKind("rate_limited", 429, "Too many requests; try again later."),
    ErrorKind("unavailable", 503, "The service is not available right now."),
    ErrorKind("internal", 500, "Something went wrong on our side; it has been logged."),
    # WebSocket-only codes (sent as error frames, never as HTTP statuses).
    ErrorKind("unknown_type", 400, "Unknown message type."),
    ErrorKind("slow_consumer", 400, "The client did not keep up and was disconnected."),
    ErrorKind("too_many_errors", 400, "More errors in one frame than are sent one by one."),
    ErrorKind("forbidden_channel", 403, "Channels named console:* need a console login."),
)


class TickerError(Exception):
    """The root: every error the server answers on purpose. ``code`` names its table row."""

    code: str = "internal"

    def __init__(self, message: str | None = None, *,
                 headers: Mapping[str, str] | None = None) -> None:
        self.message = message or ERRORS[self.code].message
        self.headers = dict(headers or {})
        super().__init__(f"{self.code}: {self.message}")

    @property
    def status(self) -> int:
        return ERRORS[self.code].status

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class ApiError(TickerError):
    """An answer named by its table code: ``ApiError("unknown_channel", "...")``."""

    def __init__(self, code: str, message: str | None = None, *, status: int | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        if code not in ERRORS:
            raise KeyError(f"{code!r} is not in the error table")
        self.code, self._status = code, status
        super().__init__(message, headers=headers)

    @property
    def status(self) -> int:
        return self._status or ERRORS[self.code].status


class InvalidInput(TickerError):
    code = "invalid_request"


class BadJson(InvalidInput):
    code = "bad_json"


class InvalidChannel(InvalidInput):
    code = "invalid_channel"


class InvalidMessage(InvalidInput):
    code = "invalid_message"


class BodyTooLarge(TickerError):
    code = "body_too_large"


class UnsupportedMediaType(TickerError):
    code = "unsupported_media_type"


class InvalidToken(TickerError):
    code = "unauthorized"


class Forbidden(TickerError):
    code = "forbidden"


class BadCsrf(Forbidden):
    code = "bad_csrf"


class LoginFailed(TickerError):
    code = "login_failed"


class NotFound(TickerError):
    code = "not_found"


class UnknownChannel(NotFound):
    code = "unknown_channel"


class Conflict(TickerError):
    code = "conflict"


class RateLimited(TickerError):
    code = "rate_limited"


class Unavailable(TickerError):
    code = "unavailable"


def custom_error(code: str, message: str) -> PydanticCustomError:
    """For a model validator: fail with a code of the table (``unknown_topic``...)."""
    return PydanticCustomError(code, message)


def field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def field_description(model: type[pydantic.BaseModel] | None,
                      loc: tuple[int | str, ...]) -> str | None:
    """The ``description`` of the field at ``loc`` in ``model`` (following nested models)."""
    info = None
    for part in loc:
        if model is None or isinstance(part, int):
            continue  # a list index: the item has the list field's description
        fields = {f.alias or name: f for name, f in model.model_fields.items()}
        info = fields.get(part) or model.model_fields.get(part)
        if info is None:
            return None
        nested = info.annotation
        model = nested if isinstance(nested, type) and issubclass(
            nested, pydantic.BaseModel) else None
    return info.description if info is not None else None


def from_validation(exc: pydantic.ValidationError, code: str = "invalid_request",
                    what: str = "body",
                    model: type[pydantic.BaseModel] | None = None) -> ApiError:
    """The first error of ``exc`` as an answer: its own table code, or ``code``."""
    first = exc.errors(include_url=False)[0]
    kind, loc = str(first["type"]), tuple(first["loc"])
    if kind in ERRORS:  # a validator spoke in the table's words
        return ApiError(kind, str(first["msg"]))
    if kind == "json_invalid":
        return ApiError("bad_json")
    if not loc and kind in ("model_type", "model_attributes_type", "dict_type"):
        return ApiError(code, f"The {what} must be a JSON object.")
    msg = str(first["msg"])
    if kind == "value_error":  # our validators write whole sentences naming the field
        return ApiError(code, str(first.get("ctx", {}).get("error", msg)))
    name = field_name(loc)
    if kind.startswith("string_pattern"):
        described = field_description(model, loc)
        if described:
            return ApiError(code, f"'{name}' is not valid: {described.rstrip('.')}.")
    return ApiError(code, f"'{name}': {msg[0].lower()}{msg[1:]}.")


Model = TypeVar("Model", bound=pydantic.BaseModel)

_JSON_TYPES = ("application/json", "text/plain", "application/octet-stream", "")


async def read_bytes(request: web.Request, max_bytes: int) -> bytes:
    """The raw body, refusing an oversize or non-JSON content type one."""
    too_large = f"The body must be at most {max_bytes} bytes."
    if request.content_length is not None and request.content_length > max_bytes:
        raise BodyTooLarge(too_large)
    if request.content_type not in _JSON_TYPES:
        raise UnsupportedMediaType()
    raw = await request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise BodyTooLarge(too_large)
    return raw


async def read_body(request: web.Request, model: type[Model], max_bytes: int, *,
                    code: str = "invalid_request",
                    context: Mapping[str, Any] | None = None) -> Model:
    """The request's JSON body validated by ``model``; failures answer with ``code``."""
    raw = await read_bytes(request, max_bytes)
    try:
        return model.model_validate_json(raw, context=dict(context or {}))
    except pydantic.ValidationError as exc:
        raise from_validation(exc, code, model=model) from None


def error_response(err: TickerError) -> web.Response:
    return web.Response(status=err.status, text=json.dumps(err.body()),
                        content_type="application/json", headers=err.headers)


_HTTP_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed",
               413: "body_too_large"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _from_http(exc: web.HTTPException) -> web.StreamResponse | None:
    code = _HTTP_CODES.get(exc.status)
    if code is None:
        return None
    headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
    # aiohttp's own sentence when it wrote one (a malformed WebSocket handshake says
    # which header is wrong), else the table's; "404: Not Found" is aiohttp's default.
    text = (exc.text or "").strip()
    message = None if not text or text.startswith(f"{exc.status}:") else " ".join(text.split())
    return error_response(ApiError(code, message, headers=headers))


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one place an error becomes a status and a JSON body."""
    try:
        return await handler(request)
    except TickerError as err:
        return error_response(err)
    except BrokerUnavailable:
        # Whatever route was publishing (a channel item, an article's headline): the feed's
        # broker (Redis) is down; the node itself is fine and the client may retry.
        return error_response(Unavailable("The feed's broker cannot be reached; nothing "
                                          "was published. Try again shortly."))
    except pydantic.ValidationError as exc:
        return error_response(from_validation(exc))
    except web.HTTPException as exc:
        answer = _from_http(exc) if exc.status >= 400 else None
        if answer is None:
            raise
        return answer
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return error_response(ApiError("internal"))
