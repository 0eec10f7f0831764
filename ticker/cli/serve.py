"""``ticker serve``: the server."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import socket
import sys
from typing import Any

from ticker.app import create_app
from ticker.cli.errors import CliError
from ticker.logs import redact, setup_logging
from ticker.settings import Settings
from ticker.web import server

log = logging.getLogger("ticker.serve")
BACKLOG = 128  # aiohttp's default; it listens again on these sockets with the same value


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the server (API, pages, WebSocket/SSE feeds, scheduler)",
                       description="Run the server: HTTP API, pages, feeds and the scheduler.")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1, env TICKER_HOST)")
    p.add_argument("--port", type=int, help="port to listen on (default 8080, env TICKER_PORT; "
                                            "0: any free port, printed at start)")
    p.add_argument("--print-config", action="store_true",
                   help="print the effective settings (secrets masked) and exit")
    p.set_defaults(run=run, overrides=lambda a: {"host": a.host, "port": a.port})


def http_url(sockname: tuple[Any, ...]) -> str:
    host, port = sockname[0], sockname[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def listen(host: str, port: int) -> list[socket.socket]:
    """Bind every address ``host`` names (as asyncio would), before the app starts: a port in
    use is a one-line error, and port 0 becomes one real port shared by all addresses."""
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CliError(f"cannot listen on {shown}: {str(exc.strerror).lower()}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(
                (i[0], i[1], i[2], i[3], i[4]) for i in infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(BACKLOG)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        reason = (exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))).lower()
        raise CliError(f"cannot listen on {shown}: {reason}") from None
    return sockets


def run(args: argparse.Namespace, settings: Settings) -> int:
    setup_logging(settings.logging.log_level, settings.logging.log_format)
    if args.print_config:
        # redact: a database URL may carry a password (postgresql://user:password@host).
        print(redact(json.dumps(settings.redacted(), indent=2)))
        return 0
    sockets = listen(settings.server.host, settings.server.port)
    # The first line a person reads, with the real port (also for port 0). The kernel already
    # queues connections, so a client that reads it and connects waits for startup instead of
    # being refused.
    urls = [http_url(sock.getsockname()) for sock in sockets]
    for url in urls:
        print(f"listening on {url}", flush=True)

    def started() -> None:
        log.info("started", extra={"listening": urls, "settings": settings.redacted()})
        if settings.server.mode == "demo":
            log.warning("running in demo mode: embedded defaults are in use; set TICKER_MODE="
                        "production for a real deployment")

    app = create_app(settings)
    # not web.run_app: requests aiohttp cannot parse are answered as JSON (ticker.web.server)
    try:
        server.run(app, sockets=sockets, started=started, backlog=BACKLOG, shutdown_timeout=5.0,
                   access_log=logging.getLogger("aiohttp.access"))
    finally:
        for sock in sockets:
            sock.close()
    sys.stdout.flush()
    return 0
