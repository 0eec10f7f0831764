"""Audience batches: the pure rules (which outcomes keep a row, when a lease is free, the
in-flight window, an alert's counts) as tables, and cutting and leasing on every backend."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from subscribers import alerts
from subscribers import subscriptions as store
from subscribers.crypto import vapid
from subscribers.delivery import batchstore
from subscribers.delivery.batching import (
    Tally,
    alert_counts,
    batches_in_flight,
    in_flight_window,
    lease_is_free,
    needs_row,
)
from subscribers.migrations import WITH_PLATFORM
from subscribers.validate import SubscriptionIn
from tests.pushhelpers import alert_in
from ticker.storage import Database, open_database


@pytest.mark.parametrize(("state", "row"), [
    ("sent", False), ("gone", False), ("retry", True), ("failed", True), ("gave_up", True),
    ("expired", True),
])
def test_only_deliveries_that_must_be_found_again_or_shown_keep_a_row(state: str,
                                                                       row: bool) -> None:
    assert needs_row(state) is row


@pytest.mark.parametrize(("state", "lease_until", "now", "free"), [
    ("leased", 100.0, 99.9, False),  # a live node's lease: never taken
    ("leased", 100.0, 100.0, True),  # ran out: its node stopped
    ("leased", 100.0, 500.0, True),
    ("done", None, 500.0, False),
    ("done", 100.0, 500.0, False),
])
def test_a_batch_is_free_only_once_its_lease_ran_out(state: str, lease_until: float | None,
                                                     now: float, free: bool) -> None:
    assert lease_is_free(state, lease_until, now) is free


@pytest.mark.parametrize(("concurrency", "size", "held", "window"), [
    (128, 200, 2, 400), (128, 128, 2, 256), (129, 128, 3, 384), (4, 25, 2, 50),
    (1, 1, 2, 2),
])
def test_the_in_flight_window_is_the_batches_a_node_holds(concurrency: int, size: int,
                                                          held: int, window: int) -> None:
    assert batches_in_flight(concurrency, size) == held
    assert in_flight_window(concurrency, size) == window


def test_a_tally_keeps_rows_only_for_retries_and_failures_and_lists_prunes() -> None:
    tally = Tally(targeted=6)
    for sub_id, state in enumerate(("sent", "sent", "gone", "retry", "failed", "expired")):
        tally.add(sub_id, state, 1, 50.0, 201, delete_subscription=state == "gone")
    assert sorted(tally.rows) == [3, 4, 5] and tally.pruned_ids == [2]
    assert tally.rows[3] == ("retry", 1, 50.0, 201)
    assert tally.result(cancelled=2) == {"accepted": 2, "pruned": 1, "retried": 1,
                                         "failed": 2, "cancelled": 2}


BATCHES = {"targeted": 10, "accepted": 6, "pruned": 1, "retried": 2, "failed": 1,
           "cancelled": 0}
COUNT_CASES = [
    # batches, rows by state, pending, targeted -> counts
    ({}, {}, 0, 0, {"targeted": 0, "accepted": 0, "failed": 0, "pruned": 0, "retried": 0}),
    (BATCHES, {"retry": 1, "sent": 1, "failed": 1}, 0, 10,
     {"sent": 7, "gone": 1, "retry": 1, "failed": 1, "targeted": 10, "accepted": 7,
      "pruned": 1, "retried": 2}),
    (BATCHES, {"gone": 1, "gave_up": 1, "expired": 1}, 5, 15,  # retries all ended
     {"sent": 6, "gone": 2, "gave_up": 1, "expired": 1, "pending": 5, "targeted": 15,
      "accepted": 6, "pruned": 2, "failed": 2, "retried": 2}),
    ({**BATCHES, "cancelled": 3}, {"cancelled": 2}, 0, 10,
     {"sent": 6, "gone": 1, "cancelled": 5, "targeted": 10, "accepted": 6, "pruned": 1,
      "failed": 0, "retried": 2}),
]


@pytest.mark.parametrize(("batches", "rows", "pending", "targeted", "counts"), COUNT_CASES)
def test_an_alerts_counts_add_its_batches_and_its_rows(
        batches: dict[str, int], rows: dict[str, int], pending: int, targeted: int,
        counts: dict[str, int]) -> None:
    assert alert_counts(batches, rows, pending, targeted) == counts


# --------------------------------------------------------------------------- storage


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await open_database(database_url, WITH_PLATFORM)
    try:
        yield database
    finally:
        await database.close()


async def subscribers(db: Database, n: int, topics: tuple[str, ...] = ("news",)) -> list[int]:
    key = await vapid.ensure_key(db)
    for _ in range(n):
        await store.upsert(db, SubscriptionIn(f"https://push.example/{secrets.token_hex(8)}",
                                              "p", "a", None, topics, "en", "UTC", None),
                           key.id, 1000.0)
    return [int(r["id"]) for r in await db.fetchall(
        "SELECT id FROM push_subscriptions ORDER BY id")]


async def new_alert(db: Database, **kwargs: object) -> int:
    alert_id, _ = await alerts.create(db, alert_in(**kwargs),  # type: ignore[arg-type]
                                      idempotency_key=None, created_by=None, now=1000.0)
    return alert_id


async def test_creating_an_alert_writes_one_row_whatever_its_audience(db: Database) -> None:
    await subscribers(db, 30)
    alert_id = await new_alert(db)
    for table in ("alert_deliveries", "alert_batches"):
        assert await db.fetchall(f"SELECT * FROM {table}") == [], table
    row = await alerts.get(db, alert_id)
    assert row is not None and (row["cut_to"], row["audience_to"]) == (0, 30)


async def test_batches_are_cut_by_keyset_and_later_subscribers_are_not_in_the_audience(
        db: Database) -> None:
    ids = await subscribers(db, 5, ("sport",)) + (await subscribers(db, 4))[5:]
    alert_id = await new_alert(db, topics=("news",))  # ids 6..9
    await subscribers(db, 2)  # after the alert: not its audience
    got = []
    while (batch := await batchstore.lease(db, alert_id, "n", 1000.0, 1060.0, 3)):
        got.append((batch.first_id, batch.last_id, batch.targeted))
    assert got == [(0, ids[7], 3), (ids[7], 9, 1)]
    assert await batchstore.next_due(db, alert_id, 1000.0) == 1060.0  # the leases held
    assert (await alerts.status(db, alert_id) or {})["total"] == 4


async def test_two_nodes_leasing_at_once_never_share_a_batch(db: Database) -> None:
    ids = await subscribers(db, 20)
    alert_id = await new_alert(db)

    async def node(owner: str) -> list[int]:
        mine: list[int] = []
        while (batch := await batchstore.lease(db, alert_id, owner, 1000.0, 1060.0, 3)):
            mine += [d.subscription_id for d in await batchstore.load(db, batch, 1000.0)]
        return mine

    await asyncio.gather(*(db.fetchall("SELECT 1") for _ in range(4)))  # pooled connections
    a, b, c = await asyncio.gather(node("a"), node("b"), node("c"))
    assert sorted(a + b + c) == ids  # everyone once, nobody twice


async def test_an_expired_lease_is_sent_again_and_its_old_holder_cannot_write(
        db: Database) -> None:
    await subscribers(db, 3)
    alert_id = await new_alert(db)
    first = await batchstore.lease(db, alert_id, "dead", 1000.0, 1030.0, 10)
    assert first is not None and first.attempts == 1
    assert await batchstore.lease(db, alert_id, "new", 1029.0, 1089.0, 10) is None
    again = await batchstore.lease(db, alert_id, "new", 1030.0, 1090.0, 10)
    assert again is not None and (again.first_id, again.attempts) == (first.first_id, 2)
    assert not await batchstore.finish(db, first, "dead", Tally(3), 0, 1031.0)
    tally = Tally(3)
    for d in await batchstore.load(db, again, 1031.0):
        tally.add(d.subscription_id, "sent", 1, 1031.0, 201)
    assert await batchstore.finish(db, again, "new", tally, 0, 1031.0)
    counts = (await alerts.status(db, alert_id) or {})["counts"]
    assert (counts["targeted"], counts["accepted"]) == (3, 3)  # exact across the re-send
    assert await alerts.finish_if_done(db, alert_id, 1032.0)


async def test_a_renewed_lease_is_never_taken_by_another_node(db: Database) -> None:
    await subscribers(db, 3)
    alert_id = await new_alert(db)
    assert await batchstore.lease(db, alert_id, "live", 1000.0, 1030.0, 10)
    await batchstore.renew(db, "live", 1070.0)  # the live node's runner, every third
    assert await batchstore.lease(db, alert_id, "other", 1050.0, 1110.0, 10) is None
    assert await batchstore.next_due(db, alert_id, 1050.0) == 1070.0
    taken = await batchstore.lease(db, alert_id, "other", 1070.0, 1130.0, 10)
    assert taken is not None and taken.attempts == 2  # it stopped renewing: sent again


async def test_a_reader_who_left_while_their_batch_was_out_gets_no_row(db: Database) -> None:
    ids = await subscribers(db, 2)
    alert_id = await new_alert(db)
    batch = await batchstore.lease(db, alert_id, "n", 1000.0, 1060.0, 10)
    assert batch is not None
    tally = Tally(2)
    for sub_id in ids:
        tally.add(sub_id, "retry", 1, 1030.0, 503)
    row = await db.fetchone("SELECT endpoint, auth FROM push_subscriptions WHERE id = ?",
                            (ids[0],))
    assert row is not None and await store.unsubscribe(db, row["endpoint"], row["auth"])
    assert await batchstore.finish(db, batch, "n", tally, 0, 1001.0)
    rows = await db.fetchall("SELECT subscription_id FROM alert_deliveries")
    assert rows == [{"subscription_id": ids[1]}]
