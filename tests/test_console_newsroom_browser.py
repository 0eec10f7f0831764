"""The newsroom end to end in real Chromium: a CMS posts an article through the signed
webhook while a reader's page is open and an editor is logged in to ``/editor``; the
reader's widget shows the headline, the editor sees the article arrive, pushes it to one
topic after reading the preview and the audience size, and watches the live counts reach
exactly that audience, which the push-service stand-in (VAPID verified, payload decrypted)
confirms.

``TICKER_UPDATE_SCREENSHOTS=1`` also writes docs/img/editor.png (the README's picture of the
console); CI leaves it alone."""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from subscribers.testing import PushServiceStandIn
from tests.consolehelpers import PASSWORD, add_user
from tests.support import ServerProcess
from tests.test_push_server import ready, subscribe_all
from ticker.newsroom.signature import sign

pytestmark = pytest.mark.browser

SECRET = "whsec-e2e"
TIMEOUT_MS = 15_000
IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
ARTICLE = {"guid": "e2e-1", "url": "https://news.example/derby", "title": "Derby ends 3-2",
           "summary": "A late winner settles it.", "category": "sport", "language": "en"}


@pytest.fixture
async def standin() -> AsyncIterator[PushServiceStandIn]:
    async with PushServiceStandIn() as ps:
        yield ps


async def post_article(server: ServerProcess, article: dict[str, Any]) -> None:
    body = json.dumps(article).encode()
    async with aiohttp.ClientSession() as http, http.post(
            server.url + "/api/articles", data=body,
            headers={"Content-Type": "application/json",
                     "X-Ticker-Signature": sign(SECRET, int(time.time()), body)}) as resp:
        assert resp.status == 201, await resp.text()


async def log_in(page: Page, server: ServerProcess) -> None:
    await page.goto(server.url + "/editor")
    await page.fill("#login-form input[name=name]", "eve")
    await page.fill("#login-form input[name=password]", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#console")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)


async def test_an_article_from_the_cms_reaches_the_widget_and_an_editor_pushes_it_to_a_topic(
        browser: Browser, server_factory: Any, standin: PushServiceStandIn) -> None:
    async with aiohttp.ClientSession() as http:
        srv, api, key = await ready(server_factory, standin, http,
                                    TICKER_WEBHOOK_SECRET=SECRET)
        add_user(srv, "eve", "editor")
        sport = [standin.subscribe(key) for _ in range(4)]
        news = [standin.subscribe(key) for _ in range(3)]
        await subscribe_all(api, sport, topics=["sport"])
        await subscribe_all(api, news, topics=["news"])

    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    try:
        reader, editor = await context.new_page(), await context.new_page()
        for tab in (reader, editor):
            tab.on("pageerror", lambda exc: errors.append(str(exc)))
        await reader.goto(srv.url + "/")
        await expect(reader.locator("ticker-widget")).to_have_attribute(
            "data-state", "live", timeout=TIMEOUT_MS)
        await log_in(editor, srv)
        await expect(editor.locator("#articles-list")).to_contain_text("No articles yet.",
                                                                      timeout=TIMEOUT_MS)

        await post_article(srv, ARTICLE)
        # The reader's widget shows it, and the console's list gains it without a reload.
        await expect(reader.locator("ticker-widget .headline-link").first).to_have_text(
            ARTICLE["title"], timeout=TIMEOUT_MS)
        row = editor.locator("#articles-list .item", has_text=ARTICLE["title"])
        await expect(row).to_be_visible(timeout=TIMEOUT_MS)

        # "Push this" fills the form from the article (its category picks the topic); the
        # preview shows the notification, its budget and who it will reach.
        await row.get_by_role("button", name="Push this").click()
        form = editor.locator("#compose-form")
        await expect(form.locator("input[name=title]")).to_have_value(ARTICLE["title"])
        await expect(form.locator("input[name=topic][value=sport]")).to_be_checked()
        await expect(editor.locator("#pv-title")).to_have_text(ARTICLE["title"])
        await expect(editor.locator("#pv-body")).to_contain_text(ARTICLE["summary"])
        await expect(editor.locator("#budget")).to_contain_text("bytes", timeout=TIMEOUT_MS)
        await expect(editor.locator("#audience")).to_have_text("Audience: 4 subscribers",
                                                               timeout=TIMEOUT_MS)

        await editor.click("#send")
        alert = editor.locator("#alerts-list .item", has_text=ARTICLE["title"])
        await expect(alert.locator(".counts")).to_contain_text(
            "targeted 4 · accepted 4 · failed 0", timeout=TIMEOUT_MS)
        await expect(alert.locator(".meta").first).to_contain_text("done", timeout=TIMEOUT_MS)
        if os.environ.get("TICKER_UPDATE_SCREENSHOTS") == "1":
            await editor.evaluate("window.scrollTo(0, 0)")  # the header is sticky
            await editor.screenshot(path=str(IMG / "editor.png"), full_page=True)
        assert errors == []
    finally:
        await context.close()

    # Exactly the topic's subscribers got it, once each, as the editor composed it.
    for sub in sport:
        payloads = standin.received(sub)
        assert len(payloads) == 1, payloads
        assert (payloads[0]["title"], payloads[0]["url"]) == (ARTICLE["title"], ARTICLE["url"])
    assert all(standin.received(sub) == [] for sub in news)
