"""The console ``/editor`` in real Chromium: an editor logs in on a phone and on a desktop,
sees the console, and posts and clears the breaking banner, which a reader's ``/ws``
client receives.

``TICKER_UPDATE_SCREENSHOTS=1`` also writes docs/img/editor-phone.png (a README picture);
CI leaves it alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, expect

from tests.consolehelpers import PASSWORD, add_user
from tests.support import ServerProcess

pytestmark = pytest.mark.browser

IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
TIMEOUT_MS = 10_000
VIEWPORTS = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
              "device_scale_factor": 2},
    "desktop": {"viewport": {"width": 1280, "height": 900}},
}


@pytest.fixture
def srv(server_factory: Any) -> ServerProcess:
    server: ServerProcess = server_factory(env={"TICKER_SITE_NAME": "The Daily Test"})
    add_user(server, "eve", "editor")
    return server.start()


class Reader:
    """A reader's /ws client subscribed to ``breaking``: the banner messages it receives."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def run(self, url: str, ready: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            await ws.send_str(json.dumps({"type": "subscribe", "channels": ["breaking"]}))
            async for msg in ws:
                frame = json.loads(msg.data)
                if frame["type"] == "subscribed":
                    ready.set()
                elif frame["type"] == "message":
                    await self.messages.put(frame["data"])

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.messages.get(), TIMEOUT_MS / 1000)


@pytest.fixture
async def reader(srv: ServerProcess) -> AsyncIterator[Reader]:
    r, ready = Reader(), asyncio.Event()
    task = asyncio.create_task(r.run(srv.ws_url, ready))
    await asyncio.wait_for(ready.wait(), 10)
    yield r
    task.cancel()


@pytest.mark.parametrize("device", ["phone", "desktop"])
async def test_an_editor_logs_in_and_posts_and_clears_the_breaking_banner(
    browser: Browser, srv: ServerProcess, reader: Reader, device: str,
) -> None:
    context = await browser.new_context(**VIEWPORTS[device])
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text)
            if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        await page.goto(srv.url + "/editor")
        await expect(page.locator("#login")).to_be_visible(timeout=TIMEOUT_MS)
        await page.fill("#login-form input[name=name]", "eve")
        await page.fill("#login-form input[name=password]", "wrong password!")
        await page.click("#login-form button[type=submit]")
        await expect(page.locator("#login-error")).to_be_visible(timeout=TIMEOUT_MS)
        await page.fill("#login-form input[name=password]", PASSWORD)
        await page.click("#login-form button[type=submit]")
        await expect(page.locator("#console")).to_be_visible(timeout=TIMEOUT_MS)
        await expect(page.locator("#who-name")).to_have_text("eve")
        await expect(page.locator("#site")).to_have_text("The Daily Test console")
        await expect(page.locator("#topics input")).to_have_count(5)
        await expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)
        # Admin panels stay hidden from an editor.
        await expect(page.locator("#admin")).to_be_hidden()
        # Large enough to hit with a thumb.
        box = await page.locator("#banner-post").bounding_box()
        assert box is not None and box["height"] >= 44

        await page.fill("#banner-form input[name=title]", "Storm closes the coast road")
        await page.fill("#banner-form input[name=url]", "https://news.example/storm")
        await page.click("#banner-post")
        assert await reader.next() == {"title": "Storm closes the coast road",
                                       "url": "https://news.example/storm"}
        # The console's own WebSocket (breaking and console:alerts) shows it too.
        await expect(page.locator("#banner-now")).to_have_text("Storm closes the coast road",
                                                               timeout=TIMEOUT_MS)
        await expect(page.locator("#banner-status")).to_have_text("Banner posted.")

        await compose_for_the_picture(page)
        # The desktop picture is taken by test_console_newsroom_browser.py, with an article
        # and an alert's counts on it.
        if os.environ.get("TICKER_UPDATE_SCREENSHOTS") == "1" and device == "phone":
            await page.screenshot(path=str(IMG / "editor-phone.png"))

        await page.click("#banner-clear")
        assert await reader.next() == {"clear": True}
        await expect(page.locator("#banner-now")).to_have_text("none", timeout=TIMEOUT_MS)
        assert problems == []
    finally:
        await context.close()


