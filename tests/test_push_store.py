"""The Web Push storage layer behaves the same on every database backend (SQLite and
PostgreSQL): VAPID keys, subscriptions and their topics, who an alert reaches, idempotency
keys, durable claims and batched results, crash recovery, receipts, outcome counts, and
unsubscribing leaving no trace. Real functions, a real database per test, no mocks."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from subscribers import alerts
from subscribers import subscriptions as store
from subscribers.crypto import vapid
from subscribers.delivery import batchstore
from subscribers.delivery import store as deliveries
from subscribers.delivery.store import DeliveryWriter, Result
from subscribers.migrations import WITH_PLATFORM
from subscribers.testing import verify_vapid
from subscribers.validate import SubscriptionIn, parse_receipt
from tests.pushhelpers import SUBJECT, ManualClock, alert_in
from ticker.errors import TickerError
from ticker.storage import Database, open_database


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await open_database(database_url, WITH_PLATFORM)
    try:
        yield database
    finally:
        await database.close()


def sub_in(topics: tuple[str, ...] = ("news",), language: str = "en", *,
           endpoint: str | None = None, auth: str | None = None,
           expires: float | None = None) -> SubscriptionIn:
    return SubscriptionIn(endpoint or f"https://push.example/{secrets.token_hex(8)}",
                          "p256dh-" + secrets.token_hex(8), auth or secrets.token_hex(8),
                          expires, topics, language, "Europe/London", None)


async def subscribe(db: Database, sub: SubscriptionIn, now: float = 1000.0) -> int:
    """Store ``sub`` with the current key; its id."""
    key = await vapid.ensure_key(db)
    await store.upsert(db, sub, key.id, now)
    row = await db.fetchone("SELECT id FROM push_subscriptions WHERE endpoint = ?",
                            (sub.endpoint,))
    assert row is not None
    return int(row["id"])


async def topics_of(db: Database, sub_id: int) -> list[str]:
    rows = await db.fetchall("SELECT topic FROM push_subscription_topics "
                             "WHERE subscription_id = ? ORDER BY topic", (sub_id,))
    return [r["topic"] for r in rows]


async def states(db: Database, alert_id: int) -> dict[int, str]:
    return {k: v["state"] for k, v in (await deliveries.delivery_states(db, alert_id)).items()}


async def table_names(db: Database) -> list[str]:
    if db.dialect == "sqlite":
        sql = ("SELECT name FROM sqlite_master WHERE type = 'table' "
               "AND name NOT LIKE 'sqlite_%'")
    else:
        sql = ("SELECT table_name AS name FROM information_schema.tables "
               "WHERE table_schema = current_schema()")
    return sorted(r["name"] for r in await db.fetchall(sql))


async def alert_with_rows(db: Database, now: float, **kwargs: Any) -> int:
    """An alert whose audience has a delivery row each, as retries have (and as alerts from
    before batches had): the row machinery on its own."""
    alert_id, _ = await alerts.create(db, alert_in(**kwargs), idempotency_key=None,
                                      created_by=None, now=now)
    alert = await alerts.get(db, alert_id)
    assert alert is not None
    where, params = alerts.audience(tuple(json.loads(alert["topics"])),
                                    tuple(json.loads(alert["languages"])), now)
    total = await db.execute(
        "INSERT INTO alert_deliveries (alert_id, subscription_id, state, attempts, "
        "next_attempt_at, updated_at) "
        f"SELECT ?, s.id, 'pending', 0, ?, ? FROM push_subscriptions s WHERE {where}",
        [alert_id, now, now, *params])
    await db.execute("UPDATE alerts SET total = ?, cut_to = audience_to WHERE id = ?",
                     (total, alert_id))
    return alert_id


def writer_for(db: Database, alert_id: int, clock: ManualClock, owner: str) -> DeliveryWriter:
    return DeliveryWriter(db, alert_id, clock, owner, 60.0)


def sent(sub_id: int, now: float) -> Result:
    return Result(sub_id, "sent", 1, now, 201)


# --------------------------------------------------------------------------- VAPID keys


async def test_the_first_vapid_key_is_made_once_and_rotation_adds_a_new_current_key(
        db: Database) -> None:
    assert await vapid.current_key(db) is None
    first = await vapid.ensure_key(db)
    assert (await vapid.ensure_key(db)).id == first.id  # made once, then reused
    second = await vapid.add_key(db)
    assert second.id != first.id and second.public_key != first.public_key
    current = await vapid.current_key(db)
    assert current is not None and current.public_key == second.public_key
    assert [k.public_key for k in await vapid.all_keys(db)] == [first.public_key,
                                                                second.public_key]
    assert await vapid.key_id_for(db, first.public_key) == first.id
    assert await vapid.key_id_for(db, second.public_key) == second.id
    assert await vapid.key_id_for(db, "B" + "A" * 86) is None
    ring = vapid.KeyRing(db)
    for key in (first, second):  # the stored private key still signs for its public key
        stored = await ring.get(key.id)
        header = vapid.JwtCache(SUBJECT, lambda: 1e9).authorization("https://push.example",
                                                                    stored)
        assert verify_vapid(header, "https://push.example", 1e9)[1] == key.public_key


# --------------------------------------------------------------------------- subscriptions


async def test_subscribing_again_with_one_endpoint_updates_it_in_place(db: Database) -> None:
    old_key = await vapid.ensure_key(db)
    first = sub_in(("news", "sport"), "en")
    assert await store.upsert(db, first, old_key.id, 1000.0) is True
    new_key = await vapid.add_key(db)
    again = SubscriptionIn(first.endpoint, "p256dh-new", "auth-new", 5000.0, ("weather",),
                           "de", "Europe/Berlin", None)
    assert await store.upsert(db, again, new_key.id, 2000.0) is False
    assert await store.count(db) == 1
    row = await db.fetchone("SELECT * FROM push_subscriptions")
    assert row is not None
    assert (row["p256dh"], row["auth"], row["language"], row["timezone"], row["vapid_key_id"],
            row["expiration_time"], row["created_at"], row["updated_at"]) == (
        "p256dh-new", "auth-new", "de", "Europe/Berlin", new_key.id, 5000.0, 1000.0, 2000.0)
    assert await topics_of(db, int(row["id"])) == ["weather"]


async def test_concurrent_subscribes_with_one_endpoint_store_one_subscription(
        db: Database) -> None:
    # A page and its service worker often post the same subscription at once.
    key = await vapid.ensure_key(db)
    # Open several pooled connections first, so the requests below really overlap.
    await asyncio.gather(*(db.fetchall("SELECT id FROM vapid_keys") for _ in range(4)))
    endpoint = "https://push.example/same"
    subs = [sub_in((topic,), endpoint=endpoint) for topic in ("news", "sport", "weather")]
    created = await asyncio.gather(*(store.upsert(db, s, key.id, 1000.0) for s in subs))
    assert created.count(True) >= 1 and await store.count(db) == 1
    row = await db.fetchone("SELECT id, auth FROM push_subscriptions")
    assert row is not None
    (winner,) = [s for s in subs if s.auth == row["auth"]]
    assert await topics_of(db, int(row["id"])) == list(winner.topics)  # one request's topics


async def test_unsubscribing_needs_the_matching_auth_and_removes_every_trace(
        db: Database) -> None:
    clock = ManualClock(1000.0)
    leaving, staying = sub_in(("news", "sport")), sub_in(("news",))
    leaving_id, staying_id = await subscribe(db, leaving), await subscribe(db, staying)
    delivered = await alert_with_rows(db, clock.now())
    waiting = await alert_with_rows(db, clock.now(), title="Later")
    writer = writer_for(db, delivered, clock, "node")
    for sub_id in (leaving_id, staying_id):
        assert await writer.claim(sub_id)
        writer.result(sent(sub_id, clock.now()))
    await writer.drain()
    await alerts.record_receipt(db, delivered, "shown")

    assert not await store.unsubscribe(db, leaving.endpoint, staying.auth)
    assert not await store.unsubscribe(db, "https://push.example/unknown", leaving.auth)
    assert await store.unsubscribe(db, leaving.endpoint, leaving.auth)
    assert not await store.unsubscribe(db, leaving.endpoint, leaving.auth)  # already gone

    dump = json.dumps([await db.fetchall(f"SELECT * FROM {t}")
                       for t in await table_names(db)], default=str)
    for secret in (leaving.endpoint, leaving.auth, leaving.p256dh):
        assert secret not in dump
    assert staying.endpoint in dump
    for table, column in (("push_subscriptions", "id"),
                          ("push_subscription_topics", "subscription_id"),
                          ("alert_deliveries", "subscription_id")):
        assert await db.fetchall(f"SELECT * FROM {table} WHERE {column} = ?",
                                 (leaving_id,)) == [], table
    assert await topics_of(db, staying_id) == ["news"]
    assert await states(db, delivered) == {staying_id: "sent"}
    assert await states(db, waiting) == {staying_id: "pending"}
    delivered_status = await alerts.status(db, delivered)
    assert delivered_status is not None
    assert delivered_status["counts"]["sent"] == 2  # the totals survive, anonymously
    assert delivered_status["receipts"] == {"shown": 1, "clicked": 0}
    waiting_status = await alerts.status(db, waiting)
    assert waiting_status is not None  # an open delivery is not an outcome: nothing to keep
    assert (waiting_status["counts"]["pending"], waiting_status["remaining"]) == (1, 1)
    assert "sent" not in waiting_status["counts"]


# --------------------------------------------------------------------------- audience

# (topics, language of the alert) -> which subscribers it reaches
AUDIENCE_CASES: list[tuple[tuple[str, ...], str, set[str]]] = [
    ((), "", {"en-sport", "en-news", "en-gb-both", "de-sport", "eng-sport", "pt-br-news"}),
    (("sport",), "", {"en-sport", "en-gb-both", "de-sport", "eng-sport"}),
    (("sport",), "en", {"en-sport", "en-gb-both"}),  # en reaches en-gb, never eng
    (("sport",), "en-gb", {"en-gb-both"}),  # en-gb does not reach plain en
    (("news",), "pt", {"pt-br-news"}),
    (("news", "sport"), "en", {"en-sport", "en-news", "en-gb-both"}),
    ((), "de", {"de-sport"}),
    (("weather",), "", set()),
    (("sport",), "fr", set()),
]
SUBSCRIBERS = {"en-sport": (("sport",), "en"), "en-news": (("news",), "en"),
               "en-gb-both": (("news", "sport"), "en-gb"), "de-sport": (("sport",), "de"),
               "eng-sport": (("sport",), "eng"), "pt-br-news": (("news",), "pt-br")}


async def test_an_alert_reaches_exactly_the_subscribers_its_topics_and_language_name(
        db: Database) -> None:
    ids = {name: await subscribe(db, sub_in(topics, lang))
           for name, (topics, lang) in SUBSCRIBERS.items()}
    expired = await subscribe(db, sub_in(("sport",), "en", expires=500.0))  # before "now"
    names = {v: k for k, v in ids.items()}
    for topics, language, expected in AUDIENCE_CASES:
        alert_id, created = await alerts.create(
            db, alert_in(topics=topics, language=language), idempotency_key=None,
            created_by=None, now=1000.0)
        reached = await audience_ids(db, alert_id, 1000.0)
        case = f"topics={topics} language={language!r}"
        assert created and expired not in reached, case
        assert {names[i] for i in reached} == expected, case
        assert len(reached) == len(set(reached)), case  # each in one batch only
        status = await alerts.status(db, alert_id)
        assert status is not None and status["total"] == len(expected), case
        assert (status["topics"], status["language"]) == (list(topics), language or None)


async def audience_ids(db: Database, alert_id: int, now: float, size: int = 2) -> list[int]:
    """Every subscriber the alert's batches hold, cutting them all (batches of ``size``)."""
    ids: list[int] = []
    while (batch := await batchstore.lease(db, alert_id, "node", now, now + 60, size)):
        ids += [d.subscription_id for d in await batchstore.load(db, batch, now)]
    return ids


