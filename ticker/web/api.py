"""``/api/channels``: publish a ticker item (token) and read a channel's recent history."""

from __future__ import annotations

from aiohttp import web

from ticker import appkeys
from ticker.errors import ApiError, read_json
from ticker.feed.items import validate_item
from ticker.feed.session import CHANNEL_RE
from ticker.web.auth import require_token


def _channel(request: web.Request) -> str:
    name = request.match_info["channel"]
    if not CHANNEL_RE.match(name):
        raise ApiError("invalid_channel")
    if request.app[appkeys.hub].get(name) is None:
        raise ApiError("unknown_channel", f"There is no channel {name!r}.")
    return name


async def publish_message(request: web.Request) -> web.Response:
    name = _channel(request)
    await require_token(request)
    settings = request.app[appkeys.settings]
    body = await read_json(request, settings.feed.publish_max_bytes)
    data = validate_item(name, body)
    if isinstance(data, str):
        raise ApiError("invalid_message", data)
    msg = await request.app[appkeys.publisher].publish(name, data)
    return web.json_response({"channel": name, "epoch": msg.epoch, "offset": msg.offset},
                             status=201)


async def channel_history(request: web.Request) -> web.Response:
    """Recent messages, for a client told ``recovered: false`` (or starting afresh)."""
    name = _channel(request)
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        raise ApiError("invalid_request", "'limit' must be a whole number.") from None
    if not 0 <= limit <= 200:
        raise ApiError("invalid_request", "'limit' must be between 0 and 200.")
    channel = request.app[appkeys.hub].channels[name]
    # Public and read-only: widgets embedded on other sites fetch it cross-origin.
    return web.json_response({
        "channel": name, "epoch": channel.epoch, "offset": channel.offset,
        "messages": [m.envelope() for m in channel.recent(limit)],
    }, headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"})


def setup(app: web.Application) -> None:
    app.router.add_post("/api/channels/{channel}/messages", publish_message)
    app.router.add_get("/api/channels/{channel}/messages", channel_history)
