"""One scheduler at a time: two real ``ticker serve`` nodes on one PostgreSQL schema, a
local feed (each node's config names it with its own query, so the feed's server sees
which node polled). Only the leader polls; SIGKILL it and the other takes over within 10 s:
the new feed item is published once, the old one not again, and a scheduled alert starts
once."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from subscribers import alerts
from subscribers.migrations import WITH_PLATFORM
from subscribers.validate import AlertIn
from tests.conftest import postgres_schema_url
from tests.support import ServerProcess
from ticker.cluster.leader import CHECK_SECONDS, Fixed, choose_lock
from ticker.storage import open_database

ITEM = ('<item><guid isPermaLink="false">{guid}</guid><title>{title}</title>'
        "<link>https://news.example/{guid}</link></item>")


class FeedOrigin:
    """A feed on 127.0.0.1 counting polls by the ``node`` query of each request."""

    def __init__(self) -> None:
        self.items = [ITEM.format(guid="one", title="Bridge opens")]
        self.polls: Counter[str] = Counter()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                origin.polls[self.path.partition("node=")[2]] += 1
                body = ('<?xml version="1.0"?><rss version="2.0"><channel><title>Local'
                        f"</title>{''.join(origin.items)}</channel></rss>").encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from postgres_schema_url()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def leads(node: ServerProcess) -> bool:
    return bool(get_json(node.url + "/healthz")["scheduler"]["leader"])


def wait_until(what: str, check: Any, within: float) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within, f"not within {within} s: {what}"
        time.sleep(0.1)
    return time.monotonic() - started


def node(tmp_path: Path, name: str, url: str, feed: FeedOrigin) -> ServerProcess:
    config = (f'[[feeds]]\nname = "local"\nurl = "{feed.url}/rss?node={name}"\n'
              "interval = 1\n")
    return ServerProcess(tmp_path / name, config=config, env={
        "TICKER_DATABASE_URL": url, "TICKER_FEEDS_ALLOW_PRIVATE": feed.url,
        "TICKER_LOG_LEVEL": "INFO"})


async def schedule_alert(url: str, at: float) -> int:
    db = await open_database(url, WITH_PLATFORM)
    try:
        alert = AlertIn(title="Polls close", body="", url="https://news.example/polls", icon="",
                        image="", tag="", topics=(), languages=(), urgency="normal",
                        ttl=3600, send_at=at)
        return (await alerts.create(db, alert, idempotency_key=None, created_by=None,
                                    now=time.time()))[0]
    finally:
        await db.close()


def titles(server: ServerProcess) -> list[str]:
    body = get_json(server.url + "/api/channels/headlines/messages")
    return [m["data"].get("title", "") for m in body["messages"]]


def test_killing_the_scheduler_leader_hands_feeds_and_scheduled_alerts_over_once(
        tmp_path: Path, pg_url: str) -> None:
    feed = FeedOrigin()
    a, b = node(tmp_path, "a", pg_url, feed), node(tmp_path, "b", pg_url, feed)
    try:
        a.start()
        b.start()
        assert (leads(a), leads(b)) == (True, False)
        wait_until("the leader polls the feed", lambda: feed.polls["a"] >= 2, 30)
        assert feed.polls["b"] == 0  # the other node's feed job waits
        assert titles(a).count("Bridge opens") == 1
        a.kill()  # SIGKILL: its lock connection dies with it
        feed.items.append(ITEM.format(guid="two", title="Ferry resumes"))
        alert_id = asyncio.run(schedule_alert(pg_url, time.time() + 2))
        took = wait_until("the other node leads", lambda: leads(b), 10)
        print(f"takeover after {took:.1f} s (checks every {CHECK_SECONDS:g} s)")
        wait_until("the new leader publishes the new item",
                   lambda: "Ferry resumes" in titles(b), 30)
        wait_until("the scheduled alert ends", lambda: asyncio.run(
            alert_status(pg_url, alert_id)) == "done", 60)
        time.sleep(2 * CHECK_SECONDS)  # polls go on: nothing may be published again
        assert titles(b).count("Ferry resumes") == 1
        assert "Bridge opens" not in titles(b)  # stored before: not an article again
        assert feed.polls["b"] >= 2
        started = [line for line in b.log().splitlines()
                   if "scheduled alert started" in line and f'"alert": {alert_id}' in line]
        assert len(started) == 1, started
        assert not any("scheduled alert started" in line for line in a.log().splitlines())
    finally:
        a.stop()
        b.stop()
        feed.close()


async def alert_status(url: str, alert_id: int) -> str:
    db = await open_database(url, WITH_PLATFORM)
    try:
        row = await alerts.get(db, alert_id)
        assert row is not None
        return str(row["status"])
    finally:
        await db.close()


@pytest.mark.parametrize(("url", "index", "leader"), [
    ("sqlite:///x.db", 0, True),  # a lone serve, or process 0 of serve --processes N
    ("sqlite:///x.db", 1, False),
    ("sqlite:///x.db", 3, False),
])
def test_on_sqlite_process_zero_leads(url: str, index: int, leader: bool) -> None:
    lock = choose_lock(url, index)
    assert isinstance(lock, Fixed) and lock.leads is leader


async def test_two_postgresql_locks_on_one_schema_give_one_leader_and_release_on_close(
        pg_url: str) -> None:
    first, second = choose_lock(pg_url), choose_lock(pg_url)
    try:
        assert (await first.check(), await second.check()) == (True, False)
        assert await first.check()  # kept while its connection lives
        await first.close()
        assert await second.check()
    finally:
        await first.close()
        await second.close()


async def test_an_unreachable_lock_database_means_not_leading() -> None:
    lock = choose_lock("postgresql://127.0.0.1:1/x")
    try:
        assert await lock.check() is False
    finally:
        await lock.close()