async def compose_for_the_picture(page: Any) -> None:
    """An alert being written: the preview follows the fields; sending to everyone asks."""
    await page.fill("#compose-form input[name=title]", "Storm closes the coast road")
    await page.fill("#compose-form textarea[name=body]",
                    "Gales of 120 km/h expected tonight; the A39 is shut from 6 pm.")
    await page.fill("#compose-form input[name=url]", "https://news.example/storm")
    await expect(page.locator("#pv-title")).to_have_text("Storm closes the coast road")
    await expect(page.locator("#pv-body")).to_contain_text("Gales of 120 km/h")
    await page.click("#send")
    await expect(page.locator("#confirm")).to_be_visible(timeout=TIMEOUT_MS)
    await page.click("#confirm-no")
    await page.locator("#compose-form input[value=breaking]").check()
    # The debounced server preview has answered (the budget, or that there is none).
    await expect(page.locator("#budget")).not_to_have_text("Type a title to see the budget.",
                                                           timeout=TIMEOUT_MS)
    await page.evaluate("window.scrollTo(0, 0)")


async def logged_in(browser: Browser, srv: ServerProcess, name: str, password: str) -> Any:
    context = await browser.new_context(**VIEWPORTS["desktop"])
    page = await context.new_page()
    await page.goto(srv.url + "/editor")
    await page.fill("#login-form input[name=name]", name)
    await page.fill("#login-form input[name=password]", password)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#console")).to_be_visible(timeout=TIMEOUT_MS)
    return context, page


async def test_sending_to_everyone_asks_first_then_sends_one_alert(
    browser: Browser, srv: ServerProcess,
) -> None:
    context, page = await logged_in(browser, srv, "eve", PASSWORD)
    try:
        await page.fill("#compose-form input[name=title]", "Polls close at 10 pm")
        await page.fill("#compose-form input[name=url]", "https://news.example/polls")
        await page.click("#send")
        await expect(page.locator("#confirm")).to_be_visible(timeout=TIMEOUT_MS)
        await expect(page.locator("#compose-status")).to_have_text("")  # nothing sent yet
        await page.click("#confirm-yes")
        status = page.locator("#compose-status")
        await expect(status).to_have_text(re.compile(r"^Alert \d+: "), timeout=TIMEOUT_MS)
        alert_id = int(re.findall(r"\d+", await status.text_content() or "")[0])
        token = srv.create_token("editor", "check")
        async with aiohttp.ClientSession() as http, http.get(
                f"{srv.url}/api/alerts/{alert_id}",
                headers={"Authorization": f"Bearer {token}"}) as resp:
            alert = await resp.json()
        assert (alert["title"], alert["url"], alert["topics"]) == (
            "Polls close at 10 pm", "https://news.example/polls", [])
        await expect(page.locator(f'[data-alert="{alert_id}"]')).to_be_visible()
    finally:
        await context.close()


async def test_an_admin_creates_a_token_shown_once_adds_a_user_and_reads_the_audit_log(
    browser: Browser, srv: ServerProcess,
) -> None:
    add_user(srv, "ada", "admin")
    context, page = await logged_in(browser, srv, "ada", PASSWORD)
    try:
        await expect(page.locator("#admin")).to_be_visible()
        await page.fill("#token-form input[name=name]", "wire-service")
        await page.click("#token-form button[type=submit]")
        shown = page.locator("#token-value")
        await expect(shown).to_contain_text("tk_", timeout=TIMEOUT_MS)
        value = re.findall(r"tk_\S+", await shown.text_content() or "")[0]
        await expect(page.locator("#tokens-list")).to_contain_text("wire-service")
        assert value not in await page.locator("#tokens-list").text_content()
        await page.fill("#user-form input[name=name]", "zoe")
        await page.fill("#user-form input[name=password]", "zoe's long password")
        await page.click("#user-form button[type=submit]")
        await expect(page.locator("#users-list")).to_contain_text("zoe", timeout=TIMEOUT_MS)
        audit = page.locator("#audit-list")
        await expect(audit).to_contain_text("user.add user:zoe", timeout=TIMEOUT_MS)
        await expect(audit).to_contain_text("token.create token:wire-service")
        await expect(audit).to_contain_text("user.login user:ada")
        out = srv.cli("users", "list").stdout
        assert "\tzoe\t" in out
    finally:
        await context.close()
