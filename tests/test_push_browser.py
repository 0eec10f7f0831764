"""The opt-in prompt (``/push.js``) and service worker (``/sw.js``): real server, real Chromium.

Playwright's browser contexts are incognito profiles, where Chromium offers no push service:
``pushManager.subscribe`` is refused there, so the Accept test pins down the error state the
reader then sees. Push *delivery* to the worker does not need a push service: DevTools
(``ServiceWorker.deliverPushMessage``) hands the message straight to the worker.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from subscribers.web.pages import CONFIG_MARK, render_script
from tests.support import ServerProcess

HOST = "#ticker-push"
NOTIFICATIONS_JS = """navigator.serviceWorker.ready
  .then(r => r.getNotifications())
  .then(ns => ns.map(n => ({title: n.title, body: n.body, tag: n.tag, data: n.data})))"""
DAY_MS = 24 * 3600 * 1000


# --- the scripts as served -------------------------------------------------------------------


def test_render_script_embeds_config_once_as_json() -> None:
    text = render_script(f"const c = {CONFIG_MARK};", {"siteName": "Le Monde \u2028 </script>"})
    assert text == 'const c = {"siteName": "Le Monde \\u2028 </script>"};'
    with pytest.raises(ValueError, match="exactly once"):
        render_script("const c = {};", {})
    with pytest.raises(ValueError, match="exactly once"):
        render_script(CONFIG_MARK * 2, {})


async def test_push_js_carries_site_name_topics_and_snooze_days_and_revalidates_by_etag(
    server_factory: Any,
) -> None:
    srv: ServerProcess = server_factory(env={
        "TICKER_SITE_NAME": "The Daily Test", "TICKER_PUSH_TOPICS": "breaking,sport",
        "TICKER_PUSH_PROMPT_SNOOZE_DAYS": "7"}).start()
    async with aiohttp.ClientSession() as http:
        async with http.get(srv.url + "/push.js") as resp:
            assert resp.status == 200
            assert resp.content_type == "text/javascript"
            etag = resp.headers["ETag"]
            text = await resp.text()
        async with http.get(srv.url + "/push.js", headers={"If-None-Match": etag}) as again:
            assert again.status == 304
    assert CONFIG_MARK not in text
    assert '"siteName": "The Daily Test"' in text
    assert '"topics": ["breaking", "sport"]' in text
    assert '"snoozeDays": 7' in text
    assert '"vapidKeyUrl": "/api/push/vapid-public-key"' in text


async def test_sw_js_is_served_for_the_root_scope_and_never_from_cache(
    server: ServerProcess,
) -> None:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/sw.js") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/javascript"
        assert resp.headers["Service-Worker-Allowed"] == "/"
        assert resp.headers["Cache-Control"] == "no-cache"
        text = await resp.text()
    assert CONFIG_MARK not in text
    assert '"eventsUrl": "/api/push/events"' in text


# --- helpers for the browser tests -----------------------------------------------------------


@pytest.fixture
async def context(browser: Any) -> AsyncIterator[Any]:
    ctx = await browser.new_context(viewport={"width": 1000, "height": 700})
    try:
        yield ctx
    finally:
        await ctx.close()


async def open_home(page: Any, server: ServerProcess, state: str | None = None) -> str:
    """Load ``/`` and wait until the prompt script has decided what to show."""
    await page.goto(server.url + "/")
    assert await page.locator('script[src="/push.js"]').count() == 1, "/ does not load /push.js"
    host = page.locator(f"{HOST}[data-state]")
    await host.wait_for(state="attached", timeout=10_000)
    if state is not None:
        await page.locator(f'{HOST}[data-state="{state}"]').wait_for(state="attached")
    return str(await host.get_attribute("data-state"))


async def registration_id(cdp: Any, registrations: list[dict[str, Any]], scope: str) -> str:
    """The DevTools id of the worker registration for ``scope`` (events arrive async)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        live = {r["registrationId"]: r for r in registrations}
        for rid, reg in live.items():
            if reg["scopeURL"] == scope and not reg.get("isDeleted"):
                return str(rid)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no service worker registration for {scope}: {registrations}")


async def deliver(context: Any, cdp: Any, origin: str, rid: str, data: str) -> Any:
    """Push ``data`` to the worker; returns the ``shown`` receipt request the worker sends.

    The worker posts the receipt only after ``showNotification()`` has resolved, so it is also
    the moment the notification can be read back. Reading earlier is not safe in Chromium:
    ``getNotifications()`` drops stored notifications it does not see displayed yet, so a read
    racing the display loses that notification.
    """
    async with context.expect_event("request", lambda r: r.url.endswith("/api/push/events"),
                                    timeout=20_000) as receipt:
        await cdp.send("ServiceWorker.deliverPushMessage",
                       {"origin": origin, "registrationId": rid, "data": data})
    return await receipt.value


