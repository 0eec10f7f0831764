"""What editors can ask of an alert, without a server: the send_at rules, the preview's
budgets, the article -> alert mapping, the throttled live counts, and scheduling in the
database (once, on every backend, even with two callers at the same moment)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

import pytest

from subscribers import alerts
from subscribers import subscriptions as store
from subscribers.crypto import vapid
from subscribers.delivery import batchstore
from subscribers.delivery.store import Due
from subscribers.editorial.articles import alert_body, idempotency_key
from subscribers.editorial.preview import BODY_SHOWN, TITLE_SHOWN, preview
from subscribers.migrations import WITH_PLATFORM
from subscribers.progress import CHANNEL, ProgressPublisher, wait_before
from subscribers.validate import (
    MAX_SCHEDULE_AHEAD,
    AlertIn,
    SubscriptionIn,
    parse_alert,
    schedule_problem,
    send_at_seconds,
)
from tests.pushhelpers import alert_in
from ticker import audit
from ticker.errors import TickerError
from ticker.newsroom.articles import Article
from ticker.storage import Database, open_database

TOPICS = ("breaking", "news", "sport")
NOW = 1_800_000_000.0


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await open_database(database_url, WITH_PLATFORM)
    try:
        yield database
    finally:
        await database.close()


# --------------------------------------------------------------------------- send_at


@pytest.mark.parametrize(("given", "seconds"), [
    ("2027-01-15T08:00:00Z", 1_800_000_000.0),
    ("2027-01-15T09:00:00+01:00", 1_800_000_000.0),
    ("2027-01-15t08:00:00.5z", 1_800_000_000.5),
    ("2027-01-15 03:00:00-05:00", 1_800_000_000.0),
    (1_800_000_000, 1_800_000_000.0),
    (1_800_000_000.25, 1_800_000_000.25),
])
def test_send_at_reads_rfc3339_with_an_offset_and_unix_seconds(given: Any,
                                                               seconds: float) -> None:
    assert send_at_seconds(given) == seconds


@pytest.mark.parametrize(("body", "words"), [
    ({"send_at": "2027-01-15T08:00:00"}, "offset"),  # a local time: which newsroom's?
    ({"send_at": "2027-13-15T08:00:00Z"}, "RFC 3339"),
    ({"send_at": "tomorrow"}, "send_at"),
    ({"send_at": 0}, "send_at"),
    ({"send_at": True}, "send_at"),
    ({"send_at": NOW - 3600}, "in the past"),
    ({"send_at": NOW + MAX_SCHEDULE_AHEAD + 60}, "days ahead"),
    ({"collapse": "x" * 33}, "collapse"),
    ({"collapse": "no spaces"}, "collapse"),
    ({"languages": ["english"]}, "languages"),
])
def test_bad_send_at_collapse_and_languages_are_refused_with_a_clear_message(
        body: dict[str, Any], words: str) -> None:
    with pytest.raises(TickerError) as caught:
        parse_alert({"title": "T", "url": "/x", **body}, TOPICS, 3600, now=NOW)
    assert caught.value.code == "invalid_alert"
    assert words in caught.value.message


@pytest.mark.parametrize(("send_at", "now", "ok"), [
    (NOW, NOW, True), (NOW - 59, NOW, True), (NOW - 61, NOW, False),
    (NOW + MAX_SCHEDULE_AHEAD, NOW, True), (NOW + MAX_SCHEDULE_AHEAD + 1, NOW, False),
])
def test_schedule_window(send_at: float, now: float, ok: bool) -> None:
    assert (schedule_problem(send_at, now) is None) is ok


def test_languages_and_the_old_single_language_merge_lower_cased() -> None:
    alert = parse_alert({"title": "T", "url": "/x", "languages": ["pt-BR", "en"],
                         "language": "DE", "collapse": "storm_1",
                         "send_at": "2027-01-15T08:00:00Z"}, TOPICS, 3600, now=NOW)
    assert alert.languages == ("de", "en", "pt-br")
    assert (alert.collapse, alert.topic(7), alert.send_at) == ("storm_1", "storm_1",
                                                              1_800_000_000.0)
    assert parse_alert({"title": "T", "url": "/x", "tag": "s"}, TOPICS, 60).topic(7) == "alert-7"


# --------------------------------------------------------------------------- preview


def test_preview_counts_bytes_once_encrypted_and_characters_against_what_platforms_show(
        ) -> None:
    alert = parse_alert({"title": "T" * 50, "url": "/x", "body": "é" * 10}, TOPICS, 60)
    got = preview(alert, 7)
    assert got["payload"]["title"] == "T" * 50 and got["payload"]["alert"] > 10**14
    plaintext = len(json.dumps(got["payload"], separators=(",", ":"),
                               ensure_ascii=False).encode())
    assert got["bytes"] == plaintext + 103  # salt, rs, idlen, key id, delimiter, tag
    assert got["bytesLeft"] == got["maxBytes"] - got["bytes"] and got["fits"]
    assert got["audience"] == 7
    assert got["title"] == {"chars": 50, "max": TITLE_SHOWN}
    assert got["body"] == {"chars": 10, "max": BODY_SHOWN}


# --------------------------------------------------------------------------- article hook


def article(**changes: Any) -> Article:
    base: dict[str, Any] = dict(
        id=12, guid="cms-12", url="https://news.example/a", title="Bridge closed",
        summary="The river rose.", category="news", tags=(), language="en-gb",
        image="https://news.example/a.jpg", published=None, updated=None, breaking=True)
    base.update(changes)
    return Article(**base)


@pytest.mark.parametrize(("changes", "topics", "languages"), [
    ({}, ["news"], ["en-gb"]),
    ({"category": "weather"}, ["breaking"], ["en-gb"]),  # not a topic: breaking readers
    ({"category": "", "language": ""}, ["breaking"], []),
])
def test_an_article_becomes_an_alert_to_its_category_topic_and_language(
        changes: dict[str, Any], topics: list[str], languages: list[str]) -> None:
    body = alert_body(article(**changes), TOPICS)
    assert (body["topics"], body["languages"]) == (topics, languages)
    assert (body["title"], body["body"], body["url"]) == (
        "Bridge closed", "The river rose.", "https://news.example/a")
    assert alert_body(article(**changes), ("news",))["topics"] == (
        ["news"] if topics == ["news"] else [])  # no breaking topic: everyone


def test_a_long_summary_is_cut_and_a_bad_image_dropped_so_the_alert_is_valid() -> None:
    body = alert_body(article(summary="word " * 500, image="javascript:x"), TOPICS)
    assert len(body["body"]) == 280 and body["body"].endswith("\u2026")
    assert body["image"] == ""
    parse_alert(body, TOPICS, 60)  # valid as it is


def test_idempotency_key_is_the_guid_or_its_hash_when_it_would_not_fit_a_header() -> None:
    assert idempotency_key("cms-12") == "article:cms-12"
    for guid in ("x" * 300, "https://n.example/a b", "caf\u00e9"):
        key = idempotency_key(guid)
        assert key.startswith("article:sha256:") and len(key) == 15 + 64


# --------------------------------------------------------------------------- live counts


@pytest.mark.parametrize(("last", "now", "wait"), [
    (None, 5.0, 0.0), (5.0, 5.1, 0.15), (5.0, 5.25, 0.0), (5.0, 9.0, 0.0)])
def test_wait_before(last: float | None, now: float, wait: float) -> None:
    assert wait_before(last, now, 0.25) == pytest.approx(wait)


async def test_progress_is_throttled_per_alert_and_always_ends_on_the_final_state() -> None:
    state = {1: 0, 2: 0}
    sent: list[tuple[str, int, int]] = []

    async def status(alert_id: int) -> dict[str, Any]:
        return {"id": alert_id, "sent": state[alert_id]}

    async def publish(channel: str, data: Mapping[str, Any]) -> None:
        sent.append((channel, data["id"], data["sent"]))

    progress = ProgressPublisher(status, publish, interval=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for n in range(1, 101):  # 100 batches in ~0.5 s
        state[1] = n
        progress(1)
        if n == 50:
            state[2] = 1
            progress(2)
        await asyncio.sleep(0.005)
    await progress.flush()
    elapsed = loop.time() - started
    ones = [s for _, i, s in sent if i == 1]
    assert {c for c, _, _ in sent} == {CHANNEL}
    assert ones[-1] == 100 and ones == sorted(ones)
    assert len(ones) <= elapsed / 0.2 + 2  # at most one per interval (plus the first)
    assert [s for _, i, s in sent if i == 2] == [1]  # another alert is not held back


# --------------------------------------------------------------------------- scheduling


def _scheduled(send_at: float, ttl: int = 3600) -> AlertIn:
    return replace(alert_in(topics=("news",), ttl=ttl), send_at=send_at)


async def subscribe(db: Database, n: int) -> None:
    key_id = (await vapid.ensure_key(db)).id
    for i in range(n):
        await store.upsert(db, SubscriptionIn(
            f"https://push.example/{i}", "B" + "A" * 86, "A" * 22, None, ("news",), "en",
            "UTC", None), key_id, NOW)


async def test_a_scheduled_alert_starts_once_even_with_two_callers_at_its_time(
        db: Database) -> None:
    await subscribe(db, 3)
    alert_id, created = await alerts.create(db, _scheduled(NOW + 60), idempotency_key=None,
                                            created_by=None, now=NOW, actor="user:alice")
    assert created
    row = await alerts.status(db, alert_id)
    assert row is not None
    assert (row["status"], row["sendAt"], row["total"]) == ("scheduled", NOW + 60, 0)
    assert await alerts.next_scheduled(db) == NOW + 60
    assert await alerts.start_due(db, NOW + 59) == ([], [])
    both = await asyncio.gather(alerts.start_due(db, NOW + 60), alerts.start_due(db, NOW + 60))
    assert sorted(s for started, _ in both for s in started) == [alert_id]
    assert len(await cut_all(db, alert_id)) == 3  # its audience, cut as it is sent
    row = await alerts.status(db, alert_id)
    assert row is not None and (row["status"], row["total"]) == ("sending", 3)
    assert await alerts.next_scheduled(db) is None
    entries = await audit.recent(db)
    assert [(e["actor"], e["action"], e["target"]) for e in entries] == [
        ("user:alice", "alert.schedule", f"alert:{alert_id}")]


async def test_a_scheduled_alert_past_its_ttl_expires_and_a_cancelled_one_never_starts(
        db: Database) -> None:
    await subscribe(db, 2)
    late, _ = await alerts.create(db, _scheduled(NOW + 10, ttl=60), idempotency_key=None,
                                  created_by=None, now=NOW)
    kept, _ = await alerts.create(db, _scheduled(NOW + 20, ttl=3600), idempotency_key=None,
                                  created_by=None, now=NOW)
    dropped, _ = await alerts.create(db, _scheduled(NOW + 20), idempotency_key=None,
                                     created_by=None, now=NOW)
    assert await alerts.cancel(db, dropped, NOW + 1, "token:desk")
    assert await alerts.start_due(db, NOW + 100) == ([kept], [late])
    for alert_id, status, total in ((late, "expired", 0), (kept, "sending", 2),
                                    (dropped, "cancelled", 0)):
        await cut_all(db, alert_id)
        row = await alerts.status(db, alert_id)
        assert row is not None and (row["status"], row["total"]) == (status, total)
    assert not await alerts.cancel(db, late, NOW + 101)


# --------------------------------------------------------------------------- audience


async def cut_all(db: Database, alert_id: int) -> list[Due]:
    """Every subscriber of the alert's audience, as its batches hold them."""
    dues: list[Due] = []
    while (batch := await batchstore.lease(db, alert_id, "node", NOW, NOW + 60, 2)):
        dues += await batchstore.load(db, batch, NOW)
    return dues


