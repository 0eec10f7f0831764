"""The delivery engine against the push-service stand-in, on a real SQLite file, with a
clock the tests move: outcomes, Retry-After, host pauses, retries, cancel, JWT reuse."""

from __future__ import annotations

import asyncio
import email.utils
from pathlib import Path
from typing import Any

import pytest

from subscribers import alerts
from subscribers.crypto.vapid import JWT_RENEW_AFTER, JwtCache, ensure_key
from subscribers.delivery import batchstore
from subscribers.delivery.batching import COUNT_KEYS
from subscribers.delivery.payload import alert_topic
from subscribers.testing import Cue, verify_vapid
from tests.pushhelpers import SUBJECT, ManualClock, alert_in, engine_rig


@pytest.mark.parametrize(("status", "state", "kept"), [
    (201, "sent", True), (202, "sent", True), (404, "gone", False), (410, "gone", False),
    (400, "failed", True), (413, "failed", True), (401, "failed", True), (403, "failed", True),
    (429, "retry", True), (503, "retry", True), (406, "retry", True), (500, "retry", True),
])
async def test_each_answer_does_the_right_thing_to_the_subscription(
        tmp_path: Path, status: int, state: str, kept: bool) -> None:
    async with engine_rig(tmp_path) as rig:
        sub = await rig.subscriber()
        rig.ps.cue(sub, Cue(status))
        alert_id = await rig.alert()
        summary = await rig.engine.run_pass(alert_id)
        assert await rig.subscribed(sub) is kept
        row = await rig.row(alert_id, sub)
        counts = (await alerts.status(rig.db, alert_id) or {})["counts"]
        if state == "sent":  # counted in its batch's result, no row
            assert row is None and counts["accepted"] == counts["sent"] == 1
        elif kept:
            assert row is not None and row["state"] == state and row["last_status"] == status
        else:
            assert row is None  # every trace gone with the subscription
            assert (counts["gone"], counts["pruned"]) == (1, 1)
        assert (counts["targeted"], counts[state]) == (1, 1)
        assert counts["retried"] == (state == "retry")
        assert sum(summary.outcomes.values()) == 1


async def test_retry_after_is_honoured_to_the_second(tmp_path: Path) -> None:
    async with engine_rig(tmp_path) as rig:
        sub = await rig.subscriber()
        rig.ps.cue(sub, Cue(429, {"Retry-After": "120"}))
        alert_id = await rig.alert()
        t0 = rig.clock.now()
        await rig.engine.run_pass(alert_id)
        row = await rig.row(alert_id, sub)
        assert row is not None and row["next_attempt_at"] == t0 + 120
        rig.clock.t = t0 + 119
        await rig.engine.run_pass(alert_id)
        assert len(rig.ps.requests_for(sub)) == 1  # not a moment early
        rig.clock.t = t0 + 120
        await rig.engine.run_pass(alert_id)
        assert [p["alert"] for p in rig.ps.received(sub)] == [alert_id]
        assert (await rig.row(alert_id, sub) or {})["state"] == "sent"  # its row, now sent


async def test_retry_after_as_an_http_date_is_honoured(tmp_path: Path) -> None:
    async with engine_rig(tmp_path) as rig:
        sub = await rig.subscriber()
        when = int(rig.clock.now()) + 300
        rig.ps.cue(sub, Cue(503, {"Retry-After": email.utils.formatdate(when, usegmt=True)}))
        alert_id = await rig.alert()
        await rig.engine.run_pass(alert_id)
        assert (await rig.row(alert_id, sub) or {})["next_attempt_at"] == when


async def test_a_throttled_host_is_paused_for_every_subscriber_on_it(tmp_path: Path) -> None:
    async with engine_rig(tmp_path, concurrency=1) as rig:
        first, second = await rig.subscriber(), await rig.subscriber()
        rig.ps.cue(first, Cue(429, {"Retry-After": "60"}))
        alert_id = await rig.alert()
        t0 = rig.clock.now()
        await rig.engine.run_pass(alert_id)
        assert rig.ps.requests_for(second) == []  # not sent while the host is paused
        assert (await rig.row(alert_id, second) or {})["next_attempt_at"] == t0 + 60
        assert (await rig.row(alert_id, second) or {})["attempts"] == 0  # not an attempt
        rig.clock.t = t0 + 60
        await rig.engine.run_pass(alert_id)
        assert rig.ps.received(first) and rig.ps.received(second)


