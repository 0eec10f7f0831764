"""Alerts as editors use them, end to end: a real ``ticker serve`` (restarted where the
schedule must survive it), its SQLite file, and the push-service stand-in that verifies
VAPID and decrypts every message."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any, cast

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from subscribers import alerts
from subscribers.progress import CHANNEL
from subscribers.settings import PushSettings
from subscribers.testing import PushServiceStandIn
from tests.conftest import postgres_schema_url
from tests.pushhelpers import Api, by_state, query, server_env
from tests.support import ServerProcess
from tests.test_push_server import api_for, ready, start, subscribe_all
from ticker import appkeys, audit
from ticker.app import create_app
from ticker.newsroom.articles import Article
from ticker.settings import load_settings

ALERT = {"title": "Polls close", "body": "Results from 22:00.", "url": "https://news.example/v"}


@pytest.fixture
async def standin() -> AsyncIterator[PushServiceStandIn]:
    async with PushServiceStandIn() as ps:
        yield ps


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def wait_status(api: Api, alert_id: int, wanted: str, within: float = 30) -> Any:
    deadline = time.monotonic() + within
    while True:
        status, body = await api.call("GET", f"/api/alerts/{alert_id}")
        assert status == 200, body
        if body["status"] == wanted or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.05)


def audit_of(srv: ServerProcess) -> list[tuple[str, str, str]]:
    """The audit log's alert entries (the test's token, made by the CLI, is logged too)."""
    return [tuple(r) for r in query(srv.data_dir, "SELECT actor, action, target FROM audit_log "
                                                  "WHERE action LIKE 'alert.%' ORDER BY id")]


async def test_topics_and_languages_reach_exactly_the_match_and_preview_counts_them_first(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    srv, api, key = await ready(server_factory, standin, http)
    groups = {("sport", "en"): 2, ("sport", "de"): 1, ("sport", "fr"): 1, ("news", "de"): 1,
              ("sport", "en-GB"): 1, ("sport", "pt-BR"): 1}
    subs: dict[tuple[str, str], list[Any]] = {}
    for (topic, lang), n in groups.items():
        subs[(topic, lang)] = [standin.subscribe(key) for _ in range(n)]
        await subscribe_all(api, subs[(topic, lang)], topics=[topic], language=lang)
    body = {**ALERT, "topics": ["sport"], "languages": ["en", "de"]}
    rows_before = query(srv.data_dir, "SELECT COUNT(*) FROM alerts")
    status, seen = await api.call("POST", "/api/alerts/preview", body)
    assert status == 200, seen
    assert seen["audience"] == 4 and seen["fits"] and seen["payload"]["title"] == ALERT["title"]
    # A preview writes nothing and sends nothing.
    assert query(srv.data_dir, "SELECT COUNT(*) FROM alerts") == rows_before
    assert audit_of(srv) == [] and standin.arrivals == []

    status, alert = await api.send(body)
    assert status == 201 and alert["languages"] == ["de", "en"], alert
    done = await api.wait_done(alert["id"])
    assert (done["status"], done["total"], by_state(done["counts"])) == ("done", 4, {"sent": 4})
    reached = {k for k, group in subs.items() for s in group if standin.received(s)}
    assert reached == {("sport", "en"), ("sport", "de"), ("sport", "en-GB")}
    assert seen["audience"] == sum(len(standin.received(s)) for g in subs.values() for s in g)
    assert audit_of(srv) == [("token:tests", "alert.create", f"alert:{alert['id']}")]


async def test_a_scheduled_alert_fires_once_at_its_time_across_a_restart(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    srv, api, key = await ready(server_factory, standin, http)
    subs = [standin.subscribe(key) for _ in range(3)]
    await subscribe_all(api, subs)
    send_at = time.time() + 8
    status, alert = await api.send({**ALERT, "collapse": "polls", "send_at": send_at})
    assert status == 201 and alert["status"] == "scheduled", alert
    assert (alert["sendAt"], alert["total"]) == (pytest.approx(send_at), 0)
    await asyncio.to_thread(srv.restart)
    assert time.time() < send_at, "the restart took longer than the schedule allows"
    assert standin.arrivals == []
    done = await wait_status(api, alert["id"], "done")
    assert by_state(done["counts"]) == {"sent": 3}
    first = min(a.at for a in standin.arrivals)
    assert first >= send_at  # not early
    assert all(a.headers["Topic"] == "polls" for a in standin.arrivals)
    # Once: a second restart finds nothing left to send.
    await asyncio.to_thread(srv.restart)
    await asyncio.sleep(1.5)
    assert [len(standin.received(s)) for s in subs] == [1, 1, 1]
    assert audit_of(srv) == [("token:tests", "alert.schedule", f"alert:{alert['id']}")]


async def test_a_scheduled_alert_due_while_the_server_was_down_fires_after_it_unless_expired(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    srv, api, key = await ready(server_factory, standin, http)
    sub = standin.subscribe(key)
    await subscribe_all(api, [sub])
    soon = time.time() + 3
    _, within_ttl = await api.send({**ALERT, "send_at": soon, "ttl": 3600})
    _, past_ttl = await api.send({**ALERT, "title": "Stale", "send_at": soon, "ttl": 1})
    await asyncio.to_thread(srv.stop)
    await asyncio.sleep(max(0.0, soon + 2 - time.time()))
    await asyncio.to_thread(srv.start)
    assert by_state((await wait_status(api, within_ttl["id"], "done"))["counts"]) == {"sent": 1}
    expired = await wait_status(api, past_ttl["id"], "expired")
    assert (expired["status"], expired["total"]) == ("expired", 0)
    assert [m["title"] for m in standin.received(sub)] == [ALERT["title"]]


async def test_cancelling_a_scheduled_alert_sends_nothing_and_lists_newest_first(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    srv, api, key = await ready(server_factory, standin, http)
    await subscribe_all(api, [standin.subscribe(key) for _ in range(2)])
    _, first = await api.send({**ALERT, "title": "First", "send_at": time.time() + 2})
    status, cancelled = await api.call("POST", f"/api/alerts/{first['id']}/cancel")
    assert status == 200 and cancelled["status"] == "cancelled", cancelled
    assert (await api.call("POST", f"/api/alerts/{first['id']}/cancel"))[0] == 409
    _, second = await api.send({**ALERT, "title": "Second"})
    await api.wait_done(second["id"])
    await asyncio.sleep(max(0.0, first["sendAt"] + 1.5 - time.time()))
    assert {(a.payload or {}).get("title") for a in standin.arrivals} == {"Second"}
    assert len(standin.arrivals) == 2
    status, listed = await api.call("GET", "/api/alerts?limit=5")
    assert status == 200
    assert [(a["title"], a["status"]) for a in listed["alerts"]] == [
        ("Second", "done"), ("First", "cancelled")]
    assert [a["title"] for a in (await api.call("GET", "/api/alerts?limit=1"))[1]["alerts"]] \
        == ["Second"]
    assert audit_of(srv) == [("token:tests", "alert.schedule", f"alert:{first['id']}"),
                             ("token:tests", "alert.cancel", f"alert:{first['id']}"),
                             ("token:tests", "alert.create", f"alert:{second['id']}")]


async def test_test_send_reaches_only_that_subscription_and_counts_for_no_reader(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    srv, api, key = await ready(server_factory, standin, http)
    subs = [standin.subscribe(key) for _ in range(3)]
    await subscribe_all(api, subs)
    editor = subs[1]
    status, sent = await api.call("POST", "/api/alerts/test",
                                  {"alert": ALERT, "endpoint": editor.endpoint})
    assert status == 200, sent
    assert (sent["status"], sent["outcome"]) == (201, "accepted")
    assert [len(standin.received(s)) for s in subs] == [0, 1, 0]
    assert standin.received(editor)[0]["alert"] == sent["alert"]
    assert standin.rejections == []  # the real VAPID and encryption
    assert (await api.call("GET", "/api/alerts"))[1] == {"alerts": []}
    status, refused = await api.call("POST", "/api/alerts/test", {
        "alert": ALERT, "endpoint": standin.subscribe(key).endpoint})
    assert (status, refused["error"]["code"]) == (404, "unknown_subscription")
    assert audit_of(srv) == [("token:tests", "alert.test", f"alert:{sent['alert']}")]


async def test_send_at_in_the_past_or_without_an_offset_is_refused_and_nothing_stored(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    srv, api, _ = await ready(server_factory, standin, http)
    for send_at in (time.time() - 3600, "2030-01-01T10:00:00", time.time() + 400 * 86400):
        status, body = await api.send({**ALERT, "send_at": send_at})
        assert (status, body["error"]["code"]) == (400, "invalid_alert"), body
    assert query(srv.data_dir, "SELECT COUNT(*) FROM alerts") == [(0,)]


async def read_events(resp: aiohttp.ClientResponse, alert_id: int, until: str,
                      within: float = 30) -> list[dict[str, Any]]:
    """The status objects of one alert from a console:alerts event stream, up to ``until``."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + within
    while not found or found[-1]["status"] != until:
        line = (await asyncio.wait_for(resp.content.readline(),
                                       deadline - time.monotonic())).decode()
        if line.startswith("data: "):
            event = json.loads(line[6:])
            if event.get("type") == "message" and event["data"]["id"] == alert_id:
                found.append(event["data"])
    return found


