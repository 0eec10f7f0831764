"""Web Push end to end: a real ``ticker serve`` process, its SQLite file, and the
push-service stand-in verifying VAPID and decrypting every message."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from subscribers.testing import Cue, PushServiceStandIn
from tests.pushhelpers import Api, by_state, query, server_env
from tests.support import ServerProcess

ALERT = {"title": "Flood warning for the city centre", "body": "Roads closed near the river.",
         "url": "https://news.example/flood", "tag": "flood-2024"}


@pytest.fixture
async def standin() -> AsyncIterator[PushServiceStandIn]:
    async with PushServiceStandIn() as ps:
        yield ps


async def start(server_factory: Any, ps: PushServiceStandIn, name: str = "node",
                **env: str) -> ServerProcess:
    """A server wired to the stand-in, started off the loop so the stand-in keeps answering."""
    srv: ServerProcess = server_factory(name, env=server_env(ps, **env))
    srv.token = await asyncio.to_thread(srv.create_token)  # type: ignore[attr-defined]
    return await asyncio.to_thread(srv.start)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def api_for(http: aiohttp.ClientSession, srv: ServerProcess) -> Api:
    return Api(http, srv.url, srv.token)  # type: ignore[attr-defined]


async def ready(server_factory: Any, ps: PushServiceStandIn, http: aiohttp.ClientSession,
                **env: str) -> tuple[ServerProcess, Api, str]:
    """A started server, its API as an editor, and the VAPID key browsers subscribe with."""
    srv = await start(server_factory, ps, **env)
    api = api_for(http, srv)
    return srv, api, await api.public_key()


async def subscribe_all(api: Api, subs: list[Any], **kwargs: Any) -> None:
    gate = asyncio.Semaphore(32)

    async def one(sub: Any) -> None:
        async with gate:
            status, body = await api.subscribe(sub, **kwargs)
            assert status == 201, body

    await asyncio.gather(*(one(s) for s in subs))


async def test_a_thousand_subscribers_each_decrypt_the_alert_under_a_few_vapid_signatures(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    srv, api, key = await ready(server_factory, standin, http)
    subs = [standin.subscribe(key) for _ in range(1000)]
    await subscribe_all(api, subs, topics=["news"])
    status, alert = await api.send(ALERT)
    assert status == 201  # its audience is cut as it is sent: the total grows to 1000
    done = await api.wait_done(alert["id"])
    assert done["total"] == done["counts"]["targeted"] == 1000
    assert (done["status"], by_state(done["counts"])) == ("done", {"sent": 1000})
    expected = {**ALERT, "icon": "", "image": "", "alert": alert["id"]}
    assert all(standin.received(s) == [expected] for s in subs)
    assert standin.rejections == []  # every request carried a valid VAPID JWT
    assert 1 <= len(standin.jwts) <= 5
    first = standin.arrivals[0].headers
    assert (first["Topic"], first["Urgency"]) == (f"alert-{alert['id']}", "normal")
    assert 0 < int(first["TTL"]) <= 4 * 3600
    async with http.get(srv.url + "/metrics") as resp:
        metrics = await resp.text()
    assert 'ticker_push_sends_total{outcome="accepted"} 1000.0' in metrics


async def test_topic_and_language_targeting_through_the_cli_reaches_exactly_the_match(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    srv, api, key = await ready(server_factory, standin, http)
    audience = {("sport", "en"): 2, ("sport", "de"): 1, ("news", "en"): 1, ("sport", "en-GB"): 1}
    subs: dict[tuple[str, str], list[Any]] = {}
    for (topic, lang), n in audience.items():
        subs[(topic, lang)] = [standin.subscribe(key) for _ in range(n)]
        await subscribe_all(api, subs[(topic, lang)], topics=[topic], language=lang)
    out = await asyncio.to_thread(
        srv.cli, "alerts", "send", "--title", "Goal!", "--url", "https://news.example/match",
        "--topic", "sport", "--language", "en", "--follow", "--server", srv.url,
        "--token", srv.token)  # type: ignore[attr-defined]
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["status"], by_state(result["counts"])) == ("done", {"sent": 3})
    assert "[" + "#" * 30 + "] 3/3" in out.stderr
    reached = {k for k, group in subs.items() for s in group if standin.received(s)}
    assert reached == {("sport", "en"), ("sport", "en-GB")}
    assert all(len(standin.received(s)) == 1 for s in subs[("sport", "en")])


async def test_subscribers_from_before_and_after_a_key_rotation_all_receive(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    srv = await start(server_factory, standin)
    api = api_for(http, srv)
    old_key = await api.public_key()
    before = standin.subscribe(old_key)
    assert (await api.subscribe(before))[0] == 201
    rotated = await asyncio.to_thread(srv.cli, "vapid", "rotate")
    new_key = rotated.stdout.strip()
    assert rotated.returncode == 0 and new_key != old_key
    assert await api.public_key() == new_key
    shown = await asyncio.to_thread(srv.cli, "vapid", "show")
    assert shown.stdout.strip() == new_key
    after = standin.subscribe(new_key)
    assert (await api.subscribe(after, vapidKey=new_key))[0] == 201
    # A page that fetched the key before the rotation subscribes a moment after it.
    late = standin.subscribe(old_key)
    assert (await api.subscribe(late, vapidKey=old_key))[0] == 201
    _, alert = await api.send(ALERT)
    done = await api.wait_done(alert["id"])
    assert by_state(done["counts"]) == {"sent": 3}, standin.rejections
    for sub in (before, after, late):
        (arrival,) = standin.requests_for(sub)
        assert arrival.vapid_key == sub.application_server_key  # verified with its own key
    assert standin.rejections == []


def _bad_subscriptions(ps: PushServiceStandIn, key: str) -> list[tuple[Any, int, str]]:
    good = ps.subscribe(key).subscription()

    def sub(**changes: Any) -> dict[str, Any]:
        return {"subscription": {**good, **changes}, "topics": ["news"], "language": "en",
                "timezone": "Europe/London"}

    port_off = ps.origin.rsplit(":", 1)[0] + ":1"
    return [
        ({"subscription": {**good, "keys": {"p256dh": good["keys"]["p256dh"]}}}, 400,
         "invalid_subscription"),
        (sub(keys={"p256dh": "BA" + "A" * 85, "auth": good["keys"]["auth"]}), 400,
         "invalid_subscription"),
        (sub(keys={"p256dh": good["keys"]["p256dh"], "auth": "AAAA"}), 400,
         "invalid_subscription"),
        ({**sub(), "topics": ["horoscopes"]}, 400, "unknown_topic"),
        ({**sub(), "language": "not a language"}, 400, "invalid_subscription"),
        ({**sub(), "timezone": "Europe/Atlantis"}, 400, "invalid_subscription"),
        ({**sub(), "vapidKey": "B" + "A" * 86}, 400, "invalid_subscription"),
        (sub(endpoint="https://push.evil.example/x"), 400, "endpoint_not_allowed"),
        (sub(endpoint="https://localhost/push/x"), 400, "endpoint_not_allowed"),
        (sub(endpoint="https://127.0.0.1/push/x"), 400, "endpoint_not_allowed"),
        (sub(endpoint="https://10.1.2.3/push/x"), 400, "endpoint_not_allowed"),
        (sub(endpoint=ps.origin.replace("http:", "https:") + "/push/x"), 400,
         "endpoint_not_allowed"),
        (sub(endpoint=port_off + "/push/x"), 400, "endpoint_not_allowed"),
        ({**sub(), "padding": "x" * 5000}, 413, "body_too_large"),
    ]


async def test_bad_input_gets_a_clear_error_and_nothing_is_stored_or_sent(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    # localhost and 10.1.2.3 are allowed names here, to show the address check refusing them.
    srv = await start(server_factory, standin, TICKER_PUSH_ALLOWED_HOSTS=",".join(
        [standin.origin, "localhost", "127.0.0.1", "10.1.2.3"]))
    api = api_for(http, srv)
    key = await api.public_key()
    for body, status, code in _bad_subscriptions(standin, key):
        got_status, got = await api.call("POST", "/api/push/subscriptions", body)
        assert (got_status, got["error"]["code"]) == (status, code), body
        assert got["error"]["message"]
    async with http.post(srv.url + "/api/push/subscriptions", data=b"{not json") as resp:
        assert (resp.status, (await resp.json())["error"]["code"]) == (400, "bad_json")
    assert query(srv.data_dir, "SELECT COUNT(*) FROM push_subscriptions") == [(0,)]
    # One real subscriber, then an alert too large for push services: refused, not sent.
    assert (await api.subscribe(standin.subscribe(key)))[0] == 201
    status, err = await api.send({**ALERT, "body": "word " * 600})
    assert (status, err["error"]["code"]) == (413, "payload_too_large")
    assert "bytes once encrypted" in err["error"]["message"]
    status, err = await api.send({**ALERT, "topics": ["weather"]})
    assert (status, err["error"]["code"]) == (400, "unknown_topic")
    assert query(srv.data_dir, "SELECT COUNT(*) FROM alerts") == [(0,)]
    await asyncio.sleep(0.2)
    assert standin.arrivals == []


async def test_unsubscribing_removes_every_trace_of_the_subscription(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    srv, api, key = await ready(server_factory, standin, http)
    leaving, staying = standin.subscribe(key), standin.subscribe(key)
    await subscribe_all(api, [leaving, staying])
    status, alert = await api.send(ALERT)
    await api.wait_done(alert["id"])
    wrong = {"endpoint": leaving.endpoint, "auth": staying.auth}
    status, body = await api.call("DELETE", "/api/push/subscriptions", wrong)
    assert (status, body["error"]["code"]) == (404, "unknown_subscription")
    status, _ = await api.call("DELETE", "/api/push/subscriptions",
                               {"endpoint": leaving.endpoint, "auth": leaving.auth})
    assert status == 204
    tables = [t for (t,) in query(srv.data_dir, "SELECT name FROM sqlite_master "
                                                "WHERE type = 'table'")]
    dump = json.dumps([query(srv.data_dir, f"SELECT * FROM {t}") for t in tables])
    for secret in (leaving.endpoint, leaving.auth, leaving.p256dh):
        assert secret not in dump
    assert staying.endpoint in dump
    assert query(srv.data_dir, "SELECT COUNT(*) FROM alert_deliveries") == [(0,)]  # counted
    status, after = await api.call("GET", f"/api/alerts/{alert['id']}")
    assert by_state(after["counts"]) == {"sent": 2}  # the totals survive, anonymously


async def kill_mid_send_and_restart(srv: ServerProcess, api: Api, standin: PushServiceStandIn,
                                    subs: list[Any]) -> dict[str, Any]:
    """Send an alert, SIGKILL the server (started with TICKER_PUSH_CONCURRENCY=4) while
    four requests are on the wire (and the rest of its one batch not yet sent), restart it
    and return the finished alert's status."""
    standin.default = Cue(201, delay=60)  # accepted on arrival, answered very slowly
    _, alert = await api.send(ALERT)
    for _ in range(200):
        if len(standin.arrivals) >= 4:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    srv.kill()  # four requests on the wire, the rest not yet sent
    assert len(standin.arrivals) == 4
    standin.default = Cue(201)
    await asyncio.to_thread(srv.start)
    return await api.wait_done(alert["id"])


