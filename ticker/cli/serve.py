"""``ticker serve``: the server."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from ticker.app import create_app
from ticker.logs import redact, setup_logging
from ticker.settings import Settings
from ticker.web import server

log = logging.getLogger("ticker.serve")


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the server (API, pages, WebSocket/SSE feeds, scheduler)",
                       description="Run the server: HTTP API, pages, feeds and the scheduler.")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1, env TICKER_HOST)")
    p.add_argument("--port", type=int, help="port to listen on (default 8080, env TICKER_PORT)")
    p.add_argument("--print-config", action="store_true",
                   help="print the effective settings (secrets masked) and exit")
    p.set_defaults(run=run, overrides=lambda a: {"host": a.host, "port": a.port})


def run(args: argparse.Namespace, settings: Settings) -> int:
    setup_logging(settings.log_level, settings.log_format)
    if args.print_config:
        import json

        # redact: a database URL may carry a password (postgresql://user:password@host).
        print(redact(json.dumps(settings.redacted(), indent=2)))
        return 0
    log.info("starting", extra={"settings": settings.redacted()})
    if settings.mode == "demo":
        log.warning("running in demo mode: embedded defaults are in use; set TICKER_MODE="
                    "production for a real deployment")
    app = create_app(settings)
    # not web.run_app: requests aiohttp cannot parse are answered as JSON (ticker.web.server)
    server.run(app, host=settings.host, port=settings.port, shutdown_timeout=5.0,
               access_log=logging.getLogger("aiohttp.access"))
    return 0
