"""``/ws`` answers a plain GET with 426 Upgrade Required instead of a bare 400.

A browser tab or ``curl`` opening the feed's URL learns what the endpoint wants; a request
that does ask to upgrade but gets the handshake wrong still gets aiohttp's 400.
"""

from __future__ import annotations

from aiohttp import web

from ticker.errors import ApiError, Handler


def upgrade_only(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        if "upgrade" not in request.headers.get("Connection", "").lower() and \
                not request.headers.get("Upgrade"):
            raise ApiError("upgrade_required", headers={"Upgrade": "websocket",
                                                        "Connection": "Upgrade"})
        return await handler(request)

    return guarded
