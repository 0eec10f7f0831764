"""The push core without I/O: outcome table, budgets, validation, allow list, rate limit."""

from __future__ import annotations

import email.utils
import os

import pytest

from subscribers.crypto.encrypt import encrypt
from subscribers.delivery.payload import (
    MAX_ENCRYPTED_BYTES,
    MAX_PLAINTEXT_BYTES,
    encrypted_size,
    over_budget,
    topic_header,
)
from subscribers.delivery.policy import Decision, backoff, decide, parse_retry_after
from subscribers.pushclient.endpoints import AllowList, check_endpoint, is_public
from subscribers.ratelimit import RateLimiter
from subscribers.testing import BrowserSubscriber
from subscribers.validate import b64url_decode, parse_alert, parse_subscription
from ticker.errors import TickerError

NOW = 1_700_000_000.0
FAR = NOW + 10 * 24 * 3600


def _decide(status: int | None, retry_after: str | None = None, attempts: int = 1,
            deadline: float = FAR, max_attempts: int = 5) -> Decision:
    return decide(status, retry_after, attempts=attempts, now=NOW, max_attempts=max_attempts,
                  deadline=deadline, rand=lambda: 1.0)


@pytest.mark.parametrize(("status", "state", "deleted", "vapid", "paused"), [
    (201, "sent", False, False, False),
    (202, "sent", False, False, False),
    (404, "gone", True, False, False),
    (410, "gone", True, False, False),
    (400, "failed", False, False, False),
    (413, "failed", False, False, False),
    (401, "failed", False, True, False),
    (403, "failed", False, True, False),
    (429, "retry", False, False, True),
    (503, "retry", False, False, True),
    (406, "retry", False, False, True),
    (500, "retry", False, False, False),
    (502, "retry", False, False, False),
    (None, "retry", False, False, False),  # timeout / connection error
])
def test_each_push_service_status_maps_to_its_outcome(
        status: int | None, state: str, deleted: bool, vapid: bool, paused: bool) -> None:
    d = _decide(status)
    assert (d.state, d.delete_subscription, d.vapid_problem) == (state, deleted, vapid)
    assert (d.pause_host_until is not None) == paused
    assert (d.retry_at is not None) == (state == "retry")


def test_retry_after_in_seconds_sets_the_retry_and_host_pause_exactly() -> None:
    d = _decide(429, "120")
    assert d.retry_at == d.pause_host_until == NOW + 120


def test_retry_after_as_http_date_is_honoured() -> None:
    d = _decide(503, email.utils.formatdate(NOW + 300, usegmt=True))
    assert d.retry_at == NOW + 300


def test_unparseable_retry_after_falls_back_to_backoff() -> None:
    assert parse_retry_after("soon", NOW) is None
    assert _decide(429, "soon").retry_at == NOW + backoff(1, 1.0)


def test_backoff_doubles_with_jitter_between_half_and_all() -> None:
    assert [backoff(n, 1.0) for n in (1, 2, 3)] == [10.0, 20.0, 40.0]
    assert backoff(3, 0.0) == 20.0
    assert backoff(30, 1.0) == 1800.0  # capped


def test_a_flapping_500_never_deletes_and_gives_up_after_the_limit() -> None:
    states = [_decide(500, attempts=n, max_attempts=5) for n in range(1, 6)]
    assert [d.state for d in states] == ["retry"] * 4 + ["gave_up"]
    assert not any(d.delete_subscription for d in states)


def test_a_retry_past_the_messages_ttl_is_expired_not_scheduled() -> None:
    assert _decide(429, "600", deadline=NOW + 60).state == "expired"


def test_encrypted_size_is_computed_exactly() -> None:
    browser = BrowserSubscriber("https://push.example/x", "k")
    for size in (0, 1, 100, MAX_PLAINTEXT_BYTES):
        plaintext = os.urandom(size)
        body = encrypt(plaintext, b64url_decode(browser.p256dh), browser.auth_secret)
        assert len(body) == encrypted_size(size)
        assert browser.decrypt(body) == plaintext
    assert encrypted_size(MAX_PLAINTEXT_BYTES) == MAX_ENCRYPTED_BYTES == 3070


def test_the_byte_budget_refuses_one_byte_over() -> None:
    assert over_budget(b"x" * MAX_PLAINTEXT_BYTES) is None
    assert "3071 bytes" in str(over_budget(b"x" * (MAX_PLAINTEXT_BYTES + 1)))


@pytest.mark.parametrize("tag", ["story-1", "a" * 32, "a" * 33, "Élection 2024: résultats"])
def test_topic_header_is_at_most_32_base64url_characters_and_stable(tag: str) -> None:
    topic = topic_header(tag)
    assert topic is not None and 0 < len(topic) <= 32
    assert all(c.isalnum() or c in "-_" for c in topic)
    assert topic == topic_header(tag)


def test_oversize_alert_is_refused_before_anything_is_stored() -> None:
    with pytest.raises(TickerError) as err:
        parse_alert({"title": "T", "url": "https://x/", "body": "é" * 990,
                     "image": "https://x/" + "i" * 2000}, ("news",), 60)
    assert err.value.code == "payload_too_large"


