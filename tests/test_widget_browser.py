"""The embeddable widget (``/widget.js``) and the demo page (``/``), in real Chromium against a
real ``ticker serve`` process.

Locators such as ``ticker-widget .headline`` reach inside the widget: Playwright's CSS engine
pierces open shadow roots, while page stylesheets do not, which is the point of the tests
about style isolation.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, WebSocketRoute, expect
from yarl import URL

from tests.support import ServerProcess
from ticker.sources import sample

pytestmark = pytest.mark.browser

# The reader's computer is three hours slow in the clock test.
SKEW_MS = -3 * 3600 * 1000
SKEWED_DATE = """
(() => {
  const skew = SKEW;
  const RealDate = Date;
  class SkewedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(RealDate.now() + skew);
      else super(...args);
    }
    static now() { return RealDate.now() + skew; }
  }
  globalThis.Date = SkewedDate;
})();
""".replace("SKEW", str(SKEW_MS))

# Long enough for a slow CI machine, far below a human's patience.
LIVE_TIMEOUT_MS = 10_000
# "appears within a couple of seconds"
DELIVERY_TIMEOUT_MS = 2_500


@dataclass
class Tab:
    page: Page
    errors: list[str] = field(default_factory=list)


@pytest.fixture
async def tab(browser: Browser) -> AsyncIterator[Tab]:
    """A page in a reader's zone far from the server's, failing the test on any uncaught
    script error (a widget that throws has a bug even when the screen looks right)."""
    context = await browser.new_context(timezone_id="America/Los_Angeles", locale="en-US")
    page = await context.new_page()
    opened = Tab(page)
    page.on("pageerror", lambda exc: opened.errors.append(str(exc)))
    yield opened
    await context.close()
    assert opened.errors == [], f"uncaught errors in the page: {opened.errors}"


def token(server: ServerProcess) -> str:
    value: str = server.token  # type: ignore[attr-defined]
    return value


async def publish(server: ServerProcess, channel: str, data: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as http, http.post(
        f"{server.url}/api/channels/{channel}/messages", json={"data": data},
        headers={"Authorization": f"Bearer {token(server)}"},
    ) as resp:
        assert resp.status == 201, await resp.text()


async def open_demo(tab: Tab, server: ServerProcess) -> None:
    await tab.page.goto(server.url + "/")
    await expect(tab.page.locator("ticker-widget")).to_have_attribute(
        "data-state", "live", timeout=LIVE_TIMEOUT_MS)


async def serve_page(tab: Tab, url: str, html: str) -> None:
    """Answer ``url`` with ``html`` inside the browser, so a test page can sit on any origin."""
    async def fulfil(route: Any) -> None:
        await route.fulfill(status=200, content_type="text/html", body=html)

    await tab.page.route(url, fulfil)


def clock_texts(tz: str, zone: str, around: datetime) -> set[str]:
    """How the news page writes the time, for the minutes either side of ``around``."""
    out = set()
    for delta in (-1, 0, 1):
        t = (around + timedelta(minutes=delta)).astimezone(ZoneInfo(tz))
        out.add(f"{t:%H:%M} {zone} {t.day} {t:%B %Y}")
    return out


# --- clock --------------------------------------------------------------------------------


@pytest.mark.parametrize(("tz", "zone"), [("UTC", "GMT"), ("Asia/Kolkata", "IST")])
async def test_clock_shows_server_time_in_server_zone_when_reader_clock_is_wrong(
        tab: Tab, server_factory: Callable[..., ServerProcess], tz: str, zone: str) -> None:
    server = server_factory(env={"TICKER_TIMEZONE": tz})
    await asyncio.to_thread(server.start)
    await tab.page.add_init_script(SKEWED_DATE)
    await tab.page.goto(server.url + "/")
    clock = tab.page.locator("ticker-widget .clock")
    # Wait for the corrected clock (the time exchange), not the clock message alone.
    await tab.page.wait_for_function(
        "() => document.querySelector('ticker-widget')?.ticker?.offsetMs !== null",
        timeout=LIVE_TIMEOUT_MS)
    await expect(clock).to_have_text(re.compile(r"^\d\d:\d\d "), timeout=LIVE_TIMEOUT_MS)
    shown = " ".join((await clock.inner_text()).split())
    assert shown in clock_texts(tz, zone, datetime.now(UTC))
    skewed = datetime.now(UTC) + timedelta(milliseconds=SKEW_MS)
    assert shown not in clock_texts(tz, zone, skewed)
    offset = await tab.page.evaluate("document.querySelector('ticker-widget').ticker.offsetMs")
    assert abs(offset + SKEW_MS) < 5_000, "the measured offset undoes the reader's skew"


# --- data ticker --------------------------------------------------------------------------


@dataclass
class LocalSite:
    """Another web site on this machine (a statistics site, a publisher embedding the
    widget), served by this test's event loop: path -> (status, content type, body)."""

    url: str = ""
    pages: dict[str, tuple[int, str, str]] = field(default_factory=dict)

    def put(self, path: str, body: str, content_type: str = "text/html",
            status: int = 200) -> str:
        self.pages[path] = (status, content_type, body)
        return self.url + path