async def test_a_flapping_500_never_deletes_anyone_and_gives_up(tmp_path: Path) -> None:
    async with engine_rig(tmp_path, max_attempts=4) as rig:
        flaky, healthy = await rig.subscriber(), await rig.subscriber()
        rig.ps.cue(flaky, *[Cue(500)] * 10)
        alert_id = await rig.alert()
        summary = await rig.engine.run_alert(alert_id)  # sleeps on the manual clock
        assert await rig.subscribed(flaky)
        row = await rig.row(alert_id, flaky)
        assert row is not None and (row["state"], row["attempts"]) == ("gave_up", 4)
        assert summary.outcomes["server_error"] == 4 and rig.ps.received(healthy)
        assert (await alerts.get(rig.db, alert_id) or {})["status"] == "done"


async def test_recovering_500s_deliver_once_after_backoff(tmp_path: Path) -> None:
    async with engine_rig(tmp_path) as rig:
        sub = await rig.subscriber()
        rig.ps.cue(sub, Cue(500), Cue(502))
        alert_id = await rig.alert()
        t0 = rig.clock.now()
        await rig.engine.run_alert(alert_id)
        assert len(rig.ps.received(sub)) == 1
        # rand is 0.5 in the rig: waits of 0.75 * 10 s then 0.75 * 20 s
        assert rig.clock.now() == pytest.approx(t0 + 7.5 + 15)


async def test_a_timeout_is_retried_and_never_deletes(tmp_path: Path) -> None:
    async with engine_rig(tmp_path, request_timeout=0.3) as rig:
        sub = await rig.subscriber()
        rig.ps.cue(sub, Cue(201, delay=2.0))
        alert_id = await rig.alert()
        summary = await rig.engine.run_pass(alert_id)
        assert summary.outcomes == {"network_error": 1}
        assert (await rig.row(alert_id, sub) or {})["state"] == "retry"
        assert await rig.subscribed(sub)


async def test_topic_and_language_reach_exactly_the_matching_subscribers(
        tmp_path: Path) -> None:
    async with engine_rig(tmp_path) as rig:
        en_sport = await rig.subscriber(("sport",), "en")
        gb_sport = await rig.subscriber(("sport", "news"), "en-gb")
        de_sport = await rig.subscriber(("sport",), "de")
        en_news = await rig.subscriber(("news",), "en")
        alert_id = await rig.alert(alert_in(topics=("sport",), language="en"))
        await rig.engine.run_pass(alert_id)
        got = {s.endpoint for s in (en_sport, gb_sport, de_sport, en_news) if rig.ps.received(s)}
        assert got == {en_sport.endpoint, gb_sport.endpoint}


async def test_cancel_stops_what_has_not_left(tmp_path: Path) -> None:
    async with engine_rig(tmp_path) as rig:
        sub = await rig.subscriber()
        rig.ps.cue(sub, Cue(503, {"Retry-After": "30"}))
        alert_id = await rig.alert()
        await rig.engine.run_pass(alert_id)
        assert await alerts.cancel(rig.db, alert_id, rig.clock.now())
        rig.engine.cancel(alert_id)
        rig.clock.t += 60
        await rig.engine.run_pass(alert_id)
        assert len(rig.ps.requests_for(sub)) == 1
        assert (await rig.row(alert_id, sub) or {})["state"] == "cancelled"


async def test_a_retry_claimed_by_a_node_that_died_is_sent_again_once_its_lease_runs_out(
        tmp_path: Path) -> None:
    async with engine_rig(tmp_path) as rig:
        sub = await rig.subscriber()
        rig.ps.cue(sub, Cue(503, {"Retry-After": "30"}))
        alert_id = await rig.alert()
        await rig.engine.run_pass(alert_id)
        t0 = rig.clock.now()
        # another node claimed the retry and died with it on the wire
        await rig.db.execute("UPDATE alert_deliveries SET state = 'sending', owner = 'dead', "
                             "next_attempt_at = ?", (t0 + 60,))
        rig.clock.t = t0 + 59
        await rig.engine.run_pass(alert_id)
        assert len(rig.ps.requests_for(sub)) == 1  # its lease still runs: not touched
        rig.clock.t = t0 + 60
        await rig.engine.run_pass(alert_id)
        assert [p["alert"] for p in rig.ps.received(sub)] == [alert_id]
        assert (await rig.row(alert_id, sub) or {})["state"] == "sent"


async def test_one_vapid_signature_serves_many_messages_until_half_life(
        tmp_path: Path) -> None:
    async with engine_rig(tmp_path) as rig:
        clock, signed = ManualClock(), list[str]()
        cache = JwtCache(SUBJECT, clock.now, signed.append)
        key = await ensure_key(rig.db)
        first = cache.authorization(rig.ps.origin, key)
        assert all(cache.authorization(rig.ps.origin, key) == first for _ in range(100))
        clock.t += JWT_RENEW_AFTER
        renewed = cache.authorization(rig.ps.origin, key)
        assert renewed != first and signed == [rig.ps.origin] * 2
        _jwt, k = verify_vapid(renewed, rig.ps.origin, clock.now())
        assert k == key.public_key


