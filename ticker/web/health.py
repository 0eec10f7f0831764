"""``/healthz`` (for load balancers and operators) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ticker import appkeys


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
        "pid": os.getpid(),  # which process answered (serve --processes N)
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
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
