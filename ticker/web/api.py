"""``/api/channels``: publish a ticker item (token) and read a channel's recent history."""

from __future__ import annotations

import pydantic
from aiohttp import web

from ticker import appkeys
from ticker.errors import (
    InvalidChannel,
    InvalidMessage,
    UnknownChannel,
    from_validation,
    read_bytes,
)
from ticker.feed.items import PublishBody, publish_body, server_fed
from ticker.feed.names import is_private
from ticker.web import schemas
from ticker.web.auth import require_token
from ticker.web.openapi import Operation, add_operations


def _channel(request: web.Request) -> str:
    name = request.match_info["channel"]
    try:
        schemas.ChannelPath.model_validate({"channel": name})
    except pydantic.ValidationError:
        raise InvalidChannel() from None
    if request.app[appkeys.hub].get(name) is None:
        raise UnknownChannel(f"There is no channel {name!r}.")
    return name


async def publish_message(request: web.Request) -> web.Response:
    name = _channel(request)
    await require_token(request)
    if server_fed(name) or is_private(name):
        raise InvalidMessage(f"Channel {name!r} is fed by the server and cannot be "
                             "published to.")
    raw = await read_bytes(request, request.app[appkeys.settings].feed.publish_max_bytes)
    try:
        body = publish_body(name, raw)
    except pydantic.ValidationError as exc:
        raise from_validation(exc, "invalid_message", model=PublishBody) from None
    # A broker that cannot be reached raises BrokerUnavailable: 503 (ticker.errors).
    msg = await request.app[appkeys.publisher].publish(
        name, body.data.model_dump(exclude_unset=True))
    answer = schemas.Published(channel=name, epoch=msg.epoch, offset=msg.offset)
    return web.json_response(answer.model_dump(), status=201)


async def channel_history(request: web.Request) -> web.Response:
    """Recent messages, for a client told ``recovered: false`` (or starting afresh)."""
    name = _channel(request)
    if is_private(name):
        await require_token(request)
    query = schemas.HistoryQuery.model_validate(dict(request.query))
    channel = request.app[appkeys.hub].channels[name]
    # Public and read-only: widgets embedded on other sites fetch it cross-origin.
    return web.json_response({
        "channel": name, "epoch": channel.epoch, "offset": channel.offset,
        "messages": [m.envelope() for m in channel.recent(query.limit)],
    }, headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"})


OPERATIONS = (
    Operation("POST", "/api/channels/{channel}/messages", "Publish a ticker item",
              description="`clock`, `data:*` and `console:*` are fed by the server (400 "
                          "`invalid_message`); `headlines` needs a title; `breaking` "
                          "takes a title, or `{\"clear\": true}` to hide the banner.",
              auth=True, ok=201, body=PublishBody, answer=schemas.Published,
              params=(("path", schemas.ChannelPath),), tags=("channels",),
              errors=("invalid_message", "invalid_channel", "unknown_channel",
                      "unavailable")),
    Operation("GET", "/api/channels/{channel}/messages", "Recent messages of a channel",
              answer=schemas.History, tags=("channels",),
              params=(("path", schemas.ChannelPath), ("query", schemas.HistoryQuery)),
              description="`console:*` channels need an editor token or console login.",
              errors=("invalid_request", "invalid_channel", "unknown_channel",
                      "unauthorized")),
)


def setup(app: web.Application) -> None:
    app.router.add_post("/api/channels/{channel}/messages", publish_message)
    app.router.add_get("/api/channels/{channel}/messages", channel_history)
    add_operations(app, *OPERATIONS)
