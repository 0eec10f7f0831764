"""``ticker serve``: the server."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import os
import signal
import socket
import sys
from typing import Any

from ticker import appkeys
from ticker.app import create_app
from ticker.cli.errors import CliError
from ticker.cluster.processes import Supervisor
from ticker.logs import redact, setup_logging
from ticker.settings import Settings
from ticker.storage import StorageError, open_database
from ticker.storage.migrations import Migration
from ticker.web import server

log = logging.getLogger("ticker.serve")
BACKLOG = 128  # aiohttp's default; it listens again on these sockets with the same value
SHUTDOWN_SECONDS = 5.0  # open requests get this long to finish on SIGTERM


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the server (API, pages, WebSocket/SSE feeds, scheduler)",
                       description="Run the server: HTTP API, pages, feeds and the scheduler.")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1, env TICKER_HOST)")
    p.add_argument("--port", type=int, help="port to listen on (default 8080, env TICKER_PORT; "
                                            "0: any free port, printed at start)")
    p.add_argument("--processes", type=int, metavar="N",
                   help="server processes sharing the port (default 1, env TICKER_PROCESSES; "
                        "above 1 needs a redis:// broker)")
    p.add_argument("--print-config", action="store_true",
                   help="print the effective settings (secrets masked) and exit")
    p.set_defaults(run=run, overrides=lambda a: {"host": a.host, "port": a.port,
                                                      "processes": a.processes})


def http_url(sockname: tuple[Any, ...]) -> str:
    host, port = sockname[0], sockname[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def listen(host: str, port: int, *, reuse_port: bool = False,
           backlog: int | None = BACKLOG) -> list[socket.socket]:
    """Bind every address ``host`` names (as asyncio would), before the app starts: a port in
    use is a one-line error, and port 0 becomes one real port shared by all addresses.
    ``reuse_port``: for ``--processes N`` (each process binds the port again); ``backlog``
    None binds without listening (the supervisor only holds the port)."""
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
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            if backlog is not None:
                sock.listen(backlog)
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
    if settings.server.processes > 1:
        return supervise(settings)
    sockets = listen(settings.server.host, settings.server.port)
    # The first line a person reads, with the real port (also for port 0). The kernel already
    # queues connections, so a client that reads it and connects waits for startup instead of
    # being refused.
    announce(sockets)
    return serve(settings, sockets, 0)


def announce(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        print(f"listening on {http_url(sock.getsockname())}", flush=True)


def serve(settings: Settings, sockets: list[socket.socket], process_index: int) -> int:
    urls = [http_url(sock.getsockname()) for sock in sockets]

    def started() -> None:
        log.info("started", extra={"listening": urls, "settings": settings.redacted(),
                                   "process_index": process_index, "pid": os.getpid()})
        if settings.server.mode == "demo" and process_index == 0:
            log.warning("running in demo mode: embedded defaults are in use; set TICKER_MODE="
                        "production for a real deployment")

    app = create_app(settings, process_index=process_index)
    # not web.run_app: requests aiohttp cannot parse are answered as JSON (ticker.web.server)
    try:
        server.run(app, sockets=sockets, started=started, backlog=BACKLOG,
                   shutdown_timeout=SHUTDOWN_SECONDS,
                   access_log=logging.getLogger("aiohttp.access"))
    finally:
        for sock in sockets:
            sock.close()
    sys.stdout.flush()
    return 0


def supervise(settings: Settings) -> int:
    """``--processes N``: hold the port, start N servers on it, keep them alive."""
    if settings.storage.broker_url.startswith("memory://"):
        raise CliError(f"--processes {settings.server.processes} needs a shared broker: "
                       "memory:// keeps the feed inside one process; set "
                       "TICKER_BROKER_URL=redis://host:6379/0")
    held = listen(settings.server.host, settings.server.port, reuse_port=True, backlog=None)
    host, port = settings.server.host, held[0].getsockname()[1]
    # Migrate once, here, rather than N processes racing to (SQLite has no migration lock);
    # a database that cannot be reached stops everything with one line.
    asyncio.run(_migrate(settings))
    supervisor = Supervisor(settings.server.processes,
                            lambda index: _fork(settings, host, port, index),
                            stop_seconds=SHUTDOWN_SECONDS + 10)
    supervisor.start()
    announce(held)  # every child listens now: connections queue until they serve
    try:
        supervisor.run()
    finally:
        for sock in held:
            sock.close()
    return 0


async def _migrate(settings: Settings) -> None:
    migrations: list[Migration] = create_app(settings)[appkeys.migrations]
    db = await open_database(settings.storage.database_url_resolved, migrations)
    await db.close()


def _fork(settings: Settings, host: str, port: int, index: int) -> int:
    """Start server process ``index``; returns once it listens (or has died)."""
    ready, tell = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a whole server of its own; never returns
        os.close(ready)
        code = 1
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            sockets = listen(host, port, reuse_port=True)
            os.write(tell, b"1")
            os.close(tell)
            code = serve(settings, sockets, index)
        except (CliError, StorageError, OSError) as exc:
            print(f"ticker: error: process {index}: {exc}", file=sys.stderr, flush=True)
        except BaseException:
            log.exception("server process failed", extra={"process_index": index})
        finally:
            os._exit(code)
    os.close(tell)
    with os.fdopen(ready, "rb") as pipe:
        pipe.read(1)  # b"" when it died before listening: the supervisor restarts it
    return pid