@pytest.fixture
async def site() -> AsyncIterator[LocalSite]:
    local = LocalSite()

    async def answer(request: web.Request) -> web.Response:
        status, content_type, body = local.pages.get(request.path, (404, "text/plain", ""))
        return web.Response(status=status, content_type=content_type, text=body)

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    host, port = runner.addresses[0][:2]
    local.url = f"http://{host}:{port}"
    yield local
    await runner.cleanup()


TOTALS = {"totals": {"confirmed": 191234567, "recovered": 174500000, "deaths": 4109346},
          "updated": "2021-07-19T04:20:45Z"}


def source_config(url: str) -> str:
    # The origin is on loopback: exempted from the private-address refusal.
    return f"""
feeds_allow_private = ["{URL(url).origin()}"]

[[sources]]
name = "covid19"
url = "{url}"
format = "json"
interval = 1
attribution = "JHU CSSE"
as_of = "updated"

[sources.fields]
confirmed = "totals.confirmed"
recovered = "totals.recovered"
deaths = "totals.deaths"
"""


async def test_data_ticker_shows_labelled_figures_with_attribution_and_marks_them_stale(
        tab: Tab, server_factory: Callable[..., ServerProcess], site: LocalSite) -> None:
    source_url = site.put("/totals.json", json.dumps(TOTALS), "application/json")
    server = server_factory(config=source_config(source_url))
    # The server polls the source (served by this test's event loop) while it starts.
    await asyncio.to_thread(server.start)
    await open_demo(tab, server)
    ticker = tab.page.locator('ticker-widget .data[data-channel="data:covid19"]')
    await expect(ticker).to_be_visible()
    figures = {"confirmed": ("Confirmed cases", "191,234,567"),
               "recovered": ("Recoveries", "174,500,000"),
               "deaths": ("Deaths", "4,109,346")}
    for key, (label, number) in figures.items():
        item = ticker.locator(f'.data-item[data-key="{key}"]')
        await expect(item.locator("dt")).to_have_text(label)
        await expect(item.locator("dd")).to_have_text(number)
    await expect(ticker.locator(".data-meta")).to_have_text(
        "Source: JHU CSSE · as of 04:20 GMT 19 July 2021")
    stale = ticker.locator(".data-stale")
    await expect(stale).to_be_hidden()

    site.put("/totals.json", "unavailable", "text/plain", status=503)
    # The next poll fails: the last figures stay, marked stale.
    await expect(stale).to_be_visible(timeout=5_000)
    await expect(stale).to_have_text("Live figures unavailable: these may be out of date")
    await expect(ticker.locator('.data-item[data-key="deaths"] dd')).to_have_text("4,109,346")


async def test_a_fresh_server_shows_the_sample_figures_marked_as_a_sample(
        tab: Tab, server: ServerProcess) -> None:
    await open_demo(tab, server)
    ticker = tab.page.locator('ticker-widget .data[data-channel="data:covid19"]')
    await expect(ticker).to_be_visible()
    figures = {"confirmed": ("Confirmed cases", "190,417,528"),
               "recovered": ("Recoveries", "125,377,069"),
               "deaths": ("Deaths", "4,088,864")}
    for key, (label, number) in figures.items():
        item = ticker.locator(f'.data-item[data-key="{key}"]')
        await expect(item.locator("dt")).to_have_text(label)
        await expect(item.locator("dd")).to_have_text(number)
    await expect(ticker.locator(".data-meta")).to_have_text(
        "Source: JHU CSSE · as of 04:21 GMT 19 July 2021")
    await expect(ticker.locator(".data-meta a")).to_have_attribute("href", sample.URL)
    await expect(ticker.locator(".data-note")).to_have_text(
        "Sample data: global totals of 18 July 2021, not live")
    await expect(ticker.locator(".data-stale")).to_be_hidden()
    await expect(ticker.locator(".data-unavailable")).to_be_hidden()