READERS = {"en": ("news", "en"), "en-gb": ("news", "en-gb"), "de": ("news", "de"),
           "de-at": ("sport", "de-at"), "fr": ("sport", "fr"), "eng": ("news", "eng")}


@pytest.mark.parametrize(("topics", "languages", "expected"), [
    ((), (), set(READERS)),
    ((), ("en",), {"en", "en-gb"}),  # 'en' is not a prefix of 'eng'
    ((), ("en", "de"), {"en", "en-gb", "de", "de-at"}),
    ((), ("en-gb", "fr"), {"en-gb", "fr"}),
    (("sport",), ("de", "en"), {"de-at"}),
    (("news",), ("pt",), set()),
])
async def test_the_audience_takes_a_list_of_languages_each_reaching_its_subtags(
        db: Database, topics: tuple[str, ...], languages: tuple[str, ...],
        expected: set[str]) -> None:
    key_id = (await vapid.ensure_key(db)).id
    for name, (topic, language) in READERS.items():
        await store.upsert(db, SubscriptionIn(
            f"https://push.example/{name}", "B" + "A" * 86, "A" * 22, None, (topic,),
            language, "UTC", None), key_id, NOW)
    alert = replace(alert_in(topics=topics), languages=languages)
    assert await alerts.audience_size(db, alert, NOW) == len(expected)
    alert_id, _ = await alerts.create(db, alert, idempotency_key=None, created_by=None,
                                      now=NOW)
    dues = await cut_all(db, alert_id)
    assert {d.endpoint.rsplit("/", 1)[1] for d in dues} == expected
