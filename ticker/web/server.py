"""Running the app: aiohttp's server, with requests it cannot parse refused as JSON.

aiohttp answers a request it cannot parse (a request line or a header over 8 KB, a NUL in a
header, too many headers) in its per-connection protocol handler, before routing and
middleware: with a ``text/plain`` 400 and an ERROR traceback in the log, per request, which
any unauthenticated client can repeat. Here such a request gets the error table's JSON and
status (414, 431 or 400), its access-log line is left out, and the log gets one warning per
:data:`REFUSAL_LOG_SECONDS` at most, counting the refusals in between.

aiohttp has no public hook for that answer: it is ``RequestHandler.handle_error``, and the
handler is built by ``Server.__call__``, which ``AppRunner`` makes. So the three are
subclassed, and :func:`run` runs the app as ``web.run_app`` does. The private names this
leans on (``AppRunner._make_server``, ``Server._kwargs`` and ``_loop``) have been stable
through aiohttp 3; tests/test_http_refusals.py fails if they stop working.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError, LineTooLong

from ticker.errors import ApiError, error_response

log = logging.getLogger("ticker.http")

REFUSAL_LOG_SECONDS = 10.0
# The two limits differ by two bytes so that a LineTooLong, which carries the limit it hit,
# tells an oversize request line (414) from an oversize header (431).
MAX_LINE_BYTES = 8190  # the request line: method, path and query (aiohttp's default)
MAX_FIELD_BYTES = 8192  # one header, name and value


class Refusals:
    """Logs refused requests as one warning per ``interval`` at most, with the count of
    those not logged since the previous line."""

    def __init__(self, logger: logging.Logger = log, interval: float = REFUSAL_LOG_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self.last: float | None = None
        self.suppressed = 0

    def note(self, err: ApiError, remote: str | None) -> None:
        now = self.clock()
        if self.last is not None and now - self.last < self.interval:
            self.suppressed += 1
            return
        self.logger.warning("refused a request that is not valid HTTP", extra={
            "code": err.code, "status": err.status, "remote": remote,
            "suppressed": self.suppressed, "suppressed_seconds": self.interval})
        self.last = now
        self.suppressed = 0


def refusal(exc: HttpProcessingError) -> ApiError:
    """The error-table answer to what aiohttp's parser raised (never echoing the input)."""
    if isinstance(exc, LineTooLong):
        if len(exc.args) > 1 and exc.args[1] == MAX_LINE_BYTES:
            return ApiError("uri_too_long")
        return ApiError("header_too_large")
    if isinstance(exc, BadHttpMessage) and exc.message == "Too many headers received":
        return ApiError("header_too_large")
    return ApiError("invalid_request", "The request is not valid HTTP/1.1.")


class RequestHandler(web.RequestHandler):
    """aiohttp's protocol handler, answering unparseable requests from the error table."""

    __slots__ = ("refusals", "refused")

    def __init__(self, manager: web.Server, refusals: Refusals, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.refusals = refusals
        self.refused: web.StreamResponse | None = None

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status >= 500 or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)  # a bug: traceback
        err = refusal(exc)
        self.refusals.note(err, request.remote)
        resp = error_response(err)
        resp.force_close()
        self.refused = resp
        return resp

    def log_access(self, request: web.BaseRequest, response: web.StreamResponse,
                   time: float | None) -> None:
        if response is not self.refused:  # refusals are counted by Refusals instead
            super().log_access(request, response, time)


class Server(web.Server):
    def __init__(self, *args: Any, refusals: Refusals, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refusals = refusals

    def __call__(self) -> RequestHandler:
        return RequestHandler(self, self.refusals, loop=self._loop, **self._kwargs)


class AppRunner(web.AppRunner):
    """``web.AppRunner`` whose connections use :class:`RequestHandler`."""

    def __init__(self, app: web.Application, *, refusals: Refusals | None = None,
                 **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.refusals = refusals or Refusals()

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return Server(made.request_handler, request_factory=made.request_factory,
                      handler_cancellation=made.handler_cancellation,
                      loop=asyncio.get_running_loop(), refusals=self.refusals, **made._kwargs)


async def _serve(app: web.Application, sockets: list[socket.socket], started: Callable[[], None],
                 backlog: int, **runner_args: Any) -> None:
    runner = AppRunner(app, handle_signals=True, max_line_size=MAX_LINE_BYTES,
                       max_field_size=MAX_FIELD_BYTES, **runner_args)
    try:
        await runner.setup()
    except BaseException:
        # A part failed to start (the broker unreachable): close those that did start, or
        # their threads (the database's) keep the process alive after the one-line error.
        await runner.cleanup()
        raise
    try:
        for sock in sockets:
            await web.SockSite(runner, sock, backlog=backlog).start()
        started()
        await asyncio.Event().wait()  # forever: until SIGINT or SIGTERM (GracefulExit)
    finally:
        await runner.cleanup()


def run(app: web.Application, *, sockets: list[socket.socket], started: Callable[[], None],
        backlog: int, shutdown_timeout: float, access_log: logging.Logger) -> None:
    """Serve ``app`` on ``sockets`` (bound and listening) until SIGINT or SIGTERM, then shut
    it down gracefully: the same steps as ``web.run_app`` (which cannot be given a runner).
    ``started`` is called once the app has started and the sockets are served."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve(app, sockets, started, backlog,
                                   shutdown_timeout=shutdown_timeout, access_log=access_log,
                                   keepalive_timeout=75.0))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        if not main.done():  # the app's cleanup runs in _serve while the rest still lives
            main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(main)
        rest = asyncio.all_tasks(loop)
        for task in rest:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)