async def test_a_source_whose_origin_fails_shows_unavailable_with_its_attribution(
        tab: Tab, server_factory: Callable[..., ServerProcess], site: LocalSite) -> None:
    source_url = site.put("/totals.json", "down for maintenance", "text/plain", status=503)
    server = server_factory(config=source_config(source_url))
    await asyncio.to_thread(server.start)
    await open_demo(tab, server)
    ticker = tab.page.locator('ticker-widget .data[data-channel="data:covid19"]')
    unavailable = ticker.locator(".data-unavailable")
    await expect(unavailable).to_be_visible()
    await expect(unavailable).to_have_text("Figures unavailable")
    # Styled as a warning, not as plain text.
    assert await unavailable.evaluate("e => getComputedStyle(e).fontWeight") == "600"
    await expect(ticker.locator(".data-meta")).to_have_text("Source: JHU CSSE")
    await expect(ticker).to_have_attribute("data-status", "unavailable")
    await expect(ticker.locator(".data-item")).to_have_count(0)

    # The origin comes back: the figures replace the notice.
    site.put("/totals.json", json.dumps(TOTALS), "application/json")
    await expect(ticker.locator('.data-item[data-key="deaths"] dd')).to_have_text(
        "4,109,346", timeout=5_000)
    await expect(unavailable).to_be_hidden()


