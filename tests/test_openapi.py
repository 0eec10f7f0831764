"""``/openapi.json`` describes every ``/api`` route the app registers."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from ticker.app import create_app
from ticker.settings import load_settings
from ticker.web.openapi import described


async def test_every_api_route_is_described(tmp_path: Any) -> None:
    app = create_app(load_settings(environ={"TICKER_DATA_DIR": str(tmp_path)}))
    routes = {(r.method, r.resource.canonical) for r in app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/api/")
              and r.method != "HEAD"}
    assert routes, "no /api routes registered"
    assert routes <= described(app), routes - described(app)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/openapi.json")
        doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    assert "/api/channels/{channel}/messages" in doc["paths"]
