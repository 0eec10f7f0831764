"""``GET /openapi.json``, generated from the models that validate requests and build answers.

Each part of the app lists its :class:`Operation` values (``add_operations(app, ...)``):
the models of its body, parameters and answer, and the error codes it can answer with.
Statuses come from the error table, so a route documents every status it can answer
without anyone writing one by hand; tests drive the server with requests generated from
this document and fail on an answer it does not list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from ticker import __version__
from ticker.errors import ERRORS
from ticker.web import schemas

REF = "#/components/schemas/{model}"
ERROR_REF = {"$ref": REF.format(model="Error")}

Location = Literal["path", "query", "header"]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    description: str = ""
    ok: int = 200
    answer: type[BaseModel] | None = None  # the success body (JSON)
    body: type[BaseModel] | None = None  # the request body (JSON)
    params: tuple[tuple[Location, type[BaseModel]], ...] = ()
    errors: tuple[str, ...] = ()  # codes of the error table it can answer with
    auth: bool = False
    # Answers that are not JSON models (an upgrade, an event stream, Prometheus text).
    raw: dict[int, dict[str, Any]] = field(default_factory=dict)
    tags: tuple[str, ...] = ()

    def error_codes(self) -> tuple[str, ...]:
        implied = ["internal"]
        if self.body is not None:
            implied += ["bad_json", "body_too_large", "unsupported_media_type"]
        if self.auth:
            implied.append("unauthorized")
            if self.method.upper() not in ("GET", "HEAD", "OPTIONS"):
                implied.append("bad_csrf")  # a console session cookie without its token
        return tuple(dict.fromkeys([*self.errors, *implied]))

    def statuses(self) -> set[int]:
        return {self.ok, *self.raw, *(ERRORS[c].status for c in self.error_codes())}


OPERATIONS_KEY = web.AppKey("openapi_operations", list[Operation])


def add_operations(app: web.Application, *operations: Operation) -> None:
    app.setdefault(OPERATIONS_KEY, []).extend(operations)


def _models(ops: list[Operation]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    out: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {
        (schemas.Error, "serialization"): None}
    for op in ops:
        if op.body is not None:
            out[(op.body, "validation")] = None
        if op.answer is not None:
            out[(op.answer, "serialization")] = None
    out.update({(frame, "validation"): None for frame in schemas.WS_FRAMES})
    return list(out)


def parameters(where: Location, model: type[BaseModel]) -> list[dict[str, Any]]:
    """One OpenAPI parameter per field of ``model`` (its alias is the wire name)."""
    doc = model.model_json_schema(by_alias=True, ref_template=REF)
    required = set(doc.get("required", ()))
    out = []
    for name, schema in doc["properties"].items():
        param: dict[str, Any] = {"name": name, "in": where,
                                 "required": where == "path" or name in required}
        if "description" in schema:
            param["description"] = schema.pop("description")
        schema.pop("title", None)
        param["schema"] = _not_null(schema)
        out.append(param)
    return out


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter is absent or a string, never JSON null: drop pydantic's null branch."""
    branches = [b for b in schema.get("anyOf", ()) if b.get("type") != "null"]
    if "anyOf" not in schema or len(branches) != 1:
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf" and not (
        k == "default" and v is None)}
    return {**branches[0], **rest}


def _errors(op: Operation) -> dict[str, Any]:
    by_status: dict[int, list[str]] = {}
    for code in op.error_codes():
        by_status.setdefault(ERRORS[code].status, []).append(code)
    return {str(status): {
        "description": "\n".join(f"- `{c}`: {ERRORS[c].message}" for c in codes),
        "content": {"application/json": {"schema": {"allOf": [ERROR_REF, {
            "properties": {"error": {"properties": {"code": {"enum": codes}}}}}]}}}}
        for status, codes in sorted(by_status.items())}