@pytest.mark.parametrize("transport", ["ws", "sse"])
async def test_a_data_channel_the_server_does_not_have_shows_unavailable(
        tab: Tab, server: ServerProcess, site: LocalSite, transport: str) -> None:
    if transport == "sse":  # the fallback: the other channels must stay live there too
        await tab.page.add_init_script("delete window.WebSocket;")
    page_url = site.put("/page.html", f"""<!doctype html><html><body>
        <script src="{server.url}/widget.js" data-channels="clock,data:ftse" async></script>
        </body></html>""")
    await tab.page.goto(page_url)
    widget = tab.page.locator("ticker-widget")
    await expect(widget).to_have_attribute("data-transport", transport)
    ticker = tab.page.locator('ticker-widget .data[data-channel="data:ftse"]')
    await expect(ticker.locator(".data-unavailable")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    await expect(ticker.locator(".data-meta")).to_be_hidden()
    await expect(widget.locator(".clock")).to_contain_text("GMT")
    await expect(widget).to_have_attribute("data-state", "live")


# --- headlines ----------------------------------------------------------------------------


async def test_headlines_already_published_show_on_load_and_new_ones_within_seconds(
        tab: Tab, server: ServerProcess) -> None:
    await publish(server, "headlines", {"title": "Before the page opened",
                                        "url": "https://news.example/before"})
    await open_demo(tab, server)
    items = tab.page.locator("ticker-widget .headline")
    await expect(items).to_have_count(1)
    await expect(items.first).to_have_text("Before the page opened")

    await publish(server, "headlines", {"title": "Published while reading",
                                        "url": "https://news.example/during",
                                        "summary": "Newest first."})
    await expect(items.first.locator(".headline-link")).to_have_text(
        "Published while reading", timeout=DELIVERY_TIMEOUT_MS)
    await expect(items.first.locator(".headline-link")).to_have_attribute(
        "href", "https://news.example/during")
    await expect(items.first.locator(".headline-summary")).to_have_text("Newest first.")
    await expect(items).to_have_count(2)
    await expect(items.nth(1)).to_have_text("Before the page opened")


async def test_widget_reconnects_by_itself_after_server_restart_and_shows_later_headlines(
        tab: Tab, server: ServerProcess) -> None:
    await publish(server, "headlines", {"title": "Before the restart", "url": "/a"})
    await open_demo(tab, server)
    host = tab.page.locator("ticker-widget")
    status = tab.page.locator("ticker-widget .status")
    items = tab.page.locator("ticker-widget .headline")
    await expect(items.first).to_have_text("Before the restart")

    await asyncio.to_thread(server.stop)
    await expect(host).to_have_attribute("data-state", "reconnecting")
    await expect(status).to_have_text("Reconnecting…")
    await expect(status).to_be_visible()

    await asyncio.to_thread(server.start)  # same port, same data dir, a new epoch
    await expect(host).to_have_attribute("data-state", "live", timeout=20_000)
    await expect(status).to_be_hidden()
    await publish(server, "headlines", {"title": "After the restart", "url": "/b"})
    await expect(items.first).to_have_text("After the restart", timeout=DELIVERY_TIMEOUT_MS)
    await expect(items.nth(1)).to_have_text("Before the restart")


async def test_headlines_missed_while_offline_are_refetched_when_resume_is_not_possible(
        tab: Tab, server: ServerProcess) -> None:
    await open_demo(tab, server)
    host = tab.page.locator("ticker-widget")
    items = tab.page.locator("ticker-widget .headline")
    # Offline, the reader cannot reconnect; the restart means the new server cannot replay
    # what it published meanwhile (recovered: false), so the widget must fetch it.
    await tab.page.context.set_offline(True)
    await asyncio.to_thread(server.restart)
    await expect(host).to_have_attribute("data-state", "reconnecting")
    await publish(server, "headlines", {"title": "Published while you were away", "url": "/c"})
    await tab.page.context.set_offline(False)
    await expect(host).to_have_attribute("data-state", "live", timeout=20_000)
    await expect(items.first).to_have_text("Published while you were away",
                                           timeout=DELIVERY_TIMEOUT_MS)
    await expect(items).to_have_count(1)


# --- breaking -----------------------------------------------------------------------------


async def test_breaking_banner_is_an_alert_and_a_clear_hides_it(
        tab: Tab, server: ServerProcess) -> None:
    await open_demo(tab, server)
    banner = tab.page.locator("ticker-widget .breaking")
    await expect(banner).to_have_attribute("role", "alert")
    await expect(banner).to_have_attribute("aria-live", "assertive")
    await expect(banner).to_be_hidden()

    await publish(server, "breaking", {"title": "Polls have closed",
                                       "url": "https://news.example/polls"})
    alert = tab.page.get_by_role("alert")
    await expect(alert).to_be_visible(timeout=DELIVERY_TIMEOUT_MS)
    await expect(alert).to_contain_text("Polls have closed")
    await expect(alert.get_by_role("link")).to_have_attribute(
        "href", "https://news.example/polls")

    await publish(server, "breaking", {"clear": True})
    await expect(banner).to_be_hidden(timeout=DELIVERY_TIMEOUT_MS)
    await expect(banner).to_have_text("")


async def test_breaking_banner_already_up_shows_when_the_page_opens(
        tab: Tab, server: ServerProcess) -> None:
    await publish(server, "breaking", {"title": "Storm warning"})
    await open_demo(tab, server)
    await expect(tab.page.get_by_role("alert")).to_contain_text("Storm warning")


# --- styles -------------------------------------------------------------------------------

HOSTILE_PAGE = """<!doctype html>
<html><head><style>
  div, p, li, a, span, h2, section, dl, dd, dt {
    color: rgb(255, 0, 0) !important; font-family: serif !important;
    background: rgb(0, 0, 255);
  }
  ticker-widget { color: rgb(255, 0, 0); font-size: 40px; }
</style></head>
<body>
  <div id="slot"></div>
  <p class="headline" id="page-headline">A paragraph of the page</p>
  <span class="breaking" id="page-breaking">A span of the page</span>
  <h2 class="section-title" id="page-title">A heading of the page</h2>
  <script src="/widget.js" data-channels="clock,breaking,headlines" data-target="#slot"
          async></script>
</body></html>"""


async def computed(tab: Tab, selector: str, prop: str) -> str:
    value: str = await tab.page.locator(selector).evaluate(
        "(el, prop) => getComputedStyle(el).getPropertyValue(prop)", prop)
    return value


async def test_page_styles_do_not_reach_into_the_widget_and_its_styles_stay_inside(
        tab: Tab, server: ServerProcess) -> None:
    await publish(server, "headlines", {"title": "Isolated", "url": "/i"})
    await serve_page(tab, server.url + "/hostile", HOSTILE_PAGE)
    await tab.page.goto(server.url + "/hostile")
    await expect(tab.page.locator("#slot > ticker-widget")).to_have_attribute(
        "data-state", "live", timeout=LIVE_TIMEOUT_MS)
    link = "ticker-widget .headline-link"
    await expect(tab.page.locator(link)).to_have_text("Isolated")

    assert await computed(tab, link, "color") == "rgb(27, 27, 27)"
    assert not (await computed(tab, link, "font-family")).startswith("serif")
    assert await computed(tab, "ticker-widget .root", "background-color") == "rgb(255, 255, 255)"
    assert await computed(tab, "ticker-widget .root", "font-size") == "15px"

    # The widget's rules for .headline, .breaking and .section-title match nothing outside.
    assert await computed(tab, "#page-headline", "display") == "block"
    assert await computed(tab, "#page-headline", "border-top-width") == "0px"
    assert await computed(tab, "#page-headline", "color") == "rgb(255, 0, 0)"
    assert await computed(tab, "#page-breaking", "font-weight") == "400"
    assert await computed(tab, "#page-breaking", "background-color") == "rgb(0, 0, 255)"
    assert await computed(tab, "#page-title", "text-transform") == "none"


THEMED_PAGE = """<!doctype html>
<html><head><style>
  ticker-widget {
    --ticker-fg: rgb(1, 2, 3);
    --ticker-bg: rgb(250, 240, 230);
    --ticker-breaking-bg: rgb(0, 128, 0);
    --ticker-font: monospace;
  }
</style></head>
<body>
  <script src="/widget.js" data-channels="breaking,headlines" async></script>
</body></html>"""


async def test_widget_is_themed_by_custom_properties_set_on_the_page(
        tab: Tab, server: ServerProcess) -> None:
    await publish(server, "breaking", {"title": "Themed"})
    await serve_page(tab, server.url + "/themed", THEMED_PAGE)
    await tab.page.goto(server.url + "/themed")
    await expect(tab.page.get_by_role("alert")).to_contain_text("Themed",
                                                                timeout=LIVE_TIMEOUT_MS)
    root = "ticker-widget .root"
    assert await computed(tab, root, "color") == "rgb(1, 2, 3)"
    assert await computed(tab, root, "background-color") == "rgb(250, 240, 230)"
    assert await computed(tab, root, "font-family") == "monospace"
    assert await computed(tab, "ticker-widget .breaking", "background-color") == "rgb(0, 128, 0)"


# --- embedding elsewhere, robustness --------------------------------------------------------


async def test_widget_embedded_on_another_site_talks_to_the_server_it_was_loaded_from(
        tab: Tab, server: ServerProcess, site: LocalSite) -> None:
    await publish(server, "headlines", {"title": "Syndicated", "url": "https://news.example/s"})
    page_url = site.put("/article.html", f"""<!doctype html><html><body>
        <h1>A publisher's article</h1>
        <script src="{server.url}/widget.js" data-channels="clock,headlines" async></script>
        </body></html>""")
    await tab.page.goto(page_url)
    await expect(tab.page.locator("ticker-widget")).to_have_attribute(
        "data-state", "live", timeout=LIVE_TIMEOUT_MS)
    # Recent headlines come over a cross-origin fetch, the rest over the WebSocket.
    await expect(tab.page.locator("ticker-widget .headline")).to_have_text(["Syndicated"])
    await expect(tab.page.locator("ticker-widget .clock")).to_contain_text("GMT")


HOSTILE_FRAMES = [
    "not json at all",
    "[1, 2, 3]",
    "null",
    json.dumps({"type": "message"}),
    json.dumps({"type": "message", "channel": "headlines", "epoch": "e", "offset": -1,
                "data": {"title": "negative offset"}}),
    json.dumps({"type": "message", "channel": "headlines", "epoch": 7, "offset": 1,
                "data": {"title": "numeric epoch"}}),
    json.dumps({"type": "message", "channel": "breaking", "epoch": "e", "offset": 1,
                "data": "not an object"}),
    json.dumps({"type": "message", "channel": "data:nope", "epoch": "e", "offset": 1,
                "data": {"values": {}}}),
    json.dumps({"type": "subscribed", "channel": "headlines", "epoch": None}),
    json.dumps({"type": "time", "t0": "yesterday", "server": "now"}),
    json.dumps({"type": "message", "channel": "headlines", "epoch": "zz", "offset": 99,
                "data": {"title": "<img src=x onerror=alert(1)>", "url": "javascript:alert(1)"}}),
]


async def test_malformed_frames_are_ignored_and_text_is_never_markup(
        tab: Tab, server: ServerProcess) -> None:
    """A proxy in front of the real server slips hostile frames into the stream."""
    sockets: list[WebSocketRoute] = []

    def proxy(ws: WebSocketRoute) -> None:
        ws.connect_to_server()  # everything else passes through unchanged
        sockets.append(ws)

    await tab.page.route_web_socket(re.compile(r"/ws$"), proxy)
    await open_demo(tab, server)
    for frame in HOSTILE_FRAMES:
        sockets[-1].send(frame)
    items = tab.page.locator("ticker-widget .headline")
    await expect(items).to_have_count(1)
    await expect(items.first).to_have_text("<img src=x onerror=alert(1)>")
    assert await items.first.locator("img").count() == 0
    assert await items.first.locator(".headline-link").get_attribute("href") is None

    await publish(server, "headlines", {"title": "Still working", "url": "/ok"})
    await expect(items.first).to_have_text("Still working", timeout=DELIVERY_TIMEOUT_MS)
    await expect(tab.page.locator("ticker-widget")).to_have_attribute("data-state", "live")


async def test_widget_falls_back_to_server_sent_events_where_websockets_are_unavailable(
        tab: Tab, server: ServerProcess) -> None:
    await tab.page.add_init_script("delete window.WebSocket;")
    await open_demo(tab, server)
    await expect(tab.page.locator("ticker-widget")).to_have_attribute("data-transport", "sse")
    await expect(tab.page.locator("ticker-widget .clock")).to_contain_text("GMT")
    await publish(server, "headlines", {"title": "Over SSE", "url": "/sse"})
    await expect(tab.page.locator("ticker-widget .headline").first).to_have_text(
        "Over SSE", timeout=DELIVERY_TIMEOUT_MS)


# --- Server-Sent Events from other origins -----------------------------------------------

EVENT_SOURCE_PAGE = """<!doctype html><html><body><script>
  window.got = [];
  window.opened = 0;
  const es = new EventSource("SERVER/sse?channels=headlines");
  es.onopen = () => { window.opened += 1; };
  es.onmessage = (ev) => window.got.push(JSON.parse(ev.data));
</script></body></html>"""


async def got_titles(tab: Tab) -> list[str]:
    got: list[dict[str, Any]] = await tab.page.evaluate("window.got")
    return [m["data"]["title"] for m in got if m["type"] == "message"]


async def test_an_event_source_on_another_origin_streams_and_resumes_after_a_restart(
        tab: Tab, server: ServerProcess, site: LocalSite) -> None:
    """The browser reconnects by itself with ``Last-Event-ID``, still cross-origin."""
    await tab.page.goto(site.put("/es.html", EVENT_SOURCE_PAGE.replace("SERVER", server.url)))
    await tab.page.wait_for_function("window.got.some((m) => m.type === 'subscribed')")
    await publish(server, "headlines", {"title": "Across origins"})
    await tab.page.wait_for_function("window.got.some((m) => m.type === 'message')",
                                     timeout=DELIVERY_TIMEOUT_MS)
    assert await got_titles(tab) == ["Across origins"]

    await asyncio.to_thread(server.restart)
    await tab.page.wait_for_function("window.opened >= 2", timeout=LIVE_TIMEOUT_MS)
    await publish(server, "headlines", {"title": "After the restart"})
    await tab.page.wait_for_function("window.got.filter((m) => m.type === 'message').length > 1",
                                     timeout=DELIVERY_TIMEOUT_MS)
    assert await got_titles(tab) == ["Across origins", "After the restart"]
    # The browser sent the last id it saw (from before the restart) and the history outlived
    # the restart (kept in the database), so the server resumes it: recovered, no gap.
    subscribed = [m for m in await tab.page.evaluate("window.got") if m["type"] == "subscribed"]
    assert [m["recovered"] for m in subscribed] == [True, True]
    assert len({m["epoch"] for m in subscribed}) == 1  # the same numbering across the restart


async def test_widget_on_another_site_falls_back_to_sse_when_websockets_are_blocked(
        tab: Tab, server: ServerProcess, site: LocalSite) -> None:
    await publish(server, "headlines", {"title": "Before load", "url": "https://news.example/b"})
    # A proxy that refuses WebSocket upgrades: every attempt fails, as it would in the field.
    await tab.page.route(re.compile(r"/ws$"), lambda route: route.abort())
    await tab.page.add_init_script("window.WebSocket = undefined;")
    page_url = site.put("/article.html", f"""<!doctype html><html><body>
        <script src="{server.url}/widget.js" data-channels="clock,headlines" async></script>
        </body></html>""")
    await tab.page.goto(page_url)
    widget = tab.page.locator("ticker-widget")
    await expect(widget).to_have_attribute("data-transport", "sse")
    await expect(widget).to_have_attribute("data-state", "live", timeout=LIVE_TIMEOUT_MS)
    await expect(tab.page.locator("ticker-widget .clock")).to_contain_text("GMT")
    await publish(server, "headlines", {"title": "Live over SSE", "url": "https://news.example/l"})
    await expect(tab.page.locator("ticker-widget .headline").first).to_have_text(
        "Live over SSE", timeout=DELIVERY_TIMEOUT_MS)
