"""The newsroom's core without I/O, by tables: what counts as a change, where an article
goes, what the breaking policy does, signatures, entries to articles, addresses, backoff,
and the headlines channels made on first use."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pydantic
import pytest
from yarl import URL

from ticker.feed.channels import Hub
from ticker.feed.names import feed_channels, is_on_demand
from ticker.net.addresses import Exempt, is_public, parse_origin
from ticker.net.client import Refused, check_url
from ticker.newsroom import routing, signature
from ticker.newsroom.articles import Article, article_json
from ticker.newsroom.errors import InvalidSignature, StaleSignature
from ticker.newsroom.feeds.parse import Defaults, MalformedFeed, parse_feed
from ticker.newsroom.feeds.state import BACKOFF_CAP, FeedState, backoff
from ticker.newsroom.incoming import ArticleIn, plain_text

BASE = Article(id=7, guid="g", url="https://n.example/a", title="T", summary="S",
               category="sport", tags=("a",), language="en", image="", published=1.0,
               updated=None, breaking=False)


def edit(**changes: Any) -> Article:
    return dataclasses.replace(BASE, id=0, **changes)


@pytest.mark.parametrize(("old", "new", "result", "store", "publish"), [
    (None, edit(), "created", True, True),
    (BASE, edit(), "unchanged", False, False),
    (BASE, edit(title="T2"), "updated", True, True),
    (BASE, edit(summary="S2"), "updated", True, True),
    (BASE, edit(url="https://n.example/b"), "updated", True, True),
    (BASE, edit(image="https://i.example/x.jpg"), "updated", True, True),
    (BASE, edit(category="world"), "updated", True, True),
    (BASE, edit(language="fr"), "updated", True, True),
    (BASE, edit(breaking=True), "updated", True, True),
    # Not shown by widgets, and touched by CMSs without news: stored, not published.
    (BASE, edit(tags=("a", "b")), "unchanged", True, False),
    (BASE, edit(updated=2.0), "unchanged", True, False),
    (BASE, edit(published=3.0), "unchanged", True, False),
])
def test_what_counts_as_a_change(old: Article | None, new: Article, result: str,
                                 store: bool, publish: bool) -> None:
    change = routing.compare(old, new)
    assert (change.result, change.store, change.publish) == (result, store, publish)


def test_an_update_keeps_the_stored_id_and_approval() -> None:
    old = dataclasses.replace(BASE, approval="pending")
    assert routing.merged(old, edit(title="x")) == dataclasses.replace(
        BASE, title="x", approval="pending")


@pytest.mark.parametrize(("language", "category", "channels"), [
    ("en", "sport", ["headlines", "headlines:en", "headlines:sport"]),
    ("", "sport", ["headlines", "headlines:sport"]),
    ("en", "", ["headlines", "headlines:en"]),
    ("", "", ["headlines"]),
    ("news", "news", ["headlines", "headlines:news"]),  # one channel, one message
])
def test_an_article_goes_to_headlines_and_its_language_and_category(
        language: str, category: str, channels: list[str]) -> None:
    assert routing.channels(edit(language=language, category=category)) == channels


def test_the_headline_payload_is_the_contracts_item_plus_the_articles_identity() -> None:
    assert routing.headline(edit(summary="", image="https://i.example/p.jpg")) == {
        "title": "T", "url": "https://n.example/a", "image": "https://i.example/p.jpg",
        "guid": "g", "category": "sport", "language": "en",
        "published": "1970-01-01T00:00:01Z", "breaking": False}


@pytest.mark.parametrize(("policy", "old", "new", "action"), [
    ("auto", None, edit(breaking=True), "alert"),
    ("approve", None, edit(breaking=True), "queue"),
    ("off", None, edit(breaking=True), "none"),
    ("auto", None, edit(), "none"),
    ("auto", BASE, edit(breaking=True), "alert"),  # became breaking on an update
    ("approve", BASE, edit(breaking=True), "queue"),
    # Already breaking: a typo fixed must not alert (or queue) a second time.
    ("auto", dataclasses.replace(BASE, breaking=True), edit(breaking=True, title="x"), "none"),
    ("approve", dataclasses.replace(BASE, breaking=True), edit(breaking=True), "none"),
])
def test_the_breaking_policy_acts_only_when_an_article_becomes_breaking(
        policy: routing.Policy, old: Article | None, new: Article, action: str) -> None:
    assert routing.breaking_action(policy, old, new) == action


NOW = 1_800_000_000.0
BODY = b'{"guid": "g"}'


@pytest.mark.parametrize(("header", "error"), [
    (signature.sign("s3cret", int(NOW), BODY), None),
    (signature.sign("s3cret", int(NOW) - 300, BODY), None),  # the window's edge
    (signature.sign("s3cret", int(NOW) + 300, BODY), None),
    (signature.sign("s3cret", int(NOW) - 301, BODY), StaleSignature),
    (signature.sign("s3cret", int(NOW) + 301, BODY), StaleSignature),
    (signature.sign("other", int(NOW), BODY), InvalidSignature),
    (signature.sign("s3cret", int(NOW), BODY + b" "), InvalidSignature),
    # A stale timestamp with a wrong MAC says "invalid": an unsigned caller learns nothing.
    (signature.sign("other", int(NOW) - 1000, BODY), InvalidSignature),
    (f"t={int(NOW)},v1=00,v1=" + signature.sign("s3cret", int(NOW), BODY).split("v1=")[1],
     None),  # several v1 values (a secret being rotated): one must match
    ("v1=abc", InvalidSignature),
    (f"t=x{int(NOW)},v1=abc", InvalidSignature),
    ("t=1", InvalidSignature),
    ("garbage", InvalidSignature),
    ("t=1,v1=" + "a" * 2000, InvalidSignature),
])
def test_signatures(header: str, error: type[Exception] | None) -> None:
    if error is None:
        assert len(signature.verify(header, "s3cret", BODY, NOW)) == 64
    else:
        with pytest.raises(error):
            signature.verify(header, "s3cret", BODY, NOW)


def test_no_secret_refuses_every_signature() -> None:
    with pytest.raises(InvalidSignature, match="no webhook_secret"):
        signature.verify(signature.sign("", int(NOW), BODY), "", BODY, NOW)


GOOD = {"guid": "g", "url": "https://n.example/a", "title": "T"}


@pytest.mark.parametrize(("change", "ok"), [
    ({}, True),
    ({"url": "http://n.example/a"}, True),
    ({"url": "ftp://n.example/a"}, False),
    ({"url": "javascript:alert(1)"}, False),
    ({"url": "https://n.example/a b"}, False),
    ({"image": "https://i.example/x.jpg"}, True),
    ({"image": "data:image/png;base64,AAAA"}, False),
    ({"title": " "}, False),
    ({"title": "x" * 301}, False),
    ({"summary": "x" * 1001}, False),
    ({"guid": ""}, False),
    ({"language": "pt-br"}, True),
    ({"language": "EN"}, False),
    ({"language": "english!"}, False),
    ({"category": "sport"}, True),
    ({"category": "Sport News"}, False),
    ({"tags": ["a"] * 21}, False),
    ({"published": "2026-12-02T09:30:00+01:00"}, True),
    ({"published": 1700000000}, True),
    ({"published": "2026-12-02T09:30:00"}, False),  # no offset: which zone?
    ({"breaking": True}, True),
    ({"extra": 1}, False),
])
def test_webhook_article_limits(change: dict[str, Any], ok: bool) -> None:
    body = {**GOOD, **change}
    if ok:
        ArticleIn.model_validate(body)
    else:
        with pytest.raises(pydantic.ValidationError):
            ArticleIn.model_validate(body)


def test_an_article_in_becomes_the_stored_shape_with_utc_times() -> None:
    a = ArticleIn.model_validate({**GOOD, "published": "2026-12-02T09:30:00+01:00",
                                  "tags": ["x", "x", "y"]}).article()
    assert (a.published, a.tags) == (1796200200.0, ("x", "y"))
    assert article_json(a)["published"] == "2026-12-02T08:30:00Z"


@pytest.mark.parametrize(("markup", "text"), [
    ("<p>One <b>two</b></p><p>three</p>", "One two three"),
    ("a &amp; b &lt;c&gt;", "a & b <c>"),
    ("<script>alert(1)</script>kept", "kept"),
    ("  spaced \n\n out  ", "spaced out"),
    ("word " * 300, ("word " * 199).strip() + "…"),
])
def test_feed_summaries_become_plain_text(markup: str, text: str) -> None:
    assert plain_text(markup) == text


def test_a_document_that_is_not_a_feed_is_malformed() -> None:
    with pytest.raises(MalformedFeed):
        parse_feed(b"<html><body>Not found</body></html", Defaults())
    with pytest.raises(MalformedFeed):
        parse_feed(b"\x00\x01binary", Defaults())


def test_entries_take_the_feeds_defaults_only_when_they_name_nothing() -> None:
    doc = (b'<rss version="2.0"><channel><title>x</title>'
           b"<item><title>A</title><link>https://n.example/1</link></item>"
           b"<item><title>B</title><link>https://n.example/2</link><category>Arts</category>"
           b"</item></channel></rss>")
    parsed = parse_feed(doc, Defaults("de", ""))
    assert [(a.language, a.category) for a in parsed.articles] == [("de", ""), ("de", "arts")]
    parsed = parse_feed(doc, Defaults("", "culture"))
    assert [(a.language, a.category) for a in parsed.articles] == [("", "culture")] * 2


@pytest.mark.parametrize(("address", "public"), [
    ("93.184.216.34", True), ("2606:4700::1111", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("::1", False),
    ("fe80::1%eth0", False), ("fc00::1", False), ("::ffff:127.0.0.1", False),
    ("224.0.0.1", False), ("not an address", False),
])
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(address) is public


@pytest.mark.parametrize(("url", "refused"), [
    ("http://127.0.0.1:8080/feed", False),  # exempted exactly
    ("http://127.0.0.1:8081/feed", True),  # another port of the same host
    ("http://10.0.0.5/feed", True),
    ("http://[::1]:8080/feed", True),
    ("http://93.184.216.34/feed", False),
    ("https://news.example/feed", False),  # a name: the resolver checks it at connect
    ("file:///etc/passwd", True),
    ("ftp://news.example/feed", True),
])
def test_urls_checked_before_a_request(url: str, refused: bool) -> None:
    exempt = Exempt.parse(["http://127.0.0.1:8080"])
    if refused:
        with pytest.raises(Refused):
            check_url(URL(url), exempt)
    else:
        check_url(URL(url), exempt)


@pytest.mark.parametrize("entry", ["http://host", "127.0.0.1:80", "http://h:1/path",
                                   "http://user@h:1"])
def test_an_exemption_names_an_exact_origin(entry: str) -> None:
    with pytest.raises(ValueError, match="exact origin"):
        parse_origin(entry)


@pytest.mark.parametrize(("interval", "failures", "wait"), [
    (60, 1, 60), (60, 2, 120), (60, 3, 240), (60, 7, BACKOFF_CAP), (60, 500, BACKOFF_CAP),
    (7200, 3, 7200),  # the cap never shortens a feed's own interval
])
def test_a_failing_feed_backs_off_exponentially_up_to_a_cap(
        interval: float, failures: int, wait: float) -> None:
    assert backoff(interval, failures) == wait


def test_a_feed_state_waits_out_its_backoff_and_a_success_clears_it() -> None:
    state = FeedState("f", "config")
    state.failed(0.0, 60, "x")
    assert state.due(1.0)  # one failure: the next regular poll retries
    state.failed(60.0, 60, "x")
    assert not state.due(120.0) and state.due(60 + 120)
    state.succeeded(200.0)
    assert state.due(200.0) and state.last_error is None and state.failures == 0


@pytest.mark.parametrize(("name", "made"), [
    ("headlines:en", True), ("headlines:sport", True), ("headlines:pt-br", True),
    ("headlines:", False), ("headlines:a:b", False), ("headlinesx", False),
    ("weather", False), ("data:x", False),
])
def test_only_the_headlines_family_is_made_on_first_use(name: str, made: bool) -> None:
    assert is_on_demand(name) is made
    hub = Hub(feed_channels([]), max_size=5, max_age=60, clock=time.time)
    assert (hub.get(name) is not None) is (made or name in feed_channels([]))


def test_clients_naming_channels_cannot_make_more_than_the_cap() -> None:
    hub = Hub(feed_channels([]), max_size=5, max_age=60, clock=time.time, max_on_demand=3)
    sinks: list[Any] = []
    for key in ("a", "b", "c"):
        assert hub.get(f"headlines:{key}") is not None
        sinks.append(object())
        hub.subscribe(f"headlines:{key}", sinks[-1], None)
    assert hub.get("headlines:d") is None  # full, and every one of them is in use
    hub.unsubscribe("headlines:a", sinks[0])
    assert hub.get("headlines:d") is not None  # the unused one made room
    assert "headlines:a" not in hub.channels
    # The server publishing is not a client naming: it always gets its channel.
    hub.publish("headlines:e", {"title": "x"})
    assert hub.channels["headlines:e"].offset == 1