async def push_ready_page(context: Any, server: ServerProcess) -> tuple[Any, Any, str]:
    """A page on ``/`` whose worker is registered (permission granted), plus its DevTools id."""
    await context.grant_permissions(["notifications"], origin=server.url)
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated",
           lambda event: registrations.extend(event["registrations"]))
    await cdp.send("ServiceWorker.enable")
    await open_home(page, server)
    # The prompt registers the worker on every visit once notifications are allowed.
    scope = await page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == server.url + "/"
    # ``ready`` resolves while the worker may still be activating; push to an activated one.
    await page.wait_for_function("""navigator.serviceWorker.controller
        && navigator.serviceWorker.controller.state === 'activated'""", timeout=10_000)
    assert await page.evaluate(NOTIFICATIONS_JS) == []
    return page, cdp, await registration_id(cdp, registrations, scope)


async def refused_days_ago(page: Any, days: int) -> None:
    await page.evaluate(
        f"localStorage.setItem('ticker-push:refused-at', Date.now() - {days * DAY_MS})")


# --- the prompt --------------------------------------------------------------------------------


async def test_prompt_asks_for_the_site_with_its_topics_and_refusal_survives_a_reload(
    server_factory: Any, context: Any,
) -> None:
    srv: ServerProcess = server_factory(env={
        "TICKER_SITE_NAME": "The Daily Test", "TICKER_PUSH_TOPICS": "breaking,sport,culture",
    }).start()
    page = await context.new_page()
    assert await open_home(page, srv) == "prompt"
    dialog = page.get_by_role("dialog", name="Get push notifications from The Daily Test")
    await dialog.wait_for()
    assert await page.locator(f"{HOST} .topic input").evaluate_all(
        "boxes => boxes.map(b => [b.value, b.checked])") == [
        ["breaking", True], ["sport", True], ["culture", True]]

    before = int(time.time() * 1000)
    await page.locator(f"{HOST} button.refuse").click()
    await dialog.wait_for(state="hidden")
    assert await page.get_attribute(HOST, "data-state") == "hidden"
    refused_at = int(await page.evaluate("localStorage.getItem('ticker-push:refused-at')"))
    assert before <= refused_at <= int(time.time() * 1000)

    await page.reload()
    assert await open_home(page, srv) == "snoozed"
    assert await page.locator(f"{HOST} .dialog").count() == 0
    assert not await page.get_by_role("dialog").is_visible()


async def test_refusal_is_forgotten_after_the_configured_snooze_days(
    server_factory: Any, context: Any,
) -> None:
    srv: ServerProcess = server_factory(env={"TICKER_PUSH_PROMPT_SNOOZE_DAYS": "3"}).start()
    page = await context.new_page()
    assert await open_home(page, srv) == "prompt"
    await refused_days_ago(page, 2)
    await page.reload()
    assert await open_home(page, srv) == "snoozed"
    await refused_days_ago(page, 4)
    await page.reload()
    assert await open_home(page, srv) == "prompt"
    await page.get_by_role("dialog").wait_for()


async def test_prompt_works_from_the_keyboard_and_escape_refuses(
    server: ServerProcess, context: Any,
) -> None:
    page = await context.new_page()
    await open_home(page, server, "prompt")
    accept = page.locator(f"{HOST} button.accept")
    refuse = page.locator(f"{HOST} button.refuse")
    # Unticking every topic leaves nothing to subscribe to.
    for box in await page.locator(f"{HOST} .topic input").all():
        await box.uncheck()
    assert await accept.is_disabled()
    await page.locator(f"{HOST} .topic input").first.check()
    assert await accept.is_enabled()

    await refuse.focus()
    await page.keyboard.press("Tab")
    assert await accept.evaluate("b => b.getRootNode().activeElement === b")
    await page.keyboard.press("Escape")
    await page.locator(f'{HOST}[data-state="hidden"]').wait_for(state="attached")
    assert await page.evaluate("localStorage.getItem('ticker-push:refused-at')") is not None