# --------------------------------------------------------------------------- idempotency


async def test_an_idempotency_key_returns_the_same_alert_and_refuses_another_request(
        db: Database) -> None:
    await subscribe(db, sub_in())
    first, created = await alerts.create(db, alert_in(), idempotency_key="desk-42",
                                         created_by=7, now=1000.0)
    again, created_again = await alerts.create(db, alert_in(), idempotency_key="desk-42",
                                               created_by=7, now=1001.0)
    assert (created, created_again, again) == (True, False, first)
    with pytest.raises(TickerError) as err:
        await alerts.create(db, alert_in("Other"), idempotency_key="desk-42", created_by=7,
                            now=1002.0)
    assert err.value.code == "idempotency_conflict"
    other, _ = await alerts.create(db, alert_in(), idempotency_key="desk-43", created_by=7,
                                   now=1003.0)
    assert other != first
    rows = await db.fetchall("SELECT id, created_by FROM alerts ORDER BY id")
    assert rows == [{"id": first, "created_by": 7}, {"id": other, "created_by": 7}]
    assert await audience_ids(db, first, 1001.0) == [1]  # one audience: the retry's is not
    assert await audience_ids(db, first, 1001.0) == []


async def test_concurrent_requests_with_one_idempotency_key_create_one_alert(
        db: Database) -> None:
    # A client that timed out retries while its first request is still being stored.
    await subscribe(db, sub_in())
    await asyncio.gather(*(db.fetchall("SELECT id FROM vapid_keys") for _ in range(5)))
    made = await asyncio.gather(*(alerts.create(db, alert_in(), idempotency_key="retry-1",
                                                created_by=None, now=1000.0)
                                  for _ in range(5)))
    assert len({alert_id for alert_id, _ in made}) == 1
    assert [created for _, created in made].count(True) == 1
    assert len(await db.fetchall("SELECT id FROM alerts")) == 1


