"""The console against a real server: login limits, cookie flags, the login form, the
``users`` commands, ``console:*`` channels, and the page's security headers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from tests.consolehelpers import PASSWORD, add_user, call, login
from tests.support import ServerProcess


@pytest.fixture
def srv(server_factory: Any) -> ServerProcess:
    server: ServerProcess = server_factory(env={
        "TICKER_LOGIN_ATTEMPTS_PER_ACCOUNT": "3", "TICKER_LOGIN_ATTEMPTS_PER_ADDRESS": "5",
        "TICKER_TRUSTED_PROXIES": "127.0.0.1"})
    add_user(server, "eve", "editor")
    server.token = server.create_token()  # type: ignore[attr-defined]
    return server.start()


async def attempt(srv: ServerProcess, name: str, password: str, address: str) -> Any:
    return await call(srv, "POST", "/editor/login", json_body={"name": name, "password": password},
                      headers={"X-Forwarded-For": address})


async def test_login_attempts_are_limited_per_account_with_retry_after(srv: ServerProcess) -> None:
    statuses = [(await attempt(srv, "eve", "wrong password", f"203.0.113.{i}")).status
                for i in range(3)]
    assert statuses == [401, 401, 401]
    limited = await attempt(srv, "eve", PASSWORD, "203.0.113.50")  # right, but too many
    assert limited.status == 429 and limited.body["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    # Other accounts are not locked out by eve's.
    assert (await attempt(srv, "bob", "whatever password", "203.0.113.51")).status == 401


async def test_login_attempts_are_limited_per_address_across_accounts(srv: ServerProcess) -> None:
    statuses = [(await attempt(srv, f"user{i}", "wrong password", "198.51.100.7")).status
                for i in range(6)]
    assert statuses == [401] * 5 + [429]
    # The same accounts from elsewhere are still answered.
    assert (await attempt(srv, "eve", PASSWORD, "198.51.100.8")).status == 200


async def test_the_session_cookie_is_httponly_samesite_strict_and_secure_only_over_https(
    srv: ServerProcess,
) -> None:
    plain = await attempt(srv, "eve", PASSWORD, "192.0.2.1")
    [cookie] = [c for c in plain.set_cookie if c.startswith("ticker_session=")]
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path", "samesite"} <= flags and "secure" not in flags
    assert "SameSite=Strict" in cookie and "Path=/" in cookie
    assert plain.headers["Cache-Control"] == "no-store"
    proxied = await call(srv, "POST", "/editor/login",
                         json_body={"name": "eve", "password": PASSWORD},
                         headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.2"})
    [cookie] = [c for c in proxied.set_cookie if c.startswith("ticker_session=")]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie


async def test_a_cross_site_login_is_refused_and_the_form_login_redirects(
    srv: ServerProcess,
) -> None:
    hostile = await call(srv, "POST", "/editor/login", data={"name": "eve", "password": PASSWORD},
                         headers={"Origin": "https://evil.example"})
    assert hostile.status == 403 and hostile.set_cookie == []
    failed = await call(srv, "POST", "/editor/login", data={"name": "eve", "password": "nope"},
                        headers={"Origin": srv.url})
    assert failed.status == 303 and failed.headers["Location"] == "/editor?login=failed"
    assert failed.set_cookie == []
    ok = await call(srv, "POST", "/editor/login", data={"name": "eve", "password": PASSWORD},
                    headers={"Origin": srv.url})
    assert ok.status == 303 and ok.headers["Location"] == "/editor"
    cookie = next(c for c in ok.set_cookie if c.startswith("ticker_session="))
    session = await call(srv, "GET", "/api/session", headers={"Cookie": cookie.split(";")[0]})
    assert session.status == 200 and session.body["user"] == {"name": "eve", "role": "editor"}
    assert len(session.body["csrf"]) >= 32


async def test_the_editor_page_has_a_strict_csp_and_loads_only_its_own_files(
    srv: ServerProcess,
) -> None:
    page = await call(srv, "GET", "/editor")
    assert page.status == 200 and "text/html" in page.headers["Content-Type"]
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert "<script>" not in page.body and "http://" not in page.body.replace(
        "https://…", "")
    for path, kind in (("/editor/editor.js", "text/javascript"),
                       ("/editor/editor.css", "text/css")):
        answer = await call(srv, "GET", path)
        assert answer.status == 200 and kind in answer.headers["Content-Type"]


def test_users_commands_add_list_and_disable_and_refuse_bad_input(srv: ServerProcess) -> None:
    dup = srv.cli("users", "add", "eve", "--password-stdin", input=PASSWORD + "\n")
    assert dup.returncode == 2 and "already exists" in dup.stderr
    short = srv.cli("users", "add", "bob", "--password-stdin", input="short\n")
    assert short.returncode == 2 and "at least 12" in short.stderr
    ok = srv.cli("users", "add", "ada", "--role", "admin", "--password-stdin",
                 input="another long password\n")
    assert ok.returncode == 0, ok.stderr
    assert "another long password" not in ok.stdout + ok.stderr
    listed = srv.cli("users", "list").stdout.splitlines()
    assert [line.split("\t")[1:4] for line in listed] == [
        ["editor", "active", "eve"], ["admin", "active", "ada"]]
    assert srv.cli("users", "disable", "ada").returncode == 0
    assert "disabled\tada" in srv.cli("users", "list").stdout
    again = srv.cli("users", "disable", "ada")
    assert again.returncode == 2 and "already disabled" in again.stderr
    assert srv.cli("users", "disable", "nobody").returncode == 2
    assert "another long password" not in srv.log()


async def ws_subscribe(srv: ServerProcess, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Subscribe to console:alerts and headlines; the frames answering the subscribe."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http, \
            http.ws_connect(srv.ws_url, headers=headers) as ws:
        await ws.send_str(json.dumps({"type": "subscribe",
                                      "channels": ["console:alerts", "headlines"]}))
        frames = [json.loads((await ws.receive(timeout=10)).data) for _ in range(2)]
        return sorted(frames, key=lambda f: str(f.get("channel")))


async def test_console_channels_on_ws_need_a_console_session(srv: ServerProcess) -> None:
    anonymous = await ws_subscribe(srv, {})
    assert anonymous[0]["type"] == "error" and anonymous[0]["code"] == "forbidden_channel"
    assert anonymous[1]["type"] == "subscribed" and anonymous[1]["channel"] == "headlines"
    forged = await ws_subscribe(srv, {"Cookie": "ticker_session=forged"})
    assert forged[0]["code"] == "forbidden_channel"
    # A browser's WebSocket cannot send a bearer token; /ws asks for the console login only.
    token = await ws_subscribe(srv, {"Authorization": f"Bearer {srv.token}",  # type: ignore[attr-defined]
                                     "Cookie": "unrelated=1"})
    assert token[0]["code"] == "forbidden_channel"
    session = await login(srv, "eve", address="192.0.2.9")
    allowed = await ws_subscribe(srv, {"Cookie": f"ticker_session={session.cookie}"})
    assert [(f["type"], f["channel"]) for f in allowed] == [
        ("subscribed", "console:alerts"), ("subscribed", "headlines")]


async def sse_first_event(srv: ServerProcess, channels: str,
                          headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http, \
            http.get(srv.url + f"/sse?channels={channels}", headers=headers) as resp:
        if resp.status != 200:
            return resp.status, await resp.json()
        while True:
            line = (await asyncio.wait_for(resp.content.readline(), 10)).decode()
            if line.startswith("data: "):
                return 200, json.loads(line[6:])


async def test_console_channels_on_sse_need_a_session_or_an_editor_token(
    srv: ServerProcess,
) -> None:
    status, body = await sse_first_event(srv, "console:alerts", {})
    assert (status, body["error"]["code"]) == (403, "forbidden_channel")
    status, body = await sse_first_event(srv, "console:alerts",
                                         {"Authorization": "Bearer tk_wrong"})
    assert status == 403
    token = srv.token  # type: ignore[attr-defined]
    status, body = await sse_first_event(srv, "console:alerts",
                                         {"Authorization": f"Bearer {token}"})
    assert status == 200 and body["type"] == "subscribed"
    session = await login(srv, "eve", address="192.0.2.10")
    status, body = await sse_first_event(srv, "console:alerts",
                                         {"Cookie": f"ticker_session={session.cookie}"})
    assert status == 200 and body == {**body, "type": "subscribed", "channel": "console:alerts"}


async def test_console_channels_are_not_published_over_http_nor_read_anonymously(
    srv: ServerProcess,
) -> None:
    token = {"Authorization": f"Bearer {srv.token}"}  # type: ignore[attr-defined]
    published = await call(srv, "POST", "/api/channels/console:alerts/messages",
                           json_body={"data": {"id": 1}}, headers=token)
    assert (published.status, published.body["error"]["code"]) == (400, "invalid_message")
    assert (await call(srv, "GET", "/api/channels/console:alerts/messages")).status == 401
    assert (await call(srv, "GET", "/api/channels/console:alerts/messages",
                       headers=token)).status == 200
    home = await call(srv, "GET", "/")
    assert "console:" not in home.body  # the demo page's widget never asks for them


async def test_no_password_session_id_or_csrf_token_reaches_the_log_at_debug(
    server_factory: Any,
) -> None:
    srv: ServerProcess = server_factory(env={"TICKER_LOG_LEVEL": "DEBUG"})
    add_user(srv, "eve", "editor")
    srv.start()
    wrong = await call(srv, "POST", "/editor/login",
                       json_body={"name": "eve", "password": "a wrong guess here"})
    assert wrong.status == 401
    session = await login(srv, "eve")
    assert (await call(srv, "GET", "/api/session", headers=session.headers())).status == 200
    assert (await call(srv, "POST", "/editor/logout", headers=session.headers())).status == 204
    await ws_subscribe(srv, {"Cookie": f"ticker_session={session.cookie}"})
    srv.stop()
    log = srv.log()
    assert "/editor/login" in log  # the access log did record the requests
    for secret in (PASSWORD, "a wrong guess here", session.cookie, session.csrf):
        assert secret not in log
