"""``GET /openapi.json``: an OpenAPI 3 description of every ``/api`` route.

Each part of the app describes its own routes with :func:`describe`; a test checks that
every ``/api`` route registered on the app is described, so the document cannot drift.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ticker import __version__
from ticker.feed.names import NAME_PATTERN

Schema = dict[str, Any]

ERROR = {"$ref": "#/components/schemas/Error"}

_COMPONENTS: dict[str, Any] = {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    "schemas": {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }},
        },
        "Message": {
            "type": "object",
            "required": ["type", "channel", "epoch", "offset", "data"],
            "properties": {
                "type": {"const": "message"}, "channel": {"type": "string"},
                "epoch": {"type": "string"}, "offset": {"type": "integer", "minimum": 1},
                "data": {"type": "object"},
            },
        },
    },
}

_PATHS: dict[str, dict[str, Any]] = {}


def describe(method: str, path: str, summary: str, *, auth: bool = False,
             body: Schema | None = None, responses: dict[int, str] | None = None,
             ok: Schema | None = None, ok_status: int = 200,
             parameters: list[Schema] | None = None) -> None:
    """Add one operation to the document."""
    op: dict[str, Any] = {"summary": summary, "responses": {}}
    if auth:
        op["security"] = [{"bearer": []}]
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": body}}}
    ok_resp: dict[str, Any] = {"description": "OK"}
    if ok is not None:
        ok_resp["content"] = {"application/json": {"schema": ok}}
    op["responses"][str(ok_status)] = ok_resp
    for status, text in (responses or {}).items():
        op["responses"][str(status)] = {
            "description": text, "content": {"application/json": {"schema": ERROR}}}
    _PATHS.setdefault(path, {})[method.lower()] = op


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "ticker", "version": __version__,
                 "description": "Real-time backend for newsrooms: live feeds and Web Push."},
        "paths": dict(sorted(_PATHS.items())),
        "components": _COMPONENTS,
    }


def described() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in _PATHS.items() for method in ops}


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(document(), headers={"Access-Control-Allow-Origin": "*"})


def setup(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi_json)


CHANNEL_PARAM = {"name": "channel", "in": "path", "required": True,
                 "schema": {"type": "string", "pattern": f"^{NAME_PATTERN}$"}}

describe("POST", "/api/channels/{channel}/messages", "Publish a ticker item", auth=True,
         parameters=[CHANNEL_PARAM],
         body={"type": "object", "required": ["data"], "additionalProperties": False,
               "properties": {"data": {"type": "object"}}},
         ok={"type": "object", "properties": {"channel": {"type": "string"},
                                              "epoch": {"type": "string"},
                                              "offset": {"type": "integer"}}},
         ok_status=201,
         responses={400: "Invalid item or channel name", 401: "Missing or bad token",
                    404: "Unknown channel", 413: "Body too large"})
describe("GET", "/api/channels/{channel}/messages", "Recent messages of a channel",
         parameters=[CHANNEL_PARAM, {"name": "limit", "in": "query", "required": False,
                                     "schema": {"type": "integer", "minimum": 0,
                                                "maximum": 200, "default": 20}}],
         ok={"type": "object", "properties": {
             "channel": {"type": "string"}, "epoch": {"type": "string"},
             "offset": {"type": "integer"},
             "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}}}},
         responses={400: "Invalid limit or channel name", 404: "Unknown channel"})