# --------------------------------------------------------------------------- deliveries


async def test_due_deliveries_come_in_pages_in_subscription_order(db: Database) -> None:
    ids = [await subscribe(db, sub_in()) for _ in range(5)]
    alert_id = await alert_with_rows(db, 1000.0)
    first = await deliveries.due_page(db, alert_id, 1000.0, 0, 2)
    assert [d.subscription_id for d in first] == ids[:2]
    rest = await deliveries.due_page(db, alert_id, 1000.0, first[-1].subscription_id, 10)
    assert [d.subscription_id for d in rest] == ids[2:]
    key = await vapid.ensure_key(db)
    assert all((d.attempts, d.vapid_key_id) == (0, key.id) for d in first + rest)
    assert first[0].endpoint.startswith("https://push.example/")
    assert await deliveries.due_page(db, alert_id, 999.0, 0, 10) == []  # not due yet
    assert await deliveries.next_due(db, alert_id) == 1000.0


async def test_a_claim_is_durable_when_it_returns_and_results_are_written_in_batches(
        db: Database) -> None:
    clock = ManualClock(1000.0)
    ids = [await subscribe(db, sub_in()) for _ in range(3)]
    alert_id = await alert_with_rows(db, clock.now())
    writer = writer_for(db, alert_id, clock, "writer")
    clock.t = 1001.0
    won = await asyncio.gather(*(writer.claim(i) for i in ids))
    assert won == [True, True, True]
    rows = await deliveries.delivery_states(db, alert_id)
    assert {r["state"] for r in rows.values()} == {"sending"}  # committed before sending
    assert {r["updated_at"] for r in rows.values()} == {1001.0}
    assert await deliveries.due_page(db, alert_id, clock.now(), 0, 10) == []
    writer.result(sent(ids[0], clock.now()))
    writer.result(Result(ids[1], "retry", 1, 1030.0, 503))
    writer.result(Result(ids[2], "gone", 1, clock.now(), 410, delete_subscription=True))
    await asyncio.sleep(0)
    assert set((await states(db, alert_id)).values()) == {"sending"}  # held for a batch
    await writer.drain()
    rows = await deliveries.delivery_states(db, alert_id)
    assert {i: (r["state"], r["attempts"], r["last_status"]) for i, r in rows.items()} == {
        ids[0]: ("sent", 1, 201), ids[1]: ("retry", 1, 503)}
    assert rows[ids[1]]["next_attempt_at"] == 1030.0
    assert await store.count(db) == 2  # 410: the subscription went with its rows
    assert await deliveries.next_due(db, alert_id) == 1030.0
    status = await alerts.status(db, alert_id)
    assert status is not None
    assert {k: status["counts"].get(k) for k in ("sent", "retry", "gone")} == {
        "sent": 1, "retry": 1, "gone": 1}
    assert status["remaining"] == 1
    await writer.close()


