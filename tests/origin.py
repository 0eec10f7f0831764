"""A local HTTP origin serving a JHU CSSE daily report, for data-source tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestServer

HEADER = ("FIPS,Admin2,Province_State,Country_Region,Last_Update,Lat,Long_,"
          "Confirmed,Deaths,Recovered,Active,Combined_Key,Incident_Rate,Case_Fatality_Ratio\n")
GOOD = (HEADER
        + '1001,Autauga,Alabama,US,2021-07-19 04:20:45,32.5,-86.6,7269,113,,7156,'
          '"Autauga, Alabama, US",13010.9,1.55\n'
        + ",,,Afghanistan,2021-07-19 04:21:10,33.9,67.7,140224,6113,82586,51525,"
          "Afghanistan,360.2,4.36\n").encode()
VALUES = {"confirmed": 147493, "deaths": 6226, "recovered": 82586}
MALFORMED = GOOD.replace(b",140224,", b",n/a,")


class Origin:
    def __init__(self) -> None:
        self.body = GOOD
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(body=self.body, content_type="text/csv")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve_get(path: str, handler: Handler) -> tuple[TestServer, str]:
    """A real HTTP server on 127.0.0.1 answering GET ``path``; returns it and the URL."""
    app = web.Application()
    app.router.add_get(path, handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server, str(server.make_url(path))


async def start_origin() -> tuple[Origin, TestServer]:
    o = Origin()
    server, o.url = await serve_get("/07-18-2021.csv", o.handle)
    return o, server


