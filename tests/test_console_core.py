"""The console's core without HTTP: session expiry, login limits, the request scheme behind
proxies, password hashing, and users and sessions in both databases."""

from __future__ import annotations

import pytest

from ticker.console import sessions, users
from ticker.console.limits import Buckets, LoginLimits
from ticker.storage import open_database
from ticker.web.clientaddr import parse_networks, request_scheme


@pytest.mark.parametrize(("seen_at", "expires_at", "now", "idle", "expected"), [
    (100.0, 1000.0, 150.0, 60.0, False),   # used recently, before the absolute limit
    (100.0, 1000.0, 160.0, 60.0, True),    # idle exactly the limit
    (100.0, 1000.0, 500.0, 60.0, True),    # idle far too long
    (990.0, 1000.0, 999.0, 60.0, False),   # busy, just before the absolute limit
    (990.0, 1000.0, 1000.0, 60.0, True),   # busy, at the absolute limit
    (999.0, 1000.0, 2000.0, 3600.0, True),  # long idle allowed, but past the absolute limit
])
def test_a_session_expires_when_idle_or_at_its_absolute_limit(
    seen_at: float, expires_at: float, now: float, idle: float, expected: bool,
) -> None:
    assert sessions.expired(seen_at, expires_at, now, idle) is expected


@pytest.mark.parametrize(("attempts", "window", "times", "expected"), [
    (3, 900.0, [0, 0, 0], [True, True, True]),
    (3, 900.0, [0, 0, 0, 0], [True, True, True, False]),
    (3, 900.0, [0, 0, 0, 0, 300], [True, True, True, False, True]),  # one comes back per 300 s
    (3, 900.0, [0, 0, 0, 299], [True, True, True, False]),
    (1, 60.0, [0, 30, 60], [True, False, True]),
])
def test_buckets_allow_attempts_per_window_and_refill_gradually(
    attempts: int, window: float, times: list[float], expected: list[bool],
) -> None:
    b = Buckets(attempts, window)
    assert [b.take("k", float(t)) for t in times] == expected


def test_login_limits_count_per_account_and_per_address_and_say_how_long_to_wait() -> None:
    limits = LoginLimits(Buckets(2, 900.0), Buckets(3, 900.0))
    assert limits.check("eve", "10.0.0.1", 0.0) is None
    assert limits.check("EVE", "10.0.0.2", 0.0) is None  # names are case-folded
    wait = limits.check("eve", "10.0.0.3", 0.0)  # the account's third: refused
    assert wait == pytest.approx(450.0)
    assert limits.check("bob", "10.0.0.1", 0.0) is None  # another account, same address
    assert limits.check("carl", "10.0.0.1", 0.0) is None
    assert limits.check("dora", "10.0.0.1", 0.0) == pytest.approx(300.0)  # the address's 4th


TRUSTED = parse_networks(["127.0.0.1", "10.0.0.0/8"])


@pytest.mark.parametrize(("peer", "scheme", "header", "expected"), [
    ("127.0.0.1", "http", [], "http"),
    ("127.0.0.1", "http", ["https"], "https"),        # a trusted proxy terminated TLS
    ("10.1.2.3", "http", ["HTTPS, http"], "https"),   # the nearest-to-client value counts
    ("203.0.113.9", "http", ["https"], "http"),       # anyone else's header is ignored
    ("127.0.0.1", "https", ["gopher"], "https"),      # nonsense: the socket's own scheme
    (None, "http", ["https"], "http"),
    ("203.0.113.9", "https", [], "https"),            # TLS straight to ticker
])
def test_the_request_scheme_believes_x_forwarded_proto_only_from_trusted_proxies(
    peer: str | None, scheme: str, header: list[str], expected: str,
) -> None:
    assert request_scheme(peer, scheme, header, TRUSTED) == expected


@pytest.mark.parametrize(("password", "ok"), [
    ("x" * 11, False), ("x" * 12, True), ("x" * 1024, True), ("x" * 1025, False)])
def test_passwords_have_a_minimum_and_a_maximum_length(password: str, ok: bool) -> None:
    if ok:
        users.check_password(password)
    else:
        with pytest.raises(users.UserError):
            users.check_password(password)


