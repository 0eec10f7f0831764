"""Admin routes: ``/api/users``, ``/api/tokens``, ``/api/audit``. Every change is written
to the audit log in the same transaction, naming the admin who made it."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from ticker import appkeys, audit
from ticker.console import schemas, users
from ticker.errors import Conflict, InvalidInput, NotFound, read_body
from ticker.web import tokens
from ticker.web.auth import require_token
from ticker.web.openapi import Location, Operation, add_operations

BODY_MAX_BYTES = 4096


def _user_out(row: dict[str, Any]) -> dict[str, Any]:
    return schemas.UserOut(id=row["id"], name=row["name"], role=row["role"],
                           createdAt=row["created_at"], disabledAt=row["disabled_at"],
                           lastLoginAt=row["last_login_at"]).model_dump()


def _token_out(row: dict[str, Any]) -> dict[str, Any]:
    return schemas.TokenOut(id=row["id"], name=row["name"], role=row["role"],
                            createdAt=row["created_at"],
                            revokedAt=row["revoked_at"]).model_dump()


def _id(request: web.Request, what: str) -> int:
    try:
        return schemas.IdPath.model_validate({"id": request.match_info["id"]}, strict=False).id
    except ValueError:
        raise NotFound(f"There is no {what} with that id.") from None


async def list_users(request: web.Request) -> web.Response:
    await require_token(request, "admin")
    rows = await users.list_users(request.app[appkeys.database])
    return web.json_response({"users": [_user_out(r) for r in rows]})


async def add_user(request: web.Request) -> web.Response:
    admin = await require_token(request, "admin")
    body = await read_body(request, schemas.UserBody, BODY_MAX_BYTES)
    db, now = request.app[appkeys.database], time.time()
    try:
        password_hash = await users.hashed(body.password)
        async with db.transaction() as tx:
            user_id = await users.add_user(tx, body.name, body.role, password_hash, now)
            await audit.record(tx, admin.actor, "user.add", f"user:{body.name}", now,
                               {"role": body.role})
    except users.UserError as exc:
        if "already exists" in str(exc):
            raise Conflict(f"{str(exc)[:1].upper()}{str(exc)[1:]}.") from None
        raise InvalidInput(f"{str(exc)[:1].upper()}{str(exc)[1:]}.") from None
    row = next(r for r in await users.list_users(db) if r["id"] == user_id)
    return web.json_response({"user": _user_out(row)}, status=201)


async def disable_user(request: web.Request) -> web.Response:
    admin = await require_token(request, "admin")
    user_id = _id(request, "user")
    db, now = request.app[appkeys.database], time.time()
    user = await users.find_user(db, user_id=user_id)
    if user is None:
        raise NotFound("There is no user with that id.")
    async with db.transaction() as tx:
        if not await users.disable_user(tx, user_id, now):
            raise Conflict("That user is already disabled.")
        await audit.record(tx, admin.actor, "user.disable", f"user:{user.name}", now)
    row = next(r for r in await users.list_users(db) if r["id"] == user_id)
    return web.json_response({"user": _user_out(row)})


async def list_tokens(request: web.Request) -> web.Response:
    await require_token(request, "admin")
    rows = await tokens.list_tokens(request.app[appkeys.database])
    return web.json_response({"tokens": [_token_out(r) for r in rows]})


async def create_token(request: web.Request) -> web.Response:
    admin = await require_token(request, "admin")
    body = await read_body(request, schemas.TokenBody, BODY_MAX_BYTES)
    db, now = request.app[appkeys.database], time.time()
    async with db.transaction() as tx:
        value = await tokens.create_token(tx, body.name, body.role)
        await audit.record(tx, admin.actor, "token.create", f"token:{body.name.strip()}", now,
                           {"role": body.role})
    info = await tokens.verify_token(db, value)
    assert info is not None
    row = next(r for r in await tokens.list_tokens(db) if r["id"] == info.id)
    return web.json_response({"token": _token_out(row), "value": value}, status=201,
                             headers={"Cache-Control": "no-store"})


async def revoke_token(request: web.Request) -> web.Response:
    admin = await require_token(request, "admin")
    token_id = _id(request, "token")
    db, now = request.app[appkeys.database], time.time()
    row = next((r for r in await tokens.list_tokens(db) if r["id"] == token_id), None)
    if row is None:
        raise NotFound("There is no token with that id.")
    async with db.transaction() as tx:
        if not await tokens.revoke_token(tx, token_id):
            raise Conflict("That token is already revoked.")
        await audit.record(tx, admin.actor, "token.revoke", f"token:{row['name']}", now)
    row = next(r for r in await tokens.list_tokens(db) if r["id"] == token_id)
    return web.json_response({"token": _token_out(row)})


async def audit_log(request: web.Request) -> web.Response:
    await require_token(request, "admin")
    query = schemas.AuditQuery.model_validate(dict(request.query))
    entries = await audit.recent(request.app[appkeys.database], query.limit, query.before)
    return web.json_response({"entries": entries}, headers={"Cache-Control": "no-store"})


_ID: tuple[tuple[Location, type[schemas.IdPath]], ...] = (("path", schemas.IdPath),)
_ADMIN = ("forbidden",)

OPERATIONS = (
    Operation("GET", "/api/users", "Console users (admin)", auth=True, answer=schemas.Users,
              tags=("admin",), errors=_ADMIN),
    Operation("POST", "/api/users", "Add a console user (admin)", auth=True, ok=201,
              body=schemas.UserBody, answer=schemas.UserAnswer, tags=("admin",),
              errors=(*_ADMIN, "invalid_request", "conflict")),
    Operation("POST", "/api/users/{id}/disable", "Disable a user; their sessions end (admin)",
              auth=True, params=_ID, answer=schemas.UserAnswer, tags=("admin",),
              errors=(*_ADMIN, "not_found", "conflict")),
    Operation("GET", "/api/tokens", "API tokens, never their values (admin)", auth=True,
              answer=schemas.Tokens, tags=("admin",), errors=_ADMIN),
    Operation("POST", "/api/tokens", "Create an API token, its value shown once (admin)",
              auth=True, ok=201, body=schemas.TokenBody, answer=schemas.TokenCreated,
              tags=("admin",), errors=(*_ADMIN, "invalid_request")),
    Operation("POST", "/api/tokens/{id}/revoke", "Revoke an API token (admin)", auth=True,
              params=_ID, answer=schemas.TokenAnswer, tags=("admin",),
              errors=(*_ADMIN, "not_found", "conflict")),
    Operation("GET", "/api/audit", "The audit log, newest first (admin)", auth=True,
              params=(("query", schemas.AuditQuery),), answer=schemas.Audit, tags=("admin",),
              errors=(*_ADMIN, "invalid_request")),
)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/users", list_users)
    app.router.add_post("/api/users", add_user)
    app.router.add_post("/api/users/{id}/disable", disable_user)
    app.router.add_get("/api/tokens", list_tokens)
    app.router.add_post("/api/tokens", create_token)
    app.router.add_post("/api/tokens/{id}/revoke", revoke_token)
    app.router.add_get("/api/audit", audit_log)
    add_operations(app, *OPERATIONS)