GOOD_KEY = BrowserSubscriber("https://fcm.googleapis.com/x", "k")


def _sub(**changes: object) -> dict[str, object]:
    sub: dict[str, object] = {"endpoint": "https://fcm.googleapis.com/fcm/send/abc",
                              "keys": {"p256dh": GOOD_KEY.p256dh, "auth": GOOD_KEY.auth}}
    doc: dict[str, object] = {"subscription": sub, "topics": ["news"], "language": "en",
                              "timezone": "Europe/London"}
    for k, v in changes.items():
        if k in ("endpoint", "keys", "expirationTime"):
            sub[k] = v
        else:
            doc[k] = v
    return doc


NOT_ON_CURVE = "BA" + "A" * 85  # 0x04 then zeros: 65 bytes, not a curve point


@pytest.mark.parametrize(("body", "code"), [
    ([], "invalid_subscription"),
    ({"topics": []}, "invalid_subscription"),
    (_sub(keys=None), "invalid_subscription"),
    (_sub(keys={"p256dh": GOOD_KEY.p256dh}), "invalid_subscription"),
    (_sub(keys={"p256dh": NOT_ON_CURVE, "auth": GOOD_KEY.auth}), "invalid_subscription"),
    (_sub(keys={"p256dh": GOOD_KEY.p256dh[:-4], "auth": GOOD_KEY.auth}),
     "invalid_subscription"),
    (_sub(keys={"p256dh": GOOD_KEY.p256dh, "auth": "AAAA"}), "invalid_subscription"),
    (_sub(keys={"p256dh": GOOD_KEY.p256dh, "auth": "!!not-base64!!"}), "invalid_subscription"),
    (_sub(endpoint=42), "invalid_subscription"),
    (_sub(expirationTime="tomorrow"), "invalid_subscription"),
    (_sub(topics=["weather"]), "unknown_topic"),
    (_sub(topics="news"), "invalid_subscription"),
    (_sub(language="english please"), "invalid_subscription"),
    (_sub(timezone="Mars/Olympus_Mons"), "invalid_subscription"),
    (_sub(timezone="../../etc/passwd"), "invalid_subscription"),
])
def test_invalid_subscription_shapes_are_refused_with_a_code(body: object, code: str) -> None:
    with pytest.raises(TickerError) as err:
        parse_subscription(body, ("news", "sport"))
    assert err.value.code == code and err.value.status == 400


def test_a_valid_subscription_parses_to_normalised_values() -> None:
    sub = parse_subscription(_sub(language="pt-BR", expirationTime=1_800_000_000_000),
                             ("news",))
    assert (sub.language, sub.topics, sub.expiration_time) == ("pt-br", ("news",), 1.8e9)


ALLOW = AllowList.parse(["fcm.googleapis.com", "*.notify.windows.com",
                         "http://127.0.0.1:9999"])


@pytest.mark.parametrize(("endpoint", "ok"), [
    ("https://fcm.googleapis.com/fcm/send/x", True),
    ("https://db5p.notify.windows.com/w/?token=x", True),
    ("https://notify.windows.com/w", False),  # the wildcard needs a subdomain
    ("https://evilnotify.windows.com/w", False),
    ("https://fcm.googleapis.com.evil.example/x", False),
    ("http://fcm.googleapis.com/x", False),  # https only
    ("https://fcm.googleapis.com:8443/x", False),
    ("https://user:pw@fcm.googleapis.com/x", False),
    ("http://127.0.0.1:9999/push/x", True),  # the exact http://host:port entry
    ("http://127.0.0.1:9998/push/x", False),
    ("https://127.0.0.1:9999/push/x", False),
    ("ftp://fcm.googleapis.com/x", False),
])
def test_endpoints_must_match_the_allow_list(endpoint: str, ok: bool) -> None:
    if ok:
        check_endpoint(endpoint, ALLOW)
    else:
        with pytest.raises(TickerError):
            check_endpoint(endpoint, ALLOW)


@pytest.mark.parametrize(("address", "public"), [
    ("142.250.1.1", True), ("2a00:1450::1", True), ("10.0.0.1", False),
    ("192.168.1.1", False), ("172.16.0.1", False), ("127.0.0.1", False), ("::1", False),
    ("169.254.169.254", False), ("fe80::1", False), ("fc00::1", False), ("0.0.0.0", False),
    ("::ffff:127.0.0.1", False), ("100.64.0.1", False), ("224.0.0.1", False),
])
def test_only_public_addresses_count_as_public(address: str, public: bool) -> None:
    assert is_public(address) is public


def test_the_rate_limiter_refills_over_time() -> None:
    limiter = RateLimiter(rate_per_minute=2)
    assert [limiter.allow("a", 0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow("b", 0.0)  # per address
    assert limiter.retry_after("a", 0.0) == pytest.approx(30.0)
    assert limiter.allow("a", 30.0)