async def test_a_killed_server_resends_what_was_in_flight_once_its_lease_runs_out(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    srv, api, key = await ready(server_factory, standin, http, TICKER_PUSH_CONCURRENCY="4",
                                TICKER_PUSH_LEASE_SECONDS="2")
    subs = [standin.subscribe(key) for _ in range(40)]
    await subscribe_all(api, subs)
    done = await kill_mid_send_and_restart(srv, api, standin, subs)
    assert done["status"] == "done"
    # the four on the wire at the kill get a second copy (same Topic); nobody gets none
    assert sorted(len(standin.received(s)) for s in subs) == [1] * 36 + [2] * 4
    assert len({a.headers["Topic"] for a in standin.arrivals}) == 1
    assert by_state(done["counts"]) == {"sent": 40}
    assert (done["counts"]["targeted"], done["counts"]["accepted"]) == (40, 40)


async def test_alert_api_idempotency_receipts_and_errors(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    srv = await start(server_factory, standin)
    api = api_for(http, srv)
    sub = standin.subscribe(await api.public_key())
    await subscribe_all(api, [sub])
    first = await api.send(ALERT, key="desk-42")
    again = await api.send(ALERT, key="desk-42")
    assert (first[0], again[0]) == (201, 200) and first[1]["id"] == again[1]["id"]
    status, err = await api.send({**ALERT, "title": "Other"}, key="desk-42")
    assert (status, err["error"]["code"]) == (409, "idempotency_conflict")
    alert_id = first[1]["id"]
    await api.wait_done(alert_id)
    assert len(standin.received(sub)) == 1
    for event in ("shown", "shown", "clicked"):
        status, _ = await api.call("POST", "/api/push/events", {"alert": alert_id, "event": event})
        assert status == 204
    status, body = await api.call("GET", f"/api/alerts/{alert_id}")
    assert body["receipts"] == {"shown": 2, "clicked": 1}
    for receipt, code in (({"alert": 99999, "event": "shown"}, "unknown_alert"),
                          ({"alert": alert_id, "event": "liked"}, "invalid_event")):
        status, err = await api.call("POST", "/api/push/events", receipt)
        assert err["error"]["code"] == code
    assert (await api.call("GET", "/api/alerts/99999"))[1]["error"]["code"] == "unknown_alert"
    status, err = await api.call("POST", f"/api/alerts/{alert_id}/cancel")
    assert (status, err["error"]["code"]) == (409, "conflict")
    anonymous = Api(http, srv.url)
    assert (await anonymous.send(ALERT))[0] == 401


async def test_subscription_creation_is_rate_limited_per_client(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    srv, api, key = await ready(server_factory, standin, http,
                                TICKER_PUSH_SUBSCRIBE_RATE_PER_MINUTE="2")
    results = [await api.subscribe(standin.subscribe(key)) for _ in range(3)]
    assert [s for s, _ in results] == [201, 201, 429]
    assert results[2][1]["error"]["code"] == "rate_limited"
    assert query(srv.data_dir, "SELECT COUNT(*) FROM push_subscriptions") == [(2,)]


@pytest.mark.parametrize(("trusted", "expected"), [
    # behind a trusted proxy each forwarded client has its own budget...
    ("127.0.0.1", [201, 201, 201, 201, 429]),
    # ...and without one the header is ignored: one peer, one budget, whatever it claims
    ("", [201, 201, 429, 429, 429]),
])
async def test_the_rate_limit_believes_x_forwarded_for_only_from_trusted_proxies(
        server_factory: Any, standin: PushServiceStandIn, http: aiohttp.ClientSession,
        trusted: str, expected: list[int]) -> None:
    _, api, key = await ready(server_factory, standin, http,
                              TICKER_PUSH_SUBSCRIBE_RATE_PER_MINUTE="2",
                              TICKER_TRUSTED_PROXIES=trusted)
    statuses = []
    for client in ("198.51.100.1", "198.51.100.1", "198.51.100.2", "198.51.100.2",
                   "198.51.100.2"):
        doc = {"subscription": standin.subscribe(key).subscription(), "language": "en"}
        status, _ = await api.call("POST", "/api/push/subscriptions", doc,
                                   {"X-Forwarded-For": f"6.6.6.6, {client}"})
        statuses.append(status)
    assert statuses == expected


async def test_push_refuses_to_start_in_production_without_a_vapid_subject_but_demo_warns(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    prod = await start(server_factory, standin, "prod", TICKER_VAPID_SUBJECT="")
    status, err = await Api(http, prod.url).call("GET", "/api/push/vapid-public-key")
    assert (status, err["error"]["code"]) == (503, "push_unavailable")
    assert "TICKER_VAPID_SUBJECT" in err["error"]["message"]
    assert "push refuses to start" in prod.log()
    status, health = await Api(http, prod.url).call("GET", "/healthz")
    assert (status, health["push"]["status"]) == (200, "off")
    demo = await start(server_factory, standin, "demo", TICKER_VAPID_SUBJECT="",
                       TICKER_MODE="demo")
    assert (await Api(http, demo.url).call("GET", "/api/push/vapid-public-key"))[0] == 200
    assert "mailto:ticker-demo@example.com" in demo.log()


async def test_a_changed_subscription_replaces_the_old_row_keeping_its_topics(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    srv, api, key = await ready(server_factory, standin, http)
    old, new, stranger = (standin.subscribe(key) for _ in range(3))
    await subscribe_all(api, [old], topics=["sport"])
    await subscribe_all(api, [stranger], topics=["news"])

    def change(sub: Any, old_endpoint: str, old_auth: str) -> dict[str, Any]:
        return {"subscription": {"endpoint": sub.endpoint,
                                 "keys": {"p256dh": sub.p256dh, "auth": sub.auth}},
                "vapidKey": key, "oldEndpoint": old_endpoint, "oldAuth": old_auth}

    # Without the old auth secret nobody can replace (and so remove) someone's row.
    status, _ = await api.call("POST", "/api/push/subscriptions",
                               change(new, stranger.endpoint, old.auth))
    assert status == 201
    status, _ = await api.call("POST", "/api/push/subscriptions",
                               change(new, old.endpoint, old.auth))
    assert status == 201
    rows = query(srv.data_dir, "SELECT s.endpoint, t.topic FROM push_subscriptions s "
                               "LEFT JOIN push_subscription_topics t ON t.subscription_id = s.id "
                               "ORDER BY s.id")
    assert (old.endpoint, "sport") not in rows
    assert (new.endpoint, "sport") in rows and (stranger.endpoint, "news") in rows
    assert len({endpoint for endpoint, _ in rows}) == 2


async def test_healthz_shows_push_services_that_refuse_our_vapid_credentials(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    srv = await start(server_factory, standin)
    api = api_for(http, srv)
    assert (await api.call("GET", "/healthz"))[1]["push"] == {"status": "ok"}
    refused = standin.subscribe(await api.public_key())
    standin.cue(refused, Cue(403))
    await subscribe_all(api, [refused])
    _, alert = await api.send(ALERT)
    await api.wait_done(alert["id"])
    status, health = await api.call("GET", "/healthz")
    assert status == 200  # a restart would not fix it: no 503 for the load balancer
    assert health["status"] == "degraded"
    assert health["push"]["vapid_rejected_by"] == [standin.origin]


async def test_a_new_alert_goes_out_while_a_slow_one_is_still_sending(
        server_factory: Any, standin: PushServiceStandIn,
        http: aiohttp.ClientSession) -> None:
    _, api, key = await ready(server_factory, standin, http)
    slow, breaking = standin.subscribe(key), standin.subscribe(key)
    await subscribe_all(api, [slow], topics=["sport"])
    await subscribe_all(api, [breaking], topics=["news"])
    standin.cue(slow, Cue(201, delay=4.0))  # its push service takes 4 s to answer
    _, first = await api.send({**ALERT, "title": "Match report", "topics": ["sport"]})
    for _ in range(150):  # until the first alert's request is out (and left unanswered)
        if standin.requests_for(slow):
            break
        await asyncio.sleep(0.02)
    _, second = await api.send({**ALERT, "topics": ["news"]})
    for _ in range(150):  # 3 s, well inside the 4 s the first alert's request takes
        if standin.received(breaking):
            break
        await asyncio.sleep(0.02)
    assert [p["alert"] for p in standin.received(breaking)] == [second["id"]]
    _, now = await api.call("GET", f"/api/alerts/{first['id']}")
    assert now["status"] == "sending"  # the slow one was still under way meanwhile
    assert by_state((await api.wait_done(first["id"]))["counts"]) == {"sent": 1}
