"""A reader's page in real Chromium: headlines posted through the CMS webhook during the test
appear in the widget, on ``headlines`` and on one category's ``headlines:<category>``."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from tests.support import ServerProcess
from ticker.newsroom.signature import sign

pytestmark = pytest.mark.browser

SECRET = "whsec-browser"
LIVE_TIMEOUT_MS = 10_000
DELIVERY_TIMEOUT_MS = 2_500


@pytest.fixture
def srv(server_factory: Any) -> ServerProcess:
    server: ServerProcess = server_factory(env={"TICKER_WEBHOOK_SECRET": SECRET})
    return server.start()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    await context.close()
    assert errors == [], errors


async def post_article(server: ServerProcess, article: dict[str, Any]) -> None:
    body = json.dumps(article).encode()
    async with aiohttp.ClientSession() as http, http.post(
            server.url + "/api/articles", data=body,
            headers={"Content-Type": "application/json",
                     "X-Ticker-Signature": sign(SECRET, int(time.time()), body)}) as resp:
        assert resp.status == 201, await resp.text()


async def test_a_headline_posted_through_the_webhook_shows_in_the_readers_widget(
        page: Page, srv: ServerProcess) -> None:
    await page.goto(srv.url + "/")
    await expect(page.locator("ticker-widget")).to_have_attribute(
        "data-state", "live", timeout=LIVE_TIMEOUT_MS)
    await post_article(srv, {"guid": "w-1", "url": "https://news.example/w1",
                             "title": "Posted by the CMS", "summary": "Through the webhook.",
                             "category": "local", "language": "en"})
    item = page.locator("ticker-widget .headline").first
    await expect(item.locator(".headline-link")).to_have_text(
        "Posted by the CMS", timeout=DELIVERY_TIMEOUT_MS)
    await expect(item.locator(".headline-link")).to_have_attribute(
        "href", "https://news.example/w1")
    await expect(item.locator(".headline-summary")).to_have_text("Through the webhook.")


async def test_a_widget_on_one_category_shows_only_that_categorys_articles(
        page: Page, srv: ServerProcess) -> None:
    async def fulfil(route: Any) -> None:
        await route.fulfill(status=200, content_type="text/html", body=f"""<!doctype html>
            <html><body><h1>Sport</h1>
            <script src="{srv.url}/widget.js" data-channels="headlines:sport" async></script>
            </body></html>""")

    # Subscribed before any sport article exists: the channel is made when named.
    await page.route(srv.url + "/sport.html", fulfil)
    await page.goto(srv.url + "/sport.html")
    await expect(page.locator("ticker-widget")).to_have_attribute(
        "data-state", "live", timeout=LIVE_TIMEOUT_MS)
    await post_article(srv, {"guid": "w-2", "url": "https://news.example/w2",
                             "title": "Not sport", "category": "politics"})
    await post_article(srv, {"guid": "w-3", "url": "https://news.example/w3",
                             "title": "Cup final tonight", "category": "sport"})
    items = page.locator("ticker-widget .headline")
    await expect(items).to_have_count(1, timeout=DELIVERY_TIMEOUT_MS)
    await expect(items.first.locator(".headline-link")).to_have_text("Cup final tonight")
    # A fresh page refetches the category's history over HTTP.
    await page.reload()
    await expect(page.locator("ticker-widget .headline-link")).to_have_text(
        ["Cup final tonight"], timeout=LIVE_TIMEOUT_MS)
