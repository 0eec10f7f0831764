"""``/api/feeds`` (admin): the polled feeds with their health; add and remove stored ones."""

from __future__ import annotations

import time

import pydantic
from aiohttp import web

from ticker import appkeys
from ticker.errors import read_body
from ticker.newsroom.errors import InvalidFeed, UnknownFeed
from ticker.newsroom.feeds import store
from ticker.newsroom.feeds.state import FeedState
from ticker.newsroom.schemas import FeedIn, FeedList, FeedOut, FeedPath
from ticker.settings import NewsFeedSettings
from ticker.web.auth import require_token
from ticker.web.openapi import Operation, add_operations


def _out(feed: NewsFeedSettings, origin: str, state: FeedState | None) -> FeedOut:
    health = state.health() if state is not None else FeedState(feed.name, "api").health()
    return FeedOut.model_validate({**feed.model_dump(include={
        "name", "url", "interval", "language", "category"}), "origin": origin,
        "health": health})


async def list_feeds(request: web.Request) -> web.Response:
    await require_token(request, "admin")
    app = request.app
    configured = app[appkeys.settings].feeds
    stored = await store.listed(app[appkeys.database])
    states = app[appkeys.feed_states]
    names = {f.name for f in configured}
    feeds = [_out(f, "config", states.get(f.name)) for f in configured]
    feeds += [_out(f, "api", states.get(f.name)) for f in stored if f.name not in names]
    return web.json_response(FeedList(feeds=feeds).model_dump())


async def add_feed(request: web.Request) -> web.Response:
    info = await require_token(request, "admin")
    app = request.app
    body = await read_body(request, FeedIn, 16 * 1024, code="invalid_feed")
    try:
        feed = NewsFeedSettings.model_validate(body.model_dump())
    except pydantic.ValidationError as exc:
        raise InvalidFeed(str(exc.errors(include_url=False)[0]["msg"])) from None
    taken = frozenset(f.name for f in app[appkeys.settings].feeds)
    await store.add(app[appkeys.database], feed, info.actor, time.time(), taken)
    jobs = app.get(appkeys.feed_jobs)
    if jobs is not None:
        await jobs.sync()
    state = app[appkeys.feed_states].get(feed.name)
    return web.json_response(_out(feed, "api", state).model_dump(), status=201)


async def remove_feed(request: web.Request) -> web.Response:
    info = await require_token(request, "admin")
    app = request.app
    path = FeedPath.model_validate(dict(request.match_info))
    if path.name in {f.name for f in app[appkeys.settings].feeds}:
        raise UnknownFeed(f"{path.name!r} is configured in the settings file; remove it there.")
    await store.remove(app[appkeys.database], path.name, info.actor, time.time())
    jobs = app.get(appkeys.feed_jobs)
    if jobs is not None:
        await jobs.sync()
    return web.Response(status=204)


OPERATIONS = (
    Operation("GET", "/api/feeds", "The polled feeds and their health", auth=True,
              answer=FeedList, tags=("feeds",), errors=("forbidden",)),
    Operation("POST", "/api/feeds", "Add a feed (admin; audit-logged)", auth=True, ok=201,
              body=FeedIn, answer=FeedOut, tags=("feeds",),
              errors=("invalid_feed", "feed_exists", "forbidden")),
    Operation("DELETE", "/api/feeds/{name}", "Remove an added feed (admin; audit-logged)",
              auth=True, ok=204, params=(("path", FeedPath),), tags=("feeds",),
              errors=("invalid_request", "unknown_feed", "forbidden")),
)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/feeds", list_feeds)
    app.router.add_post("/api/feeds", add_feed)
    app.router.add_delete("/api/feeds/{name}", remove_feed)
    add_operations(app, *OPERATIONS)