def _operation(op: Operation, refs: Mapping[Any, dict[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {"summary": op.summary, "operationId": _operation_id(op)}
    if op.description:
        doc["description"] = op.description
    if op.tags:
        doc["tags"] = list(op.tags)
    if op.auth:
        doc["security"] = [{"bearer": []}, {"session": []}]
    params = [p for where, model in op.params for p in parameters(where, model)]
    if params:
        doc["parameters"] = params
    if op.body is not None:
        doc["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": refs[(op.body, "validation")]}}}
    responses: dict[str, Any] = _errors(op)
    ok: dict[str, Any] = {"description": HTTPStatus(op.ok).phrase}
    if op.answer is not None:
        ok["content"] = {"application/json": {"schema": refs[(op.answer, "serialization")]}}
    if op.ok not in op.raw:
        responses[str(op.ok)] = ok
    responses.update({str(status): answer for status, answer in op.raw.items()})
    doc["responses"] = dict(sorted(responses.items()))
    return doc


def _operation_id(op: Operation) -> str:
    words = [w.strip("{}") for w in op.path.split("/") if w and w != "api"]
    return op.method.lower() + "".join(w[:1].upper() + w[1:] for w in words).replace(
        "-", "").replace(".", "")


def document(operations: list[Operation]) -> dict[str, Any]:
    refs, defs = models_json_schema(_models(operations), ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "ticker", "version": __version__,
                 "description": "Real-time backend for newsrooms: live feeds and Web Push. "
                                "Errors are `{\"error\": {\"code\", \"message\"}}`."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "ticker_session",
                            "description": "A console login (POST /editor/login); unsafe "
                                           "methods also need the X-CSRF-Token header."}},
            "schemas": dict(sorted(defs.get("$defs", {}).items())),
        },
    }


def described(app: web.Application) -> set[tuple[str, str]]:
    return {(op.method.upper(), op.path) for op in app.get(OPERATIONS_KEY, [])}


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[_DOC], headers={"Access-Control-Allow-Origin": "*"})


_DOC = web.AppKey("openapi_document", dict[str, Any])


async def _build(app: web.Application) -> None:
    # At startup: every part has added its operations by then.
    app[_DOC] = document(app.get(OPERATIONS_KEY, []))


def setup(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi_json)
    app.on_startup.append(_build)
    add_operations(app, *PLATFORM)


_STREAM = {"text/event-stream": {"schema": {"type": "string"}}}

PLATFORM = (
    Operation("GET", "/ws", "The live feed over WebSocket", tags=("feed",), description=(
        "Upgrade to a WebSocket; frames are JSON text. Client to server: `SubscribeFrame` "
        "(with `since` to resume), `UnsubscribeFrame`, `TimeFrame`. Server to client: "
        "`SubscribedFrame`, `MessageFrame`, `TimeReplyFrame`, `ErrorFrame` (the connection "
        "stays open after a mistake). Close codes: 1001 going away (reconnect and resume), "
        "1013 fell behind (reconnect and resume), 1008 flood of frames, 1009 frame too "
        "large. The frames' schemas are under components."),
        ok=101, errors=("invalid_request", "upgrade_required"),
        raw={101: {"description": "Switching Protocols: the WebSocket is open."}}),
    Operation("GET", "/sse", "The live feed as Server-Sent Events", tags=("feed",),
              description="Each event's data is a frame as on /ws (`SubscribedFrame`, "
                          "`MessageFrame`); a message's id is `epoch:offset` per channel, "
                          "comma-separated, for Last-Event-ID.",
              params=(("query", schemas.SseQuery), ("header", schemas.SseHeaders)),
              errors=("invalid_request", "invalid_channel", "unknown_channel",
                      "forbidden_channel"),
              raw={200: {"description": "The event stream.", "content": _STREAM}}),
    Operation("OPTIONS", "/sse", "CORS preflight for /sse", tags=("feed",),
              description="For fetch-based EventSource polyfills that send headers a "
                          "browser's own EventSource does not; any origin is allowed.",
              ok=204, raw={204: {"description": "Allowed from any origin."}}),
    Operation("GET", "/healthz", "Health, per part", tags=("operations",),
              answer=schemas.Health,
              raw={503: {"description": "The database is not answering.",
                         "content": {"application/json": {
                             "schema": {"$ref": REF.format(model="Health")}}}}}),
    Operation("GET", "/metrics", "Prometheus metrics", tags=("operations",),
              raw={200: {"description": "Prometheus text exposition format.",
                         "content": {"text/plain": {"schema": {"type": "string"}}}}}),
)
