"""Who is calling: a bearer token (the CMS, the CLI) or a console session cookie (an editor
in a browser). Every editor and admin route asks :func:`require_token`, and only it.

A cookie rides along on every request the browser makes to this site, including those a
hostile page triggers, so a cookie caller must also prove it read the session's CSRF token
(only this origin's pages can read ``GET /api/session``) on every unsafe method. Bearer
tokens are never sent by a browser on its own, so they need no such proof.
"""

from __future__ import annotations

import time

from aiohttp import web

from ticker import appkeys
from ticker.console import sessions
from ticker.errors import BadCsrf, Forbidden, InvalidToken
from ticker.web.tokens import TokenInfo, verify_token

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


async def console_session(request: web.Request) -> sessions.SessionUser | None:
    """The live console session the request's cookie names, if any (no CSRF check)."""
    value = request.cookies.get(sessions.COOKIE)
    if not value:
        return None
    idle = request.app[appkeys.settings].console.session_idle_minutes * 60
    return await sessions.session_user(request.app[appkeys.database], value, time.time(), idle)


async def _csrf_given(request: web.Request) -> str | None:
    header = request.headers.get(sessions.CSRF_HEADER)
    if header is not None or request.content_type not in _FORMS:
        return header
    # An HTML form cannot set headers: its hidden field carries the token. aiohttp keeps
    # the parsed form, so the handler can still read it.
    form = await request.post()
    value = form.get(sessions.CSRF_FIELD)
    return value if isinstance(value, str) else None


async def _from_cookie(request: web.Request) -> TokenInfo:
    user = await console_session(request)
    if user is None:
        raise InvalidToken("The console session has expired or ended; log in again.")
    if request.method not in SAFE_METHODS and not sessions.csrf_matches(
            user.csrf, await _csrf_given(request)):
        raise BadCsrf()
    return TokenInfo(user.user_id, user.name, user.role, kind="user")


async def require_token(request: web.Request, role: str = "editor") -> TokenInfo:
    """The caller, or 401/403. ``admin`` callers may do everything ``editor`` ones can.

    A request with an ``Authorization`` header is judged by it alone; without one, by the
    console session cookie (and, on unsafe methods, its CSRF token)."""
    header = request.headers.get("Authorization")
    if header is None and sessions.COOKIE in request.cookies:
        info = await _from_cookie(request)
    else:
        info = await _from_bearer(request, header or "")
    if role == "admin" and info.role != "admin":
        raise Forbidden("This needs the admin role." if info.kind == "user" else None)
    return info


async def _from_bearer(request: web.Request, header: str) -> TokenInfo:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken(headers={"WWW-Authenticate": 'Bearer realm="ticker"'})
    info = await verify_token(request.app[appkeys.database], token.strip())
    if info is None:
        raise InvalidToken("The token is not valid (unknown or revoked).",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return info


async def may_read_console(request: web.Request, *, bearer: bool) -> bool:
    """Whether the request may subscribe to ``console:*`` channels: a live console session,
    or, when ``bearer`` (programs reading /sse), an editor or admin bearer token."""
    if await console_session(request) is not None:
        return True
    if not bearer:
        return False
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and await verify_token(
        request.app[appkeys.database], token.strip()) is not None
