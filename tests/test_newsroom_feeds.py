"""Polling feeds against real HTTP origins on 127.0.0.1: RSS and Atom ingested once each,
conditional GETs, hostile documents and addresses refused, a broken feed isolated."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.feedfixtures import ATOM, BILLION_LAUGHS, EXTERNAL_ENTITY, RSS
from tests.support import ServerProcess
from ticker import appkeys
from ticker.app import create_app
from ticker.broker.memory import MemoryBroker
from ticker.feed.channels import Hub
from ticker.feed.names import feed_channels
from ticker.feed.publisher import Publisher
from ticker.metrics import Metrics
from ticker.net.addresses import Exempt
from ticker.net.client import PublicClient
from ticker.newsroom import store
from ticker.newsroom.feeds.poll import poll_feed
from ticker.newsroom.feeds.state import FeedState
from ticker.newsroom.ingest import Newsroom
from ticker.newsroom.migrations import MIGRATIONS as NEWSROOM
from ticker.settings import NewsFeedSettings, Settings
from ticker.storage import Database, open_database
from ticker.storage.migrations import MIGRATIONS
from ticker.web.tokens import create_token

BIG_BYTES = 50 * 1024 * 1024


@dataclass
class FeedOrigin:
    """An HTTP origin whose documents and answers the test sets; it records what it saw."""

    url: str = ""
    docs: dict[str, bytes] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    redirects: dict[str, str] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.seen.append((path, dict(request.headers)))
        if path in self.redirects:
            raise web.HTTPFound(self.redirects[path])
        if path == "/broken.xml":
            return web.Response(status=500, text="down")
        if path == "/big.xml":
            return await self.big(request)
        body = self.docs.get(path)
        if body is None:
            return web.Response(status=404)
        # RSS answers with an ETag, Atom with Last-Modified: both validators are exercised.
        etag, modified = f'"v{hash(body) & 0xffff}"', "Wed, 02 Dec 2026 08:00:00 GMT"
        if path.endswith(".rss") and request.headers.get("If-None-Match") == etag:
            return web.Response(status=304)
        if path.endswith(".atom") and request.headers.get("If-Modified-Since") == modified:
            return web.Response(status=304)
        headers = {"ETag": etag} if path.endswith(".rss") else {"Last-Modified": modified}
        return web.Response(body=body, headers=headers, content_type="application/xml")

    async def big(self, request: web.Request) -> web.StreamResponse:
        # Chunked, no Content-Length: only counting what arrives can stop it.
        resp = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await resp.prepare(request)
        chunk = b"<!-- " + b"x" * (64 * 1024 - 9) + b" -->"
        await resp.write(b'<?xml version="1.0"?><rss version="2.0"><channel>')
        with_sent = 0
        try:
            while with_sent < BIG_BYTES:
                await resp.write(chunk)
                with_sent += len(chunk)
            await resp.write(b"</channel></rss>")
        except (ConnectionError, RuntimeError):
            pass  # the client gave up: that is the point
        return resp

    def paths_seen(self) -> list[str]:
        return [p for p, _ in self.seen]


async def serve(origin: FeedOrigin) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", origin.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    origin.url = f"http://127.0.0.1:{port}"
    return runner


@pytest.fixture
async def origin() -> AsyncIterator[FeedOrigin]:
    o = FeedOrigin(docs={"/news.rss": RSS, "/news.atom": ATOM, "/lol.rss": BILLION_LAUGHS,
                         "/xxe.rss": EXTERNAL_ENTITY})
    runner = await serve(o)
    yield o
    await runner.cleanup()


class Rig:
    def __init__(self, db: Database, client: PublicClient) -> None:
        self.db = db
        self.client = client
        self.metrics = Metrics()
        self.hub = Hub(feed_channels([]), max_size=100, max_age=3600, clock=time.time)
        self.newsroom = Newsroom(db, Publisher(MemoryBroker(self.hub), self.metrics),
                                 "approve", lambda: None)
        self.states: dict[str, FeedState] = {}

    async def poll(self, feed: NewsFeedSettings, now: float | None = None) -> FeedState:
        state = self.states.setdefault(feed.name, FeedState(feed.name, "config"))
        await poll_feed(feed, state, self.client, self.newsroom, self.metrics, now)
        return state

    def published(self, channel: str = "headlines") -> list[dict[str, Any]]:
        ch = self.hub.channels.get(channel)
        return [] if ch is None else [dict(m.data) for m in ch.recent(100)]

    def errors(self, feed: str, reason: str) -> float:
        return self.metrics.registry.get_sample_value(
            "ticker_feed_errors_total", {"feed": feed, "reason": reason}) or 0.0


@pytest.fixture
async def rig(origin: FeedOrigin, tmp_path: Path) -> AsyncIterator[Rig]:
    db = await open_database(f"sqlite:///{tmp_path / 't.db'}", [*MIGRATIONS, *NEWSROOM])
    client = PublicClient(Exempt.parse([origin.url]))
    yield Rig(db, client)
    await client.close()
    await db.close()


def feed(origin: FeedOrigin, path: str, **kw: Any) -> NewsFeedSettings:
    return NewsFeedSettings(name=kw.pop("name", "f"), url=origin.url + path, **kw)


async def test_an_rss_feed_is_ingested_once_and_a_second_poll_is_conditional_and_silent(
        rig: Rig, origin: FeedOrigin) -> None:
    rss = feed(origin, "/news.rss", category="")
    state = await rig.poll(rss)
    assert state.last_error is None
    # Oldest first (the document lists the newest first): the newest ends on top.
    first = rig.published()[::-1]
    assert [m["guid"] for m in first] == ["rss-1", "https://news.example/no-guid"]
    assert first[0] == {
        "title": "Council approves & funds the new bridge", "url": "https://news.example/bridge",
        "summary": "The vote was 7 to 2.", "image": "https://img.example/bridge.jpg",
        "guid": "rss-1", "category": "local-news", "language": "en-gb",
        "published": "2026-12-02T08:00:00Z", "breaking": False}
    assert first[1]["image"] == "https://img.example/n.png"
    assert [m["guid"] for m in rig.published("headlines:en-gb")[::-1]] == [
        m["guid"] for m in first]
    assert [m["guid"] for m in rig.published("headlines:local-news")] == ["rss-1"]

    await rig.poll(rss)
    (_, headers), (_, again) = origin.seen
    assert "If-None-Match" not in headers and again["If-None-Match"] == state.etag
    assert len(rig.published()) == 2
    assert len(await store.recent(rig.db, 10)) == 2


async def test_an_atom_feed_is_ingested_once_with_its_language_and_a_last_modified_recheck(
        rig: Rig, origin: FeedOrigin) -> None:
    atom = feed(origin, "/news.atom", language="en")
    await rig.poll(atom)
    [item] = rig.published()
    assert item["title"] == "Le pont est voté" and item["summary"] == "Sept voix contre deux."
    assert (item["language"], item["category"]) == ("fr", "politique")
    await rig.poll(atom)
    assert origin.seen[1][1]["If-Modified-Since"] == "Wed, 02 Dec 2026 08:00:00 GMT"
    assert len(rig.published()) == 1


async def test_the_same_entries_from_another_document_publish_nothing_more(
        rig: Rig, origin: FeedOrigin) -> None:
    await rig.poll(feed(origin, "/news.rss"))
    origin.docs["/copy.rss"] = RSS + b"\n"  # a new ETag, the same entries
    await rig.poll(feed(origin, "/copy.rss", name="copy"))
    assert len(rig.published()) == 2


@pytest.mark.parametrize("path", ["/lol.rss", "/xxe.rss"])
async def test_entity_expansion_and_external_entities_are_refused(
        rig: Rig, origin: FeedOrigin, path: str) -> None:
    state = await rig.poll(feed(origin, path))
    assert state.last_error is not None and state.last_error.startswith("entities: refused")
    assert rig.errors("f", "entities") == 1
    assert rig.published() == [] and await store.recent(rig.db, 10) == []


async def test_a_feed_over_its_size_cap_is_refused_while_streaming(
        rig: Rig, origin: FeedOrigin) -> None:
    state = await rig.poll(feed(origin, "/big.xml", max_bytes=1024 * 1024))
    assert state.last_error == "too_large: body is over 1048576 bytes"
    assert rig.errors("f", "too_large") == 1


async def test_a_redirect_from_an_exempted_origin_to_another_loopback_port_is_refused(
        rig: Rig, origin: FeedOrigin) -> None:
    inner = FeedOrigin(docs={"/news.rss": RSS})
    runner = await serve(inner)
    try:
        origin.redirects["/moved.rss"] = inner.url + "/news.rss"
        state = await rig.poll(feed(origin, "/moved.rss"))
    finally:
        await runner.cleanup()
    assert state.last_error is not None and state.last_error.startswith("refused: ")
    assert inner.seen == [] and rig.published() == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
async def test_a_feed_at_a_private_address_that_is_not_exempted_is_never_requested(
        origin: FeedOrigin, tmp_path: Path, host: str) -> None:
    db = await open_database(f"sqlite:///{tmp_path / 't.db'}", [*MIGRATIONS, *NEWSROOM])
    client = PublicClient()  # nothing exempted
    try:
        r = Rig(db, client)
        port = origin.url.rsplit(":", 1)[1]
        state = await r.poll(NewsFeedSettings(name="f", url=f"http://{host}:{port}/news.rss"))
    finally:
        await client.close()
        await db.close()
    assert state.last_error is not None and state.last_error.startswith("refused: ")
    assert origin.seen == []


async def test_a_failing_feed_backs_off_and_a_good_one_beside_it_is_not_held_up(
        rig: Rig, origin: FeedOrigin) -> None:
    broken = feed(origin, "/broken.xml", name="broken", interval=60)
    good = feed(origin, "/news.rss", name="good")
    t0 = time.time()
    await asyncio.gather(rig.poll(broken, t0), rig.poll(good, t0))
    assert rig.states["broken"].last_error == "http_status: HTTP 500"
    assert len(rig.published()) == 2
    await rig.poll(broken, t0 + 60)  # second failure: the next try waits 2 intervals
    assert rig.states["broken"].failures == 2
    hits = origin.paths_seen().count("/broken.xml")
    await rig.poll(broken, t0 + 120)  # skipped: still backing off
    assert origin.paths_seen().count("/broken.xml") == hits
    await rig.poll(broken, t0 + 60 + 120)
    assert origin.paths_seen().count("/broken.xml") == hits + 1


# --------------------------------------------------------------------------- a real server


async def api(srv: ServerProcess, method: str, path: str, token: str,
              body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as client, client.request(
            method, srv.url + path, json=body,
            headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, (await resp.json() if resp.status != 204 else None)


async def test_hostile_feeds_added_by_an_admin_are_refused_within_bounded_memory_and_a_good_one_still_flows(  # noqa: E501
        origin: FeedOrigin, server_factory: Any) -> None:
    srv: ServerProcess = server_factory(env={"TICKER_FEEDS_ALLOW_PRIVATE": origin.url})
    admin = srv.create_token("admin", "ops")
    await asyncio.to_thread(srv.start)
    await asyncio.sleep(1.0)
    baseline = srv.rss_kib()
    for name, path in (("lol", "/lol.rss"), ("big", "/big.xml"), ("broken", "/broken.xml"),
                       ("good", "/news.rss")):
        status, _ = await api(srv, "POST", "/api/feeds", admin,
                              {"name": name, "url": origin.url + path, "interval": 2})
        assert status == 201
    health: dict[str, Any] = {}
    async with asyncio.timeout(30):
        while True:
            _, listed = await api(srv, "GET", "/api/feeds", admin)
            health = {f["name"]: f["health"] for f in listed["feeds"]}
            if all(h["status"] != "waiting" for h in health.values()):
                break
            await asyncio.sleep(0.3)
    assert health["good"]["status"] == "ok"
    assert health["lol"]["lastError"].startswith("entities")
    assert health["big"]["lastError"].startswith("too_large")
    assert health["broken"]["lastError"] == "http_status: HTTP 500"
    assert srv.rss_kib() - baseline < 20 * 1024, (baseline, srv.rss_kib())
    _, articles = await api(srv, "GET", "/api/articles", admin)
    assert {a["guid"] for a in articles["articles"]} == {"rss-1", "https://news.example/no-guid"}
    async with aiohttp.ClientSession() as client:
        async with client.get(srv.url + "/healthz") as resp:
            feeds = (await resp.json())["feeds"]
        async with client.get(srv.url + "/metrics") as resp:
            metrics = await resp.text()
    assert feeds["status"] == "degraded"
    assert {f["name"] for f in feeds["failing"]} == {"lol", "big", "broken"}
    assert 'ticker_feed_errors_total{feed="big",reason="too_large"}' in metrics
    async with asyncio.timeout(30):  # a second failure of the streak, for the log check
        while health["broken"]["consecutiveFailures"] < 2:
            await asyncio.sleep(0.5)
            _, listed = await api(srv, "GET", "/api/feeds", admin)
            health = {f["name"]: f["health"] for f in listed["feeds"]}
    status, _ = await api(srv, "DELETE", "/api/feeds/broken", admin)
    assert status == 204
    _, listed = await api(srv, "GET", "/api/feeds", admin)
    assert "broken" not in {f["name"] for f in listed["feeds"]}
    log = [json.loads(line) for line in srv.log().splitlines() if line.startswith("{")]
    failed = [e for e in log if e.get("feed") == "broken" and e.get("msg") == "feed poll failed"]
    assert len(failed) == 1  # once per streak, however many polls failed


async def test_a_feed_added_with_the_cli_is_picked_up_by_a_running_server_and_removed_too(
        origin: FeedOrigin, server_factory: Any) -> None:
    srv: ServerProcess = server_factory(env={"TICKER_FEEDS_ALLOW_PRIVATE": origin.url})
    editor = srv.create_token()
    await asyncio.to_thread(srv.start)
    added = await asyncio.to_thread(srv.cli, "feeds", "add", "atom", origin.url + "/news.atom",
                                    "--interval", "1", "--category", "politics")
    assert added.returncode == 0, added.stderr
    listed = await asyncio.to_thread(srv.cli, "feeds", "list")
    assert listed.stdout.split("\t")[:2] == ["atom", origin.url + "/news.atom"]
    async with asyncio.timeout(30):  # the sync runs every 10 s, the first poll right after
        while True:
            _, got = await api(srv, "GET", "/api/articles", editor)
            if got["articles"]:
                break
            await asyncio.sleep(0.3)
    assert [(a["guid"], a["category"]) for a in got["articles"]] == [("urn:atom:1", "politics")]
    removed = await asyncio.to_thread(srv.cli, "feeds", "remove", "atom")
    assert removed.returncode == 0, removed.stderr
    await asyncio.sleep(11)  # a sync later the job is gone: no request after that
    count = origin.paths_seen().count("/news.atom")
    await asyncio.sleep(2.5)
    assert origin.paths_seen().count("/news.atom") == count
    async with aiohttp.ClientSession() as client, client.get(srv.url + "/healthz") as resp:
        assert (await resp.json())["feeds"]["polled"] == 0


async def test_the_feeds_api_shows_configured_feeds_and_is_for_admins_only(
        origin: FeedOrigin, tmp_path: Path) -> None:
    configured = NewsFeedSettings(name="site", url=origin.url + "/news.rss", interval=60,
                                  language="en", category="local")
    app = create_app(Settings(data_dir=tmp_path, feeds=(configured,),
                              feeds_allow_private=(origin.url,)))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        db = app[appkeys.database]
        admin = {"Authorization": f"Bearer {await create_token(db, 'ops', 'admin')}"}
        editor = {"Authorization": f"Bearer {await create_token(db, 'desk', 'editor')}"}
        assert "headlines:local" in app[appkeys.hub].channels  # made at start, uncapped
        async with asyncio.timeout(15):
            while True:  # the first poll follows the start within a second
                if app[appkeys.feed_states]["site"].last_poll_at is not None:
                    break
                await asyncio.sleep(0.1)
        resp = await client.get("/api/feeds", headers=admin)
        [shown] = (await resp.json())["feeds"]
        assert (shown["name"], shown["origin"], shown["health"]["status"]) == (
            "site", "config", "ok")
        for method, path, body in (("GET", "/api/feeds", None),
                                   ("POST", "/api/feeds", {"name": "x", "url": origin.url}),
                                   ("DELETE", "/api/feeds/site", None)):
            resp = await client.request(method, path, json=body, headers=editor)
            assert resp.status == 403, (method, path)
            resp = await client.request(method, path, json=body)
            assert resp.status == 401, (method, path)
        resp = await client.post("/api/feeds", json={"name": "site", "url": origin.url},
                                 headers=admin)
        assert (resp.status, (await resp.json())["error"]["code"]) == (409, "feed_exists")
        resp = await client.delete("/api/feeds/site", headers=admin)
        assert (resp.status, (await resp.json())["error"]["code"]) == (404, "unknown_feed")
        resp = await client.post("/api/feeds", json={"name": "x", "url": "ftp://a"},
                                 headers=admin)
        assert (resp.status, (await resp.json())["error"]["code"]) == (400, "invalid_feed")
