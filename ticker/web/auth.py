"""Bearer-token authentication for the API."""

from __future__ import annotations

from aiohttp import web

from ticker import appkeys
from ticker.errors import Forbidden, InvalidToken
from ticker.web.tokens import TokenInfo, verify_token


async def require_token(request: web.Request, role: str = "editor") -> TokenInfo:
    """The caller's token, or 401/403. ``admin`` tokens may do everything ``editor`` ones can."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken(headers={"WWW-Authenticate": 'Bearer realm="ticker"'})
    info = await verify_token(request.app[appkeys.database], token.strip())
    if info is None:
        raise InvalidToken("The token is not valid (unknown or revoked).",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if role == "admin" and info.role != "admin":
        raise Forbidden()
    return info