def test_a_password_hash_is_argon2id_and_matches_only_its_password() -> None:
    stored = users.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert "correct horse battery" not in stored
    assert users.password_matches(stored, "correct horse battery")
    assert not users.password_matches(stored, "correct horse batterY")
    assert not users.password_matches(None, "anything at all")  # unknown user: dummy hash
    assert not users.password_matches("not a hash", "anything at all")


async def test_users_and_sessions_on_every_database(database_url: str) -> None:
    db = await open_database(database_url)
    try:
        password_hash = await users.hashed("correct horse battery")
        eve = await users.add_user(db, "eve", "editor", password_hash, 1000.0)
        with pytest.raises(users.UserError, match="already exists"):
            await users.add_user(db, "eve", "admin", password_hash, 1000.0)
        with pytest.raises(users.UserError, match="role"):
            await users.add_user(db, "bob", "root", password_hash, 1000.0)
        with pytest.raises(users.UserError, match="hash"):
            await users.add_user(db, "bob", "editor", "correct horse battery", 1000.0)
        assert await users.authenticate(db, "eve", "wrong password!!", 1001.0) is None
        assert await users.authenticate(db, "nobody", "correct horse battery", 1001.0) is None
        user = await users.authenticate(db, "eve", "correct horse battery", 1001.0)
        assert user is not None and (user.id, user.role) == (eve, "editor")
        value, csrf = await sessions.create_session(db, eve, 1001.0, max_age=3600.0)
        live = await sessions.session_user(db, value, 1100.0, idle=600.0)
        assert live is not None and (live.name, live.role, live.csrf) == ("eve", "editor", csrf)
        assert await sessions.session_user(db, value + "x", 1100.0, idle=600.0) is None
        # Used at 1100 (seen_at moved on), so still live at 1650; idle past 600 s ends it.
        assert await sessions.session_user(db, value, 1650.0, idle=600.0) is not None
        assert await sessions.session_user(db, value, 2300.0, idle=600.0) is None
        assert await sessions.session_user(db, value, 1700.0, idle=600.0) is None  # deleted
        other, _ = await sessions.create_session(db, eve, 2000.0, max_age=3600.0)
        stored = await db.fetchall("SELECT session_hash FROM console_sessions")
        assert [r["session_hash"] for r in stored] == [sessions.hash_session(other)]
        assert await users.disable_user(db, eve, 2001.0)
        assert not await users.disable_user(db, eve, 2002.0)
        assert await sessions.session_user(db, other, 2002.0, idle=600.0) is None
        assert await users.authenticate(db, "eve", "correct horse battery", 2003.0) is None
        listed = await users.list_users(db)
        assert [(r["name"], r["last_login_at"]) for r in listed] == [("eve", 1001.0)]
    finally:
        await db.close()


async def test_the_purge_job_forgets_expired_sessions_and_keeps_live_ones(
    database_url: str,
) -> None:
    db = await open_database(database_url)
    try:
        eve = await users.add_user(db, "eve", "editor", await users.hashed("x" * 12), 0.0)
        idle_one, _ = await sessions.create_session(db, eve, 0.0, max_age=10_000.0)
        old_one, _ = await sessions.create_session(db, eve, 0.0, max_age=500.0)
        live, _ = await sessions.create_session(db, eve, 900.0, max_age=10_000.0)
        assert await sessions.purge_sessions(db, idle=600.0, clock=lambda: 1000.0) == 2
        left = await db.fetchall("SELECT session_hash FROM console_sessions")
        assert [r["session_hash"] for r in left] == [sessions.hash_session(live)]
        assert idle_one != old_one
    finally:
        await db.close()


def test_buckets_stay_bounded_and_keep_a_busy_key_over_refilled_ones() -> None:
    b = Buckets(2, 900.0, max_keys=4)
    assert b.take("eve", 0.0) and b.take("eve", 0.0)  # eve's bucket is empty now
    for i in range(3):
        assert b.take(f"old{i}", 0.0)
    # Much later the old ones have refilled (forgettable); eve was just emptied again.
    assert b.take("eve", 900.0) and b.take("eve", 900.0)
    assert b.take("new", 900.0)
    assert not b.take("eve", 900.0)  # eve's count survived making room
    assert len(b._buckets) <= 4
    for i in range(10):  # a flood of fresh names: memory stays bounded
        b.take(f"flood{i}", 901.0)
    assert len(b._buckets) <= 4