async def test_a_full_batch_of_results_is_written_without_waiting_for_the_pass_to_end(
        db: Database) -> None:
    clock = ManualClock(1000.0)
    n = deliveries.RESULT_BATCH
    key = await vapid.ensure_key(db)
    for i in range(n):
        await store.upsert(db, sub_in(endpoint=f"https://push.example/{i}"), key.id, 1000.0)
    alert_id = await alert_with_rows(db, clock.now())
    ids = sorted(await states(db, alert_id))
    writer = writer_for(db, alert_id, clock, "writer")
    assert all(await asyncio.gather(*(writer.claim(i) for i in ids)))
    for sub_id in ids:
        writer.result(sent(sub_id, clock.now()))
    for _ in range(200):  # the writer's own task, not drain(), writes the batch
        if set((await states(db, alert_id)).values()) == {"sent"}:
            break
        await asyncio.sleep(0.01)
    assert set((await states(db, alert_id)).values()) == {"sent"}
    assert await alerts.finish_if_done(db, alert_id, clock.now())
    assert (await alerts.get(db, alert_id) or {})["status"] == "done"
    await writer.close()


async def test_only_one_of_two_nodes_claims_a_delivery(db: Database) -> None:
    clock = ManualClock(1000.0)
    ids = [await subscribe(db, sub_in()) for _ in range(20)]
    alert_id = await alert_with_rows(db, clock.now())
    node_a, node_b = writer_for(db, alert_id, clock, "a"), writer_for(db, alert_id, clock, "b")
    won_a, won_b = await asyncio.gather(
        asyncio.gather(*(node_a.claim(i) for i in ids)),
        asyncio.gather(*(node_b.claim(i) for i in reversed(ids))))
    for sub_id, a, b in zip(ids, won_a, reversed(won_b), strict=True):
        assert a != b, sub_id  # exactly one node may send it
    assert not await node_a.claim(ids[0])  # claimed already (by either): never again
    await node_a.close()
    await node_b.close()


