"""Pages and scripts served to browsers, plus ``/healthz`` and ``/metrics``."""

from __future__ import annotations

import hashlib
import html
import json
from datetime import UTC, datetime
from functools import cache
from importlib import resources

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ticker import appkeys

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
    channels = ",".join(request.app[appkeys.hub].channels)
    page = (static_text("index.html")
            .replace("{{site_name}}", html.escape(settings.site_name))
            .replace("{{channels}}", html.escape(channels)))
    return web.Response(text=page, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


async def healthz(request: web.Request) -> web.Response:
    app = request.app
    db_ok = True
    try:
        await app[appkeys.database].fetchone("SELECT 1 AS ok")
    except Exception:
        db_ok = False
    started = app[appkeys.started_at]
    parts = {name: check() for name, check in app[appkeys.health_checks].items()}
    degraded = not db_ok or any(p.get("status") == "degraded" for p in parts.values())
    body = {
        "status": "degraded" if degraded else "ok",
        "database": "ok" if db_ok else "error",
        "connections": len(app[appkeys.connections]),
        "uptime_seconds": int((datetime.now(UTC) - started).total_seconds()),
        **parts,
    }
    # Only a dead database makes the node unhealthy (503) for a load balancer: a push
    # problem is an operator's to fix and a restart would not help.
    return web.Response(text=json.dumps(body), content_type="application/json",
                        status=200 if db_ok else 503)


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[appkeys.metrics].registry
    resp = web.Response(body=generate_latest(registry))
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


def setup(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/widget.js", widget_js)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