async def test_no_prompt_once_the_browser_blocks_notifications(
    server: ServerProcess, context: Any,
) -> None:
    page = await context.new_page()
    await open_home(page, server, "prompt")
    # Headless Chromium answers the permission request itself: not granted.
    await page.locator(f"{HOST} button.accept").click()
    await page.locator(f'{HOST}[data-state="blocked"]').wait_for(state="attached")
    if await page.evaluate("Notification.permission") != "denied":
        pytest.skip("this Chromium leaves the permission undecided instead of denying it")
    assert "blocks notifications" in await page.locator(f"{HOST} .status").inner_text()
    await page.reload()
    assert await open_home(page, server) == "denied"
    assert await page.locator(f"{HOST} .dialog").count() == 0


async def test_accept_goes_as_far_as_the_browser_allows_and_never_hangs(
    server: ServerProcess, context: Any,
) -> None:
    await context.grant_permissions(["notifications"], origin=server.url)
    page = await context.new_page()
    posted: list[dict[str, Any]] = []
    page.on("request", lambda r: posted.append(json.loads(r.post_data or "{}"))
            if r.method == "POST" and r.url.endswith("/api/push/subscriptions") else None)
    key_statuses: list[int] = []
    page.on("response", lambda r: key_statuses.append(r.status)
            if r.url.endswith("/api/push/vapid-public-key") else None)
    await open_home(page, server, "prompt")
    await page.locator(f"{HOST} .topic input[value=sport]").uncheck()
    await page.locator(f"{HOST} button.accept").click()
    outcome = page.locator(f'{HOST}[data-state="done"], {HOST}[data-state="error"]')
    await outcome.wait_for(state="attached", timeout=30_000)
    state = await page.get_attribute(HOST, "data-state")

    # The worker is registered and the site's key fetched before the browser is asked.
    assert await page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)") == (
        server.url + "/")
    assert key_statuses == [200]
    if state == "error":
        # No push service (incognito profile, or offline): a clear message and a way out.
        status = page.locator(f"{HOST} .status.error")
        assert await status.get_attribute("role") == "alert"
        assert "push" in (await status.inner_text()).lower()
        assert await page.locator(f"{HOST} button.retry").is_enabled()
        assert posted == []
        await page.locator(f"{HOST} button.close").click()
        await page.locator(f'{HOST}[data-state="hidden"]').wait_for(state="attached")
        return

    # A push service answered: the subscription reached the server with the chosen topics.
    assert len(posted) == 1
    body = posted[0]
    assert set(body["topics"]) == {"breaking", "news", "business", "culture"}
    assert body["subscription"]["endpoint"].startswith("https://")
    assert body["timezone"] and body["language"] and body["vapidKey"]
    await page.locator(f"{HOST} button.close").click()
    await page.locator(f"{HOST} button.manage").click()
    await page.locator(f"{HOST} button.unsubscribe").click()
    await page.locator(f'{HOST}[data-state="off"]').wait_for(state="attached")


# --- the service worker ------------------------------------------------------------------------


async def test_worker_shows_a_pushed_alert_and_posts_a_shown_receipt(
    server: ServerProcess, context: Any,
) -> None:
    page, cdp, rid = await push_ready_page(context, server)
    payload = {"title": "Storm warning", "body": "Stay indoors", "url": "/storm",
               "icon": "/icon.png", "tag": "storm", "alert": 42}
    request = await deliver(context, cdp, server.url, rid, json.dumps(payload))
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.post_data) == {"alert": 42, "event": "shown"}
    assert await page.evaluate(NOTIFICATIONS_JS) == [
        {"title": "Storm warning", "body": "Stay indoors", "tag": "storm",
         "data": {"url": server.url + "/storm", "alert": 42}}]


