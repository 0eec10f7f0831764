"""Pages and scripts served to browsers: the demo page and the widget."""

from __future__ import annotations

import hashlib
import html
from functools import cache
from importlib import resources

from aiohttp import web

from ticker import appkeys
from ticker.feed.names import is_private

STATIC_TYPES = {".js": "text/javascript", ".html": "text/html", ".css": "text/css"}


@cache
def static_text(name: str) -> str:
    return resources.files("ticker").joinpath("static", name).read_text(encoding="utf-8")


def script_response(request: web.Request, text: str, *, max_age: int = 300) -> web.Response:
    """A script with an ETag, so embeds revalidate cheaply instead of downloading again."""
    etag = '"' + hashlib.sha256(text.encode()).hexdigest()[:16] + '"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}",
               "Access-Control-Allow-Origin": "*"}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(text=text, content_type="text/javascript", charset="utf-8",
                        headers=headers)


async def widget_js(request: web.Request) -> web.Response:
    return script_response(request, static_text("widget.js"))


async def index(request: web.Request) -> web.Response:
    settings = request.app[appkeys.settings]
    channels = ",".join(c for c in request.app[appkeys.hub].channels if not is_private(c))
    page = (static_text("index.html")
            .replace("{{site_name}}", html.escape(settings.server.site_name))
            .replace("{{channels}}", html.escape(channels)))
    return web.Response(text=page, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


def setup(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/widget.js", widget_js)
