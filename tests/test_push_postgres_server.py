"""A real ``ticker serve`` on PostgreSQL (``TICKER_DATABASE_URL``, nothing else changed)
sends an alert end to end through the push-service stand-in, and after a kill sends again
what was in flight (at least once) and the rest once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import asyncpg
import pytest

from subscribers.testing import PushServiceStandIn
from tests.conftest import postgres_schema_url
from tests.pushhelpers import by_state
from tests.test_push_server import ALERT, api_for, kill_mid_send_and_restart, start, subscribe_all

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from postgres_schema_url()


@pytest.fixture
async def standin() -> AsyncIterator[PushServiceStandIn]:
    async with PushServiceStandIn() as ps:
        yield ps


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def pg_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Read the server's schema directly, as a second client of the same database."""
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


async def test_a_server_on_postgresql_sends_a_targeted_alert_end_to_end(
        server_factory: Any, standin: PushServiceStandIn, http: aiohttp.ClientSession,
        pg_url: str) -> None:
    srv = await start(server_factory, standin, TICKER_DATABASE_URL=pg_url)
    api = api_for(http, srv)
    key = await api.public_key()
    groups: dict[tuple[str, str], list[Any]] = {}
    for (topic, lang), n in {("sport", "en"): 3, ("sport", "en-GB"): 1, ("sport", "de"): 1,
                             ("news", "en"): 1}.items():
        groups[(topic, lang)] = [standin.subscribe(key) for _ in range(n)]
        await subscribe_all(api, groups[(topic, lang)], topics=[topic], language=lang)
    again = groups[("news", "en")][0]  # subscribing again updates, never duplicates
    assert (await api.subscribe(again, topics=["news"]))[0] == 201
    alert = {**ALERT, "topics": ["sport"], "language": "en"}
    (status, first), (status_again, second) = await asyncio.gather(
        api.send(alert, key="pg-1"), api.send(alert, key="pg-1"))
    assert sorted((status, status_again)) == [200, 201] and first["id"] == second["id"]
    done = await api.wait_done(first["id"])
    assert (done["status"], done["total"], by_state(done["counts"])) == ("done", 4, {"sent": 4})
    reached = {k for k, subs in groups.items() for s in subs if standin.received(s)}
    assert reached == {("sport", "en"), ("sport", "en-GB")}
    assert all(len(standin.received(s)) == (k[0] == "sport" and k[1] != "de")
               for k, subs in groups.items() for s in subs)  # once each, never twice
    assert standin.rejections == []
    for event in ("shown", "clicked"):
        assert (await api.call("POST", "/api/push/events",
                               {"alert": first["id"], "event": event}))[0] == 204
    leaving = groups[("sport", "en")][0]
    assert (await api.call("DELETE", "/api/push/subscriptions",
                           {"endpoint": leaving.endpoint, "auth": leaving.auth}))[0] == 204
    status, after = await api.call("GET", f"/api/alerts/{first['id']}")
    assert (by_state(after["counts"]), after["receipts"]) == (
        {"sent": 4}, {"shown": 1, "clicked": 1})
    # Everything lives in PostgreSQL: no SQLite file was made.
    assert not (srv.data_dir / "ticker.db").exists()
    assert await pg_rows(pg_url, "SELECT COUNT(*) FROM push_subscriptions") == [(5,)]
    # accepted deliveries are counted in their batch, with no row
    assert await pg_rows(pg_url, "SELECT COUNT(*) FROM alert_deliveries") == [(0,)]
    assert await pg_rows(pg_url, "SELECT COUNT(*) FROM push_subscriptions "
                                 f"WHERE endpoint = '{leaving.endpoint}'") == [(0,)]


async def test_a_killed_server_on_postgresql_resends_what_was_in_flight_after_its_lease(
        server_factory: Any, standin: PushServiceStandIn, http: aiohttp.ClientSession,
        pg_url: str) -> None:
    srv = await start(server_factory, standin, TICKER_DATABASE_URL=pg_url,
                      TICKER_PUSH_CONCURRENCY="4", TICKER_PUSH_LEASE_SECONDS="2")
    api = api_for(http, srv)
    subs = [standin.subscribe(await api.public_key()) for _ in range(20)]
    await subscribe_all(api, subs)
    done = await kill_mid_send_and_restart(srv, api, standin, subs)
    assert (done["status"], by_state(done["counts"])) == ("done", {"sent": 20})
    assert sorted(len(standin.received(s)) for s in subs) == [1] * 16 + [2] * 4