async def test_a_delivery_that_is_final_or_not_yet_due_cannot_be_claimed(db: Database) -> None:
    clock = ManualClock(1000.0)
    done_id, later_id = await subscribe(db, sub_in()), await subscribe(db, sub_in())
    alert_id = await alert_with_rows(db, clock.now())
    writer = writer_for(db, alert_id, clock, "writer")
    assert await writer.claim(done_id) and await writer.claim(later_id)
    writer.result(sent(done_id, clock.now()))
    writer.result(Result(later_id, "retry", 1, 1060.0, 429))
    await writer.drain()
    assert not await writer.claim(done_id)
    assert not await writer.claim(later_id)  # another node must not send it early
    clock.t = 1060.0
    assert await writer.claim(later_id)
    await writer.close()


async def test_a_late_result_never_reopens_a_finished_delivery(db: Database) -> None:
    # A node that saw the row due writes "retry" (its host was paused) after another node
    # sent it, or after an editor cancelled: the row must not be sent again.
    clock = ManualClock(1000.0)
    sent_id, cancelled_id = await subscribe(db, sub_in()), await subscribe(db, sub_in())
    alert_id = await alert_with_rows(db, clock.now())
    other = writer_for(db, alert_id, clock, "other")
    assert await other.claim(sent_id)
    other.result(sent(sent_id, clock.now()))
    await other.drain()
    assert await alerts.cancel(db, alert_id, clock.now())
    paused = writer_for(db, alert_id, clock, "paused")
    for sub_id in (sent_id, cancelled_id):
        paused.result(Result(sub_id, "retry", 0, 1100.0, None, claimed=False))
    await paused.drain()
    assert await states(db, alert_id) == {sent_id: "sent", cancelled_id: "cancelled"}
    assert await deliveries.next_due(db, alert_id) is None