async def test_server_counts_the_shown_receipt_of_a_pushed_alert(
    server: ServerProcess, context: Any,
) -> None:
    auth = {"Authorization": f"Bearer {server.token}"}  # type: ignore[attr-defined]
    async with aiohttp.ClientSession() as http:
        # No subscribers yet, so the alert goes to nobody; it exists to receive receipts.
        async with http.post(server.url + "/api/alerts", headers=auth, json={
                "title": "Storm warning", "body": "Stay indoors",
                "url": server.url + "/storm"}) as resp:
            assert resp.status in (200, 201, 202), await resp.text()
            alert_id = (await resp.json())["id"]

        page, cdp, rid = await push_ready_page(context, server)
        payload = {"title": "Storm warning", "body": "Stay indoors", "url": "/storm",
                   "tag": "storm", "alert": alert_id}
        await deliver(context, cdp, server.url, rid, json.dumps(payload))
        assert len(await page.evaluate(NOTIFICATIONS_JS)) == 1

        # The worker sends its receipt with keepalive; the server may record it a bit later.
        deadline = time.monotonic() + 10
        while True:
            async with http.get(f"{server.url}/api/alerts/{alert_id}", headers=auth) as resp:
                assert resp.status == 200, await resp.text()
                receipts = (await resp.json())["receipts"]
            if receipts["shown"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert receipts == {"shown": 1, "clicked": 0}


async def test_worker_still_shows_a_notification_for_a_malformed_payload(
    server_factory: Any, context: Any,
) -> None:
    srv: ServerProcess = server_factory(env={"TICKER_SITE_NAME": "The Daily Test"}).start()
    page, cdp, rid = await push_ready_page(context, srv)
    receipts: list[str] = []
    context.on("request", lambda r: receipts.append(r.post_data)
               if r.url.endswith("/api/push/events") else None)
    await cdp.send("ServiceWorker.deliverPushMessage",
                   {"origin": srv.url, "registrationId": rid, "data": "{not json"})
    # A well-formed push after it: its receipt says both have been handled in turn.
    await deliver(context, cdp, srv.url, rid, json.dumps({"title": "Marker", "alert": 7}))
    shown = await page.evaluate(NOTIFICATIONS_JS)
    assert [n["title"] for n in shown] == ["The Daily Test", "Marker"]
    generic = shown[0]
    assert generic["body"]
    assert generic["data"] == {"url": srv.url + "/", "alert": None}
    # Only the marker had an alert to count a receipt against.
    assert [json.loads(r) for r in receipts] == [{"alert": 7, "event": "shown"}]


async def test_the_same_alert_delivered_twice_shows_one_notification_and_one_receipt(
    server: ServerProcess, context: Any,
) -> None:
    auth = {"Authorization": f"Bearer {server.token}"}  # type: ignore[attr-defined]
    async with aiohttp.ClientSession() as http:
        ids = []
        for title in ("Storm warning", "Marker"):
            async with http.post(server.url + "/api/alerts", headers=auth, json={
                    "title": title, "url": server.url + "/storm"}) as resp:
                assert resp.status == 201, await resp.text()
                ids.append((await resp.json())["id"])
        alert_id, marker_id = ids
        page, cdp, rid = await push_ready_page(context, server)
        receipts: list[Any] = []
        context.on("request", lambda r: receipts.append(json.loads(r.post_data))
                   if r.url.endswith("/api/push/events") else None)
        # No tag of its own: the worker tags it by its id.
        payload = json.dumps({"title": "Storm warning", "body": "Stay indoors",
                              "url": "/storm", "alert": alert_id})
        await deliver(context, cdp, server.url, rid, payload)
        # The second copy (as after a crash mid-send): nothing to see, no receipt. The
        # marker's receipt says the copy has been handled (one store, in turn).
        await cdp.send("ServiceWorker.deliverPushMessage",
                       {"origin": server.url, "registrationId": rid, "data": payload})
        await deliver(context, cdp, server.url, rid,
                      json.dumps({"title": "Marker", "alert": marker_id}))
        shown = await page.evaluate(NOTIFICATIONS_JS)
        assert [(n["title"], n["tag"]) for n in shown] == [
            ("Storm warning", f"alert-{alert_id}"), ("Marker", f"alert-{marker_id}")]
        assert receipts == [{"alert": alert_id, "event": "shown"},
                            {"alert": marker_id, "event": "shown"}]
        deadline = time.monotonic() + 10
        while True:
            async with http.get(f"{server.url}/api/alerts/{marker_id}", headers=auth) as resp:
                marker = (await resp.json())["receipts"]
            if marker["shown"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        async with http.get(f"{server.url}/api/alerts/{alert_id}", headers=auth) as resp:
            assert (await resp.json())["receipts"] == {"shown": 1, "clicked": 0}


SHOWN_IDS_JS = """new Promise((resolve, reject) => {
  const req = indexedDB.open("ticker-push");
  req.onerror = () => reject(req.error);
  req.onsuccess = () => {
    const all = req.result.transaction("shown").objectStore("shown").getAllKeys();
    all.onsuccess = () => { resolve(all.result.map(Number)); req.result.close(); };
  };
})"""


async def test_the_record_of_shown_alerts_keeps_only_the_newest_two_hundred(
    server: ServerProcess, context: Any,
) -> None:
    page, cdp, rid = await push_ready_page(context, server)
    for alert_id in range(1, 206):
        await deliver(context, cdp, server.url, rid,
                      json.dumps({"title": f"Alert {alert_id}", "alert": alert_id}))
    assert sorted(await page.evaluate(SHOWN_IDS_JS)) == list(range(6, 206))