async def test_console_alerts_carries_each_change_throttled_and_ends_on_the_final_counts(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    srv, api, key = await ready(server_factory, standin, http)
    await subscribe_all(api, [standin.subscribe(key) for _ in range(400)])
    # An editor's bearer token: what CONSOLE's guard on console:* channels accepts on SSE.
    async with http.get(f"{srv.url}/sse?channels={CHANNEL}",
                        headers={"Authorization": f"Bearer {api.token}"}) as resp:
        assert resp.status == 200
        started = time.monotonic()
        _, alert = await api.send({**ALERT, "send_at": time.time() + 2})
        frames = await read_events(resp, alert["id"], "done")
        seconds = time.monotonic() - started
    statuses = [f["status"] for f in frames]
    assert statuses[0] == "scheduled" and "sending" in statuses
    assert statuses.index("sending") < len(statuses) - 1  # a start frame before the end
    assert by_state(frames[-1]["counts"]) == {"sent": 400} and frames[-1]["remaining"] == 0
    assert len(frames) <= 4 * seconds + 3  # at most about four a second


async def test_the_article_hook_makes_one_alert_per_article_to_its_topic_and_language(
        tmp_path: Any, standin: PushServiceStandIn) -> None:
    env = {"TICKER_DATA_DIR": str(tmp_path), **server_env(standin)}
    app = create_app(load_settings(environ=env, parts=(PushSettings,)))
    async with TestClient(TestServer(app)) as client:
        api = Api(cast(Any, client.session), str(client.make_url("")).rstrip("/"))
        key = await api.public_key()
        readers = {(topic, lang): standin.subscribe(key)
                   for topic in ("news", "sport") for lang in ("en-gb", "de")}
        for (topic, lang), sub in readers.items():
            assert (await api.subscribe(sub, topics=[topic], language=lang))[0] == 201
        hook = app[appkeys.article_alerts]
        story = Article(7, "cms-7", "https://news.example/bridge", "Bridge closed",
                        "The river rose overnight.", "news", (), "en-gb", "", None, None, True)
        alert_id = await hook(story, "user:alice")
        # The CMS fixes a typo and the approval is clicked again: still the one alert.
        assert await hook(replace(story, title="Bridge closed to traffic"), "system") == alert_id
        assert await hook(story, "user:bob") == alert_id
        db = app[appkeys.database]
        deadline = time.monotonic() + 20
        while (await alerts.status(db, alert_id) or {}).get("status") != "done":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        reached = {k for k, sub in readers.items() if standin.received(sub)}
        assert reached == {("news", "en-gb")}
        (message,) = standin.received(readers[("news", "en-gb")])
        assert (message["title"], message["body"], message["url"]) == (
            "Bridge closed", "The river rose overnight.", "https://news.example/bridge")
        assert [(e["actor"], e["action"]) for e in await audit.recent(db)] == [
            ("user:alice", "alert.create")]


def test_with_push_off_there_is_no_article_hook(tmp_path: Any) -> None:
    app = create_app(load_settings(environ={"TICKER_DATA_DIR": str(tmp_path),
                                            "TICKER_MODE": "production"}))
    assert appkeys.article_alerts not in app


async def test_the_cli_schedules_an_alert_to_several_languages_and_follows_it_to_the_end(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    srv, api, key = await ready(server_factory, standin, http)
    subs = {lang: standin.subscribe(key) for lang in ("en", "de", "fr")}
    for lang, sub in subs.items():
        assert (await api.subscribe(sub, language=lang))[0] == 201
    send_at = time.time() + 2
    out = await asyncio.to_thread(
        srv.cli, "alerts", "send", "--title", "Polls close", "--url", "/polls",
        "--language", "en", "--language", "de", "--send-at",
        time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(send_at + 1)), "--follow",
        "--server", srv.url, "--token", api.token)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "done"
    assert {lang for lang, sub in subs.items() if standin.received(sub)} == {"en", "de"}
    assert min(a.at for a in standin.arrivals) >= int(send_at + 1)


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from postgres_schema_url()


@pytest.mark.postgres
async def test_two_servers_on_one_postgresql_start_each_scheduled_alert_once(
        server_factory: Any, standin: PushServiceStandIn, http: aiohttp.ClientSession,
        pg_url: str) -> None:
    one = await start(server_factory, standin, "one", TICKER_DATABASE_URL=pg_url)
    two = await start(server_factory, standin, "two", TICKER_DATABASE_URL=pg_url)
    api_one, api_two = api_for(http, one), api_for(http, two)
    subs = [standin.subscribe(await api_one.public_key()) for _ in range(20)]
    await subscribe_all(api_one, subs)
    # The same moment on both nodes: each wakes for both alerts and races the other.
    send_at = time.time() + 3
    _, first = await api_one.send({**ALERT, "title": "One", "send_at": send_at})
    _, second = await api_two.send({**ALERT, "title": "Two", "send_at": send_at})
    for alert in (first, second):
        done = await wait_status(api_one, alert["id"], "done")
        assert by_state(done["counts"]) == {"sent": 20}, done
    assert all(sorted(m["title"] for m in standin.received(s)) == ["One", "Two"]
               for s in subs)