async def test_unusable_stored_keys_fail_that_delivery_and_the_rest_are_sent(
        tmp_path: Path) -> None:
    async with engine_rig(tmp_path) as rig:
        good, bad = await rig.subscriber(), await rig.subscriber()
        # 65 bytes that decode but are no point on P-256 (as if the row were edited by hand)
        await rig.db.execute("UPDATE push_subscriptions SET p256dh = ? WHERE endpoint = ?",
                             ("BA" + "E" * 85, bad.endpoint))
        alert_id = await rig.alert()
        summary = await rig.engine.run_pass(alert_id)
        assert [p["alert"] for p in rig.ps.received(good)] == [alert_id]
        assert rig.ps.requests_for(bad) == []
        assert (await rig.row(alert_id, bad) or {})["state"] == "failed"
        assert summary.states == {"sent": 1, "failed": 1}


async def test_every_push_of_an_alert_carries_one_topic_of_its_own(tmp_path: Path) -> None:
    async with engine_rig(tmp_path) as rig:
        sub = await rig.subscriber()
        rig.ps.cue(sub, Cue(500))
        alert_id = await rig.alert()
        await rig.engine.run_alert(alert_id)
        topics = [a.headers["Topic"] for a in rig.ps.requests_for(sub)]
        assert topics == [alert_topic(alert_id, None)] * 2 == [f"alert-{alert_id}"] * 2


async def test_a_large_audience_goes_out_in_batches_each_sent_once_with_exact_counts(
        tmp_path: Path) -> None:
    async with engine_rig(tmp_path, concurrency=3, batch_size=4) as rig:
        subs = [await rig.subscriber() for _ in range(10)]
        rig.ps.cue(subs[1], Cue(410))
        rig.ps.cue(subs[2], Cue(500))  # retried once, then accepted
        rig.ps.cue(subs[3], Cue(400))
        seen: list[int] = []
        rig.engine.on_progress = seen.append
        alert_id = await rig.alert()
        await rig.engine.run_alert(alert_id)
        assert [len(rig.ps.received(s)) for s in subs] == [1, 0, 1, 0, 1, 1, 1, 1, 1, 1]
        rows = await rig.db.fetchall("SELECT first_id, last_id, targeted, state "
                                     "FROM alert_batches ORDER BY first_id")
        assert [(r["targeted"], r["state"]) for r in rows] == [(4, "done"), (4, "done"),
                                                               (2, "done")]
        status = await alerts.status(rig.db, alert_id)
        assert status is not None and status["status"] == "done"
        assert {k: status["counts"][k] for k in COUNT_KEYS} == {
            "targeted": 10, "accepted": 8, "failed": 1, "pruned": 1, "retried": 1}
        assert (status["total"], status["remaining"]) == (10, 0)
        assert seen.count(alert_id) >= 4  # three batch results, the retry, the end


async def test_cancel_stops_a_batch_at_its_next_subscriber(tmp_path: Path) -> None:
    async with engine_rig(tmp_path, concurrency=1, batch_size=10) as rig:
        subs = [await rig.subscriber() for _ in range(5)]
        alert_id = await rig.alert()
        sent_one = asyncio.Event()
        rig.engine.on_progress = lambda _id: None
        original = rig.engine.sender.post

        async def post_then_cancel(url: str, headers: dict[str, str], body: bytes) -> Any:
            reply = await original(url, headers, body)
            await alerts.cancel(rig.db, alert_id, rig.clock.now())
            rig.engine.cancel(alert_id)
            sent_one.set()
            return reply

        rig.engine.sender.post = post_then_cancel  # type: ignore[method-assign]
        await rig.engine.run_pass(alert_id)
        assert sent_one.is_set()
        assert sum(len(rig.ps.received(s)) for s in subs) == 1
        counts = (await alerts.status(rig.db, alert_id) or {})["counts"]
        assert (counts["accepted"], counts["cancelled"], counts["targeted"]) == (1, 4, 5)


async def test_a_batch_left_by_a_failed_pass_is_sent_by_the_nodes_next_pass(
        tmp_path: Path) -> None:
    async with engine_rig(tmp_path) as rig:
        sub = await rig.subscriber()
        alert_id = await rig.alert()
        now = rig.clock.now()
        # a pass of this node leased the batch and failed (say, the database went away);
        # the lease would be renewed as long as the node lives
        assert await batchstore.lease(rig.db, alert_id, rig.engine.owner, now, now + 30, 10)
        await rig.engine.run_pass(alert_id)
        assert [p["alert"] for p in rig.ps.received(sub)] == [alert_id]
        assert (await alerts.status(rig.db, alert_id) or {})["counts"]["accepted"] == 1