async def test_a_paused_nodes_retry_never_reopens_a_row_another_node_is_sending(
        db: Database) -> None:
    # Node B has claimed the row and its request is on the way; node A read the row as due
    # before that and, its host being paused, writes "retry" without claiming. Were the row
    # reopened, a later pass would send the alert to that reader a second time.
    clock = ManualClock(1000.0)
    sub_id, waiting_id = await subscribe(db, sub_in()), await subscribe(db, sub_in())
    alert_id = await alert_with_rows(db, clock.now())
    node_b = writer_for(db, alert_id, clock, "node_b")
    assert await node_b.claim(sub_id)
    node_a = writer_for(db, alert_id, clock, "node_a")
    for row in (sub_id, waiting_id):
        node_a.result(Result(row, "retry", 0, 1100.0, None, claimed=False))
    await node_a.drain()
    assert await states(db, alert_id) == {sub_id: "sending", waiting_id: "retry"}
    node_b.result(sent(sub_id, clock.now()))  # B's own result still lands
    await node_b.drain()
    assert await states(db, alert_id) == {sub_id: "sent", waiting_id: "retry"}


async def test_a_claim_in_flight_at_a_crash_is_sent_again_once_its_lease_runs_out(
        db: Database) -> None:
    clock = ManualClock(1000.0)
    ids = [await subscribe(db, sub_in()) for _ in range(4)]
    alert_id = await alert_with_rows(db, clock.now())
    crashed = writer_for(db, alert_id, clock, "crashed")  # leases of 60 s
    assert await crashed.claim(ids[0]) and await crashed.claim(ids[1])
    crashed.result(sent(ids[0], clock.now()))
    await crashed.drain()
    await crashed.close()  # ids[1] was on the wire when the process died
    restarted = writer_for(db, alert_id, clock, "restarted")
    clock.t = 1059.0  # the dead node's lease still runs: a restart never takes it early
    assert [d.subscription_id for d in await deliveries.due_page(db, alert_id, clock.now(), 0,
                                                                  10)] == ids[2:]
    assert not await restarted.claim(ids[1])
    assert await deliveries.next_due(db, alert_id) == 1000.0  # ids[2:], due since the start
    clock.t = 1060.0
    due = await deliveries.due_page(db, alert_id, clock.now(), 0, 10)
    assert [d.subscription_id for d in due] == ids[1:]
    assert await restarted.claim(ids[1])  # at least once
    assert await states(db, alert_id) == {ids[0]: "sent", ids[1]: "sending",
                                          ids[2]: "pending", ids[3]: "pending"}
    await restarted.close()


async def test_a_live_nodes_renewed_lease_is_never_taken(db: Database) -> None:
    clock = ManualClock(1000.0)
    sub_id = await subscribe(db, sub_in())
    alert_id = await alert_with_rows(db, clock.now())
    live = writer_for(db, alert_id, clock, "live")
    assert await live.claim(sub_id)
    clock.t = 1050.0
    await batchstore.renew(db, "live", clock.now() + 60)
    clock.t = 1100.0  # past the first lease, inside the renewed one
    assert not await writer_for(db, alert_id, clock, "other").claim(sub_id)
    await live.close()


