"""Polling a source against a real HTTP origin on 127.0.0.1, publishing through a real hub."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from tests.origin import serve_get
from ticker import appkeys
from ticker.app import create_app
from ticker.broker.memory import MemoryBroker
from ticker.feed.channels import Hub, Message
from ticker.feed.publisher import Publisher
from ticker.metrics import Metrics
from ticker.net.addresses import Exempt
from ticker.net.client import PublicClient
from ticker.settings import Settings, SourceSettings
from ticker.sources.poller import SourceState, poll_source

CHANNEL = "data:covid19"
HEADER = "Province_State,Country_Region,Last_Update,Confirmed,Deaths,Recovered\n"
GOOD = (HEADER + "Hubei,China,2021-07-19 04:20:45,100,10,50\n"
        ",Japan,2021-07-19 04:21:10,20,2,\n").encode()
GOOD_VALUES = {"confirmed": 120, "deaths": 12, "recovered": 50}
NEWER = GOOD.replace(b",20,2,", b",25,3,")
MALFORMED = (HEADER + "Hubei,China,2021-07-19 04:20:45,lots,10,50\n").encode()


class Origin:
    """A real HTTP server whose answer each test sets between polls."""

    def __init__(self) -> None:
        self.body = GOOD
        self.status = 200
        self.etag: str | None = None
        self.last_modified: str | None = None
        self.headers_delay = 0.0  # before the status line
        self.body_delay = 0.0  # after the first part of the body
        self.chunked = False  # no Content-Length
        self.requests: list[dict[str, str]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(dict(request.headers))
        await asyncio.sleep(self.headers_delay)
        if self.status >= 400:
            return web.Response(status=self.status, body=self.body)
        if self.etag is not None and request.headers.get("If-None-Match") == self.etag:
            return web.Response(status=304, headers={"ETag": self.etag})
        if (self.last_modified is not None
                and request.headers.get("If-Modified-Since") == self.last_modified):
            return web.Response(status=304)
        headers = {"Content-Type": "text/csv"}
        if self.etag is not None:
            headers["ETag"] = self.etag
        if self.last_modified is not None:
            headers["Last-Modified"] = self.last_modified
        if not self.chunked and not self.body_delay:
            return web.Response(status=self.status, body=self.body, headers=headers)
        resp = web.StreamResponse(status=self.status, headers=headers)
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        half = len(self.body) // 2
        for part in (self.body[:half], self.body[half:]):
            await resp.write(part)
            await asyncio.sleep(self.body_delay)
        await resp.write_eof()
        return resp


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    o = Origin()
    server, o.url = await serve_get("/daily.csv", o.handle)
    yield o
    await server.close()


class Rig:
    """The poller's real collaborators: client session, hub, publisher and metrics."""

    def __init__(self, source: SourceSettings, client: PublicClient) -> None:
        self.source = source
        self.client = client
        self.metrics = Metrics()
        self.hub = Hub([CHANNEL], max_size=50, max_age=3600, clock=time.time)
        self.publisher = Publisher(MemoryBroker(self.hub), self.metrics)
        self.state = SourceState(source.name)

    async def poll(self) -> None:
        await poll_source(self.source, self.state, self.client, self.publisher, self.metrics)

    @property
    def published(self) -> list[dict[str, Any]]:
        return [dict(m.data) for m in self.hub.channels[CHANNEL].recent(50)]

    def count(self, metric: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(
            metric, {"source": self.source.name, **labels})
        return value or 0.0

    def errors(self, reason: str) -> float:
        return self.count("ticker_source_fetch_errors_total", reason=reason)

    def fetches(self, outcome: str) -> float:
        return self.count("ticker_source_fetches_total", outcome=outcome)


@pytest.fixture
async def rig(origin: Origin) -> AsyncIterator[Rig]:
    source = SourceSettings(name="covid19", url=origin.url, format="jhu-csse-daily",
                            interval=60, attribution="JHU CSSE", timeout=0.5, max_bytes=4096)
    # The origin is on loopback: exempted, as an operator would with feeds_allow_private
    # (and port 9, where nothing listens, for the network-error case).
    client = PublicClient(Exempt.parse([str(URL(origin.url).origin()), "http://127.0.0.1:9"]))
    try:
        yield Rig(source, client)
    finally:
        await client.close()


def fresh(values: dict[str, int] = GOOD_VALUES, stale: bool = False) -> dict[str, Any]:
    return {"source": "covid19", "values": values, "as_of": "2021-07-19T04:21:10Z",
            "attribution": "JHU CSSE", "stale": stale}


async def test_first_fetch_publishes_the_summed_values(rig: Rig) -> None:
    await rig.poll()
    assert rig.published == [fresh()]
    assert rig.state.values == GOOD_VALUES and not rig.state.stale
    assert rig.fetches("changed") == 1


async def test_unchanged_values_are_not_republished(rig: Rig, origin: Origin) -> None:
    await rig.poll()
    await rig.poll()
    assert rig.published == [fresh()]
    assert rig.fetches("unchanged") == 1
    origin.body = NEWER
    await rig.poll()
    assert [p["values"]["confirmed"] for p in rig.published] == [120, 125]


@pytest.mark.parametrize(
    ("etag", "last_modified", "sent"),
    [
        ('"v1"', None, ("If-None-Match", '"v1"')),
        (None, "Mon, 19 Jul 2021 04:25:00 GMT",
         ("If-Modified-Since", "Mon, 19 Jul 2021 04:25:00 GMT")),
    ],
    ids=["etag", "last-modified"],
)
async def test_conditional_get_gets_304_and_publishes_nothing(
    rig: Rig, origin: Origin, etag: str | None, last_modified: str | None,
    sent: tuple[str, str],
) -> None:
    origin.etag, origin.last_modified = etag, last_modified
    await rig.poll()
    await rig.poll()
    assert sent[0] not in origin.requests[0]
    assert origin.requests[1][sent[0]] == sent[1]
    assert rig.published == [fresh()]
    assert rig.fetches("not_modified") == 1


FAILURES = ["malformed", "http_status", "timeout", "slow_body"]


def break_origin(origin: Origin, how: str) -> str:
    """Make the origin fail in one way; returns the reason the poller should give."""
    if how == "malformed":
        origin.body = MALFORMED
    elif how == "http_status":
        origin.status = 500
        origin.body = b"oops"
    elif how == "timeout":
        origin.headers_delay = 2.0
    elif how == "slow_body":
        origin.body_delay = 2.0
        return "timeout"
    return how


@pytest.mark.parametrize("how", FAILURES)
async def test_failure_keeps_the_last_value_marks_it_stale_once_and_counts(
    rig: Rig, origin: Origin, how: str, caplog: pytest.LogCaptureFixture,
) -> None:
    await rig.poll()
    reason = break_origin(origin, how)
    caplog.set_level(logging.WARNING, logger="ticker.sources")
    await rig.poll()
    await rig.poll()
    assert rig.published == [fresh(), fresh(stale=True)]
    assert rig.state.stale and rig.state.values == GOOD_VALUES
    assert rig.errors(reason) == 2
    assert rig.fetches("error") == 2
    warnings = [r for r in caplog.records if r.name == "ticker.sources"]
    assert len(warnings) == 2
    assert {(getattr(r, "source", None), getattr(r, "reason", None)) for r in warnings} == {
        ("covid19", reason)}


async def test_failure_before_any_good_value_publishes_unavailable_once_then_the_value(
        rig: Rig, origin: Origin) -> None:
    origin.body = MALFORMED
    await rig.poll()
    await rig.poll()
    # Widgets learn the figures are unavailable (and whose they are), once.
    unavailable = {"source": "covid19", "values": {}, "as_of": None,
                   "attribution": "JHU CSSE", "stale": True}
    assert rig.published == [unavailable]
    assert rig.errors("malformed") == 2
    assert rig.state.last_error is not None and "not a whole number" in rig.state.last_error
    assert rig.state.failure() == f"never fetched successfully: {rig.state.last_error}"
    origin.body = GOOD
    await rig.poll()
    assert rig.published == [unavailable, fresh()]
    assert rig.state.failure() is None


@pytest.mark.parametrize("chunked", [True, False], ids=["no-content-length", "content-length"])
async def test_oversize_body_is_refused(rig: Rig, origin: Origin, chunked: bool) -> None:
    await rig.poll()
    origin.chunked = chunked
    origin.body = GOOD + b",Padding,2021-07-19 04:21:10,0,0,0\n" * 200  # about 7 KB > 4 KiB
    await rig.poll()
    assert rig.published == [fresh(), fresh(stale=True)]
    assert rig.errors("too_large") == 1


async def test_network_error_is_counted_as_such(rig: Rig, origin: Origin) -> None:
    await rig.poll()
    rig.source = SourceSettings.model_validate(
        {**rig.source.model_dump(), "url": "http://127.0.0.1:9/daily.csv"})
    await rig.poll()
    assert rig.published == [fresh(), fresh(stale=True)]
    assert rig.errors("network") == 1


async def test_a_source_at_a_private_address_that_is_not_exempted_is_never_requested(
        origin: Origin) -> None:
    source = SourceSettings(name="covid19", url=origin.url.replace("127.0.0.1", "localhost"),
                            format="jhu-csse-daily", attribution="JHU CSSE", timeout=2)
    client = PublicClient()
    try:
        rig = Rig(source, client)
        await rig.poll()
    finally:
        await client.close()
    assert origin.requests == [] and rig.errors("refused") == 1
    assert rig.state.last_error is not None and "private or local" in rig.state.last_error


async def test_recovery_publishes_the_good_value_fresh_again(rig: Rig, origin: Origin) -> None:
    await rig.poll()
    origin.body = MALFORMED
    await rig.poll()
    origin.body = GOOD
    await rig.poll()
    await rig.poll()
    assert rig.published == [fresh(), fresh(stale=True), fresh()]
    assert rig.state.last_error is None


async def test_304_after_a_failure_makes_the_value_fresh_again(rig: Rig, origin: Origin) -> None:
    origin.etag = '"v1"'
    await rig.poll()
    origin.status = 500
    await rig.poll()
    origin.status = 200
    await rig.poll()
    assert origin.requests[-1]["If-None-Match"] == '"v1"'
    assert rig.published == [fresh(), fresh(stale=True), fresh()]


async def test_a_malformed_documents_validators_are_not_kept(rig: Rig, origin: Origin) -> None:
    origin.etag = '"v1"'
    await rig.poll()
    origin.etag, origin.body = '"v2"', MALFORMED
    await rig.poll()
    await rig.poll()
    # Asking "still v2?" would turn the broken document into a fresh-looking 304.
    assert [r.get("If-None-Match") for r in origin.requests] == [None, '"v1"', '"v1"']
    assert rig.published == [fresh(), fresh(stale=True)]


async def test_app_polls_sources_before_serving_and_schedules_them(
    origin: Origin, tmp_path: Path
) -> None:
    source = SourceSettings(name="covid19", url=origin.url, format="jhu-csse-daily",
                            interval=60, attribution="JHU CSSE", timeout=2)
    app = create_app(Settings(data_dir=tmp_path, sources=(source,),
                              feeds_allow_private=(str(URL(origin.url).origin()),)))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        assert len(origin.requests) == 1
        state = app[appkeys.source_states]["covid19"]
        assert state.values == GOOD_VALUES
        last = app[appkeys.hub].channels[CHANNEL].last()
        assert last is not None and last.data == fresh()
        job = app[appkeys.scheduler].get_job("source:covid19")
        assert (job.max_instances, job.coalesce) == (1, True)
    finally:
        await server.close()


class FlakyPublisher(Publisher):
    """A real publisher whose broker refuses the first message (a scaled-out broker down)."""

    failures = 1

    async def publish(self, channel: str, data: Mapping[str, Any]) -> Message:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker unavailable")
        return await super().publish(channel, data)


async def test_a_poll_that_cannot_publish_does_not_raise_and_publishes_next_time(
    rig: Rig, origin: Origin
) -> None:
    origin.etag = '"v1"'
    rig.publisher = FlakyPublisher(MemoryBroker(rig.hub), rig.metrics)
    await rig.poll()
    assert rig.published == [] and rig.state.payload is None
    assert rig.errors("internal") == 1
    await rig.poll()
    # The validators were not kept either, so the document is fetched whole again.
    assert [r.get("If-None-Match") for r in origin.requests] == [None, None]
    assert rig.published == [fresh()]


async def test_json_source_publishes_the_picked_numbers_with_its_own_time(
    rig: Rig, origin: Origin
) -> None:
    rig.source = SourceSettings.model_validate(
        {**rig.source.model_dump(), "format": "json", "attribution": "Example",
         "fields": {"ftse": "indices.0.last"}, "as_of": "updated"})
    origin.body = b'{"updated": "2021-07-19T16:35:00Z", "indices": [{"last": 6844.39}]}'
    await rig.poll()
    assert rig.published == [{"source": "covid19", "values": {"ftse": 6844.39},
                              "as_of": "2021-07-19T16:35:00Z", "attribution": "Example",
                              "stale": False}]
