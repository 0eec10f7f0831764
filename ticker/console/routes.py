"""``POST /editor/login``, ``POST /editor/logout``, ``GET /api/session``,
``GET /api/console/config``: thin adapters over :mod:`ticker.console.users` and
:mod:`ticker.console.sessions`.

The login form is protected against login CSRF (a hostile page logging the victim into the
attacker's account) by an Origin check rather than a pre-session token pair: every browser
sends ``Origin`` on a cross-site POST, so a mismatching one is refused, and a request without
one is not from a browser page at all. One rule, no extra cookie, nothing stored before
login; the session cookie itself is SameSite=Strict, so no other site's page sends it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pydantic
from aiohttp import web

from ticker import appkeys, audit
from ticker.console import schemas, sessions, users
from ticker.errors import (
    BodyTooLarge,
    Forbidden,
    InvalidToken,
    LoginFailed,
    RateLimited,
    from_validation,
    read_bytes,
)
from ticker.web.auth import console_session, require_token
from ticker.web.clientaddr import client_address, request_scheme
from ticker.web.openapi import Operation, add_operations

log = logging.getLogger("ticker.console")

LOGIN_MAX_BYTES = 4096
_FORM = "application/x-www-form-urlencoded"


def see_other(location: str) -> web.Response:
    """A form's answer: back to the page (a Response: returning aiohttp's HTTPSeeOther is
    deprecated, raising it would skip the cookie)."""
    return web.Response(status=303, headers={"Location": location})


def client(request: web.Request) -> str:
    trusted = request.app[appkeys.trusted_proxies]
    return client_address(request.remote, request.headers.getall("X-Forwarded-For", []), trusted)


def is_https(request: web.Request) -> bool:
    trusted = request.app[appkeys.trusted_proxies]
    return request_scheme(request.remote, request.scheme,
                          request.headers.getall("X-Forwarded-Proto", []), trusted) == "https"


def _check_origin(request: web.Request) -> None:
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        raise Forbidden("Log in from this site's own /editor page.")


async def _login_body(request: web.Request) -> tuple[schemas.LoginBody, bool]:
    """The credentials, and whether they came from the HTML form."""
    if request.content_type == _FORM:
        if (request.content_length or 0) > LOGIN_MAX_BYTES:
            raise BodyTooLarge(f"The body must be at most {LOGIN_MAX_BYTES} bytes.")
        form = await request.post()
        fields = {k: form.get(k) for k in ("name", "password") if isinstance(form.get(k), str)}
        return schemas.LoginBody.model_validate(fields), True
    raw = await read_bytes(request, LOGIN_MAX_BYTES)
    try:
        return schemas.LoginBody.model_validate_json(raw), False
    except pydantic.ValidationError as exc:
        raise from_validation(exc, model=schemas.LoginBody) from None


def _set_cookie(request: web.Request, resp: web.StreamResponse, value: str) -> None:
    settings = request.app[appkeys.settings].console
    resp.set_cookie(sessions.COOKIE, value, max_age=int(settings.session_max_hours * 3600),
                    path="/", httponly=True, samesite="Strict", secure=is_https(request))


def _session_answer(name: str, role: str, csrf: str) -> dict[str, Any]:
    return schemas.SessionOut(user=schemas.SessionUserOut(name=name, role=role),  # type: ignore[arg-type]
                              csrf=csrf).model_dump()


async def login(request: web.Request) -> web.StreamResponse:
    _check_origin(request)
    body, from_form = await _login_body(request)
    app, now, address = request.app, time.time(), client(request)
    wait = app[appkeys.login_limits].check(body.name, address, time.monotonic())
    if wait is not None:
        log.warning("login attempts limited", extra={"address": address})
        raise RateLimited("Too many login attempts; wait before trying again.",
                          headers={"Retry-After": str(max(1, round(wait)))})
    db = app[appkeys.database]
    user = await users.authenticate(db, body.name, body.password, now)
    if user is None:
        await audit.record(db, "anonymous", "user.login_failed", f"user:{body.name[:64]}", now,
                           {"address": address})
        if from_form:
            return see_other("/editor?login=failed")
        raise LoginFailed()
    max_age = app[appkeys.settings].console.session_max_hours * 3600
    value, csrf = await sessions.create_session(db, user.id, now, max_age)
    await audit.record(db, f"user:{user.name}", "user.login", f"user:{user.name}", now,
                       {"address": address})
    resp: web.StreamResponse
    if from_form:
        resp = see_other("/editor")
    else:
        resp = web.json_response(_session_answer(user.name, user.role, csrf))
    _set_cookie(request, resp, value)
    resp.headers["Cache-Control"] = "no-store"
    return resp


async def logout(request: web.Request) -> web.StreamResponse:
    info = await require_token(request)
    if info.kind != "user":
        raise InvalidToken("Logging out ends a console session; there is none here.")
    await sessions.end_session(request.app[appkeys.database],
                               request.cookies.get(sessions.COOKIE, ""))
    resp = see_other("/editor") if request.content_type == _FORM else web.Response(status=204)
    resp.del_cookie(sessions.COOKIE, path="/")
    return resp


async def session(request: web.Request) -> web.Response:
    user = await console_session(request)
    if user is None:
        raise InvalidToken("There is no console session; log in at /editor.")
    return web.json_response(_session_answer(user.name, user.role, user.csrf),
                             headers={"Cache-Control": "no-store"})


async def console_config(request: web.Request) -> web.Response:
    info = await require_token(request)
    topics: tuple[str, ...] = request.app[appkeys.push_topics]
    answer = schemas.ConsoleConfig(
        siteName=request.app[appkeys.settings].server.site_name,
        topics=list(topics),
        user=schemas.SessionUserOut(name=info.name, role=info.role))  # type: ignore[arg-type]
    return web.json_response(answer.model_dump(), headers={"Cache-Control": "no-store"})


OPERATIONS = (
    Operation("POST", "/editor/login", "Log in to the console (sets the session cookie)",
              description="JSON, or the login form (then a 303 to /editor, with "
                          "?login=failed on a wrong password). A cross-site Origin is "
                          "refused (403). Limited per account and per address (429).",
              body=schemas.LoginBody, answer=schemas.SessionOut, tags=("console",),
              raw={303: {"description": "From the HTML form: back to /editor."}},
              errors=("invalid_request", "login_failed", "forbidden", "rate_limited",
                      "body_too_large")),
    Operation("POST", "/editor/logout", "End the console session", auth=True, ok=204,
              tags=("console",), raw={303: {"description": "From the HTML form."}}),
    Operation("GET", "/api/session", "The console session: who, and its CSRF token",
              answer=schemas.SessionOut, tags=("console",), errors=("unauthorized",)),
    Operation("GET", "/api/console/config", "What the console page needs: site, topics",
              auth=True, answer=schemas.ConsoleConfig, tags=("console",)),
)


PURGE_MINUTES = 30


async def _purge_ctx(app: web.Application) -> AsyncIterator[None]:
    # After the scheduler's own context (create_app appends that first).
    idle = app[appkeys.settings].console.session_idle_minutes * 60
    app[appkeys.scheduler].add_job(sessions.purge_sessions, "interval", minutes=PURGE_MINUTES,
                                   args=(app[appkeys.database], idle), id="console-sessions",
                                   coalesce=True, max_instances=1)
    yield


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_purge_ctx)
    app.router.add_post("/editor/login", login)
    app.router.add_post("/editor/logout", logout)
    app.router.add_get("/api/session", session)
    app.router.add_get("/api/console/config", console_config)
    add_operations(app, *OPERATIONS)