# --------------------------------------------------------------------------- alert status


async def test_receipts_are_counted_per_event_and_alert(db: Database) -> None:
    one, _ = await alerts.create(db, alert_in(), idempotency_key=None, created_by=None,
                                 now=1000.0)
    two, _ = await alerts.create(db, alert_in("Two"), idempotency_key=None, created_by=None,
                                 now=1000.0)
    for event in ("shown", "shown", "clicked", "shown"):
        await alerts.record_receipt(db, one, event)
    await asyncio.gather(*(alerts.record_receipt(db, two, "clicked") for _ in range(10)))
    assert (await alerts.status(db, one) or {})["receipts"] == {"shown": 3, "clicked": 1}
    assert (await alerts.status(db, two) or {})["receipts"] == {"shown": 0, "clicked": 10}
    assert await alerts.exists(db, one) and not await alerts.exists(db, two + 1000)
    assert not await alerts.exists(db, 2**63 - 1)  # the largest id a receipt may name


async def test_alert_status_counts_each_state_and_the_alert_ends_done_or_cancelled(
        db: Database) -> None:
    clock = ManualClock(1000.0)
    ids = [await subscribe(db, sub_in()) for _ in range(5)]
    alert_id = await alert_with_rows(db, clock.now())
    assert await alerts.sending(db) == [alert_id]
    writer = writer_for(db, alert_id, clock, "writer")
    for sub_id, state, code in ((ids[0], "sent", 201), (ids[1], "failed", 400),
                                (ids[2], "retry", 503)):
        assert await writer.claim(sub_id)
        writer.result(Result(sub_id, state, 1, 1030.0, code))
    await writer.drain()
    assert not await alerts.finish_if_done(db, alert_id, clock.now())
    status = await alerts.status(db, alert_id)
    assert status is not None
    assert {k: status[k] for k in ("status", "total", "remaining", "counts")} == {
        "status": "sending", "total": 5, "remaining": 3,
        "counts": {"sent": 1, "failed": 1, "retry": 1, "pending": 2, "targeted": 5,
                   "accepted": 1, "pruned": 0, "retried": 0}}
    assert (status["createdAt"], status["finishedAt"], status["ttl"]) == (1000.0, None, 3600)
    clock.t = 1010.0
    assert await alerts.cancel(db, alert_id, clock.now())
    assert not await alerts.cancel(db, alert_id, clock.now())  # already ended
    status = await alerts.status(db, alert_id)
    assert status is not None
    assert (status["status"], status["finishedAt"], status["remaining"], status["counts"]) == (
        "cancelled", 1010.0, 0, {"sent": 1, "failed": 1, "cancelled": 3, "targeted": 5,
                                 "accepted": 1, "pruned": 0, "retried": 0})
    assert await alerts.sending(db) == []
    assert await alerts.finish_if_done(db, alert_id, clock.now())
    assert (await alerts.get(db, alert_id) or {})["status"] == "cancelled"  # not "done"
    assert await alerts.status(db, alert_id + 1000) is None


async def test_an_alert_with_no_audience_finishes_at_once(db: Database) -> None:
    alert_id, _ = await alerts.create(db, alert_in(topics=("sport",)), idempotency_key=None,
                                      created_by=None, now=1000.0)
    assert await deliveries.next_due(db, alert_id) is None
    assert await alerts.finish_if_done(db, alert_id, 1001.0)
    row: dict[str, Any] | None = await alerts.get(db, alert_id)
    assert row is not None and (row["status"], row["finished_at"], row["total"]) == (
        "done", 1001.0, 0)


@pytest.mark.parametrize("alert", [2**63, 10**20])
def test_a_receipt_for_an_id_no_database_can_hold_is_refused_not_a_server_error(
        alert: int) -> None:
    with pytest.raises(TickerError) as err:
        parse_receipt({"alert": alert, "event": "shown"})
    assert err.value.code == "invalid_event"
    assert parse_receipt({"alert": 2**63 - 1, "event": "shown"}) == (2**63 - 1, "shown")
