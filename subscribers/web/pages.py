"""The browser side of Web Push: the opt-in prompt ``/push.js`` and the worker ``/sw.js``.

Both scripts are static files with one placeholder, ``{} /* @ticker-config */``, which is
replaced by this site's settings as JSON once, when the app is built. The served text changes
only when the settings do, so the ETag (from :func:`ticker.web.pages.script_response`) stays
stable between restarts and browsers revalidate cheaply.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from aiohttp import web

from subscribers.settings import PushSettings
from ticker import appkeys
from ticker.settings import Settings
from ticker.web.pages import script_response

CONFIG_MARK = "{} /* @ticker-config */"

VAPID_KEY_URL = "/api/push/vapid-public-key"
SUBSCRIPTIONS_URL = "/api/push/subscriptions"
EVENTS_URL = "/api/push/events"
SERVICE_WORKER_URL = "/sw.js"
# The worker must control every page of the site, so it lives at the root with scope "/".
SERVICE_WORKER_SCOPE = "/"


@cache
def static_text(name: str) -> str:
    return resources.files("subscribers").joinpath("static", name).read_text(encoding="utf-8")


def prompt_config(settings: Settings) -> dict[str, Any]:
    """What ``/push.js`` needs to know about this site."""
    return {
        "siteName": settings.server.site_name,
        "topics": list(settings.part(PushSettings).push_topics),
        "snoozeDays": settings.part(PushSettings).push_prompt_snooze_days,
        "vapidKeyUrl": VAPID_KEY_URL,
        "subscriptionsUrl": SUBSCRIPTIONS_URL,
        "serviceWorkerUrl": SERVICE_WORKER_URL,
        "scope": SERVICE_WORKER_SCOPE,
    }


def worker_config(settings: Settings) -> dict[str, Any]:
    """What ``/sw.js`` needs: the generic title and where receipts and renewals go."""
    return {
        "siteName": settings.server.site_name,
        "eventsUrl": EVENTS_URL,
        "vapidKeyUrl": VAPID_KEY_URL,
        "subscriptionsUrl": SUBSCRIPTIONS_URL,
    }


def render_script(template: str, config: Mapping[str, Any]) -> str:
    """The script with its config placeholder replaced by ``config`` as a JSON literal."""
    if template.count(CONFIG_MARK) != 1:
        raise ValueError(f"the script must contain {CONFIG_MARK!r} exactly once")
    # ensure_ascii also escapes U+2028/U+2029, which old engines reject inside JS strings.
    literal = json.dumps(dict(config), ensure_ascii=True, sort_keys=True)
    return template.replace(CONFIG_MARK, literal)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _prompt_handler(text: str) -> Handler:
    async def push_js(request: web.Request) -> web.StreamResponse:
        return script_response(request, text)

    return push_js


def _worker_handler(text: str) -> Handler:
    async def sw_js(request: web.Request) -> web.StreamResponse:
        resp = script_response(request, text)
        # Browsers check a worker for updates on navigation; it must never be served stale.
        resp.headers["Cache-Control"] = "no-cache"
        resp.headers["Service-Worker-Allowed"] = SERVICE_WORKER_SCOPE
        return resp

    return sw_js


def setup_pages(app: web.Application) -> None:
    settings = app[appkeys.settings]
    prompt = render_script(static_text("push.js"), prompt_config(settings))
    worker = render_script(static_text("sw.js"), worker_config(settings))
    app.router.add_get("/push.js", _prompt_handler(prompt))
    app.router.add_get(SERVICE_WORKER_URL, _worker_handler(worker))
