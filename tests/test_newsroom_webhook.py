"""``POST /api/articles`` on a real ``ticker serve``: a signed article reaches WebSocket
clients of ``headlines``, ``headlines:<language>`` and ``headlines:<category>``; every kind of
refused request stores nothing and publishes nothing."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.support import ServerProcess
from ticker.newsroom.signature import sign

SECRET = "whsec-test-1"
ARTICLE = {"guid": "cms-1001", "url": "https://news.example/a/1001", "title": "Dam holds",
           "summary": "Engineers say the dam will hold.", "category": "world", "language": "en",
           "tags": ["floods"], "published": "2026-12-02T09:30:00Z"}


@pytest.fixture
def srv(server_factory: Any) -> ServerProcess:
    server: ServerProcess = server_factory(env={"TICKER_WEBHOOK_SECRET": SECRET})
    server.token = server.create_token()  # type: ignore[attr-defined]
    return server.start()


def rows(server: ServerProcess, table: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(server.data_dir / "ticker.db") as db:
        return list(db.execute(f"SELECT * FROM {table}"))


async def post(server: ServerProcess, body: bytes, headers: dict[str, str]
               ) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as client, client.post(
            server.url + "/api/articles", data=body,
            headers={"Content-Type": "application/json", **headers}) as resp:
        return resp.status, await resp.json()


def signed(body: bytes, at: float | None = None, secret: str = SECRET) -> dict[str, str]:
    return {"X-Ticker-Signature": sign(secret, int(time.time() if at is None else at), body)}


@pytest.fixture
async def ws(srv: ServerProcess) -> AsyncIterator[ClientConnection]:
    async with connect(srv.ws_url) as conn:
        await conn.send(json.dumps({"type": "subscribe", "channels": [
            "headlines", "headlines:en", "headlines:world"]}))
        seen = set()
        async with asyncio.timeout(10):
            while len(seen) < 3:
                frame = json.loads(await conn.recv())
                assert frame["type"] == "subscribed", frame
                seen.add(frame["channel"])
        yield conn


async def messages(conn: ClientConnection, within: float) -> list[dict[str, Any]]:
    out = []
    try:
        async with asyncio.timeout(within):
            while True:
                frame = json.loads(await conn.recv())
                if frame["type"] == "message":
                    out.append(frame)
    except TimeoutError:
        pass
    return out


async def test_a_signed_article_reaches_headlines_and_its_language_and_category_within_a_second(
        srv: ServerProcess, ws: ClientConnection) -> None:
    body = json.dumps(ARTICLE).encode()
    sent = time.monotonic()
    status, answer = await post(srv, body, signed(body))
    assert status == 201 and answer["result"] == "created", answer
    got: dict[str, dict[str, Any]] = {}
    async with asyncio.timeout(1.0):
        while len(got) < 3:
            frame = json.loads(await ws.recv())
            if frame["type"] == "message":
                got[frame["channel"]] = frame["data"]
    assert time.monotonic() - sent < 1.0
    assert set(got) == {"headlines", "headlines:en", "headlines:world"}
    assert got["headlines"] == {
        "title": "Dam holds", "url": "https://news.example/a/1001",
        "summary": "Engineers say the dam will hold.", "guid": "cms-1001",
        "category": "world", "language": "en", "published": "2026-12-02T09:30:00Z",
        "breaking": False}
    assert answer["article"]["guid"] == "cms-1001" and answer["article"]["approval"] is None


async def test_the_same_article_again_is_unchanged_and_a_new_title_is_published_again(
        srv: ServerProcess, ws: ClientConnection) -> None:
    token = {"Authorization": f"Bearer {srv.token}"}  # type: ignore[attr-defined]
    body = json.dumps(ARTICLE).encode()
    assert (await post(srv, body, token))[0] == 201
    assert len(await messages(ws, 1.0)) == 3
    status, answer = await post(srv, body, token)
    assert (status, answer["result"]) == (200, "unchanged")
    assert await messages(ws, 1.0) == []
    edited = json.dumps({**ARTICLE, "title": "Dam holds, for now"}).encode()
    status, answer = await post(srv, edited, token)
    assert (status, answer["result"]) == (200, "updated")
    again = await messages(ws, 1.0)
    assert {m["data"]["title"] for m in again} == {"Dam holds, for now"} and len(again) == 3
    assert len(rows(srv, "articles")) == 1
    async with aiohttp.ClientSession() as client, client.get(
            srv.url + "/api/articles?limit=5", headers=token) as resp:
        listed = await resp.json()
    assert [a["title"] for a in listed["articles"]] == ["Dam holds, for now"]


@pytest.mark.parametrize(("case", "code", "status"), [
    ("bad signature", "invalid_signature", 401),
    ("wrong secret", "invalid_signature", 401),
    ("stale timestamp", "stale_signature", 401),
    ("future timestamp", "stale_signature", 401),
    ("malformed header", "invalid_signature", 401),
    ("malformed body", "invalid_article", 400),
    ("not JSON", "bad_json", 400),
    ("private image url", "invalid_article", 400),
    ("no credentials", "unauthorized", 401),
])
async def test_refused_requests_store_nothing_and_publish_nothing(
        srv: ServerProcess, ws: ClientConnection, case: str, code: str, status: int) -> None:
    body = json.dumps(ARTICLE).encode()
    now = time.time()
    headers = {
        "bad signature": {"X-Ticker-Signature": f"t={int(now)},v1={'0' * 64}"},
        "wrong secret": signed(body, secret="not-the-secret"),
        "stale timestamp": signed(body, at=now - 301),
        "future timestamp": signed(body, at=now + 400),
        "malformed header": {"X-Ticker-Signature": "v1=abc"},
        "no credentials": {},
    }.get(case)
    if case == "malformed body":
        body = json.dumps({**ARTICLE, "url": "javascript:alert(1)", "title": ""}).encode()
    elif case == "not JSON":
        body = b"{nope"
    elif case == "private image url":
        body = json.dumps({**ARTICLE, "image": "file:///etc/passwd"}).encode()
    got, answer = await post(srv, body, headers if headers is not None else signed(body))
    assert (got, answer["error"]["code"]) == (status, code), answer
    assert await messages(ws, 1.0) == []
    assert rows(srv, "articles") == [] and rows(srv, "webhook_signatures") == []


async def test_a_replayed_signature_is_refused_and_changes_nothing(
        srv: ServerProcess, ws: ClientConnection) -> None:
    body = json.dumps(ARTICLE).encode()
    headers = signed(body)
    assert (await post(srv, body, headers))[0] == 201
    assert len(await messages(ws, 1.0)) == 3
    before = (rows(srv, "articles"), rows(srv, "webhook_signatures"))
    status, answer = await post(srv, body, headers)
    assert (status, answer["error"]["code"]) == (409, "replayed_signature")
    assert await messages(ws, 1.0) == []
    assert (rows(srv, "articles"), rows(srv, "webhook_signatures")) == before
    assert SECRET not in srv.log()


async def test_an_oversize_body_is_refused_before_anything_is_read_into_an_article(
        srv: ServerProcess) -> None:
    body = json.dumps({**ARTICLE, "summary": "x" * 70_000}).encode()
    status, answer = await post(srv, body, signed(body))
    assert (status, answer["error"]["code"]) == (413, "body_too_large")
    assert rows(srv, "articles") == []
