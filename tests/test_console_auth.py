"""Every editor and admin route refuses what it must, whatever new routes are added: the
routes are read from the served OpenAPI document, so a route added later is in the table.

A real server; users and tokens made with the CLI; requests with explicit credentials.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.consolehelpers import Login, add_user, call, login
from tests.support import ServerProcess

UNSAFE = {"post", "put", "patch", "delete"}
MISSING_ID = "999999"  # path ids that name nothing: a call that passes auth changes nothing


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("console-auth"), env={
        "TICKER_LOGIN_ATTEMPTS_PER_ACCOUNT": "10000",
        "TICKER_LOGIN_ATTEMPTS_PER_ADDRESS": "10000", "TICKER_LOG_LEVEL": "WARNING"})
    server.tokens = {  # type: ignore[attr-defined]
        "editor": server.create_token("editor", "cms"),
        "admin": server.create_token("admin", "ops"),
        "revoked": server.create_token("editor", "old"),
    }
    listed = server.cli("tokens", "list").stdout
    revoked_id = next(line.split("\t")[0] for line in listed.splitlines()
                      if line.endswith("\told"))
    assert server.cli("tokens", "revoke", revoked_id).returncode == 0
    add_user(server, "eve", "editor")
    add_user(server, "ada", "admin")
    add_user(server, "dan", "admin")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def secured_operations(doc: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(method, path, admin only) of every operation that needs credentials."""
    out = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if not op.get("security"):
                continue
            refusal = op["responses"].get("403", {}).get("description", "")
            out.append((method, path, "`forbidden`" in refusal))
    return sorted(out)


def concrete(path: str) -> str:
    return re.sub(r"\{[a-z_]+\}", MISSING_ID, path.replace("{channel}", "headlines"))


def snapshot(server: ServerProcess) -> dict[str, int]:
    """Row counts of every table, and the channels' offsets: what a refusal must not move."""
    con = sqlite3.connect(server.data_dir / "ticker.db")
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
        counts["tokens revoked"] = con.execute(
            "SELECT count(*) FROM api_tokens WHERE revoked_at IS NOT NULL").fetchone()[0]
        counts["users disabled"] = con.execute(
            "SELECT count(*) FROM console_users WHERE disabled_at IS NOT NULL").fetchone()[0]
        return counts
    finally:
        con.close()


async def offsets(server: ServerProcess) -> dict[str, int]:
    out = {}
    for channel in ("headlines", "breaking"):
        answer = await call(server, "GET", f"/api/channels/{channel}/messages?limit=0")
        out[channel] = answer.body["offset"]
    return out


async def test_every_secured_route_refuses_what_it_must_and_writes_nothing(
    srv: ServerProcess,
) -> None:
    doc = (await call(srv, "GET", "/openapi.json")).body
    routes = secured_operations(doc)
    paths = {p for _, p, _ in routes}
    # The table covers the platform's, push's and the console's routes (new ones join it).
    assert {"/api/channels/{channel}/messages", "/api/alerts", "/api/users",
            "/api/tokens/{id}/revoke", "/api/audit", "/editor/logout"} <= paths
    tokens = srv.tokens  # type: ignore[attr-defined]
    eve, dan = await login(srv, "eve"), await login(srv, "dan")
    out = srv.cli("users", "disable", "dan")
    assert out.returncode == 0, out.stderr
    before, channels_before = snapshot(srv), await offsets(srv)

    cases: list[tuple[str, dict[str, str], int, str]] = [
        ("no credentials", {}, 401, "unauthorized"),
        ("a bad token", {"Authorization": "Bearer tk_not-a-token"}, 401, "unauthorized"),
        ("a revoked token", {"Authorization": f"Bearer {tokens['revoked']}"}, 401,
         "unauthorized"),
        ("not a bearer", {"Authorization": f"Basic {tokens['editor']}"}, 401, "unauthorized"),
        ("an unknown session", Login("x" * 43, "y").headers(), 401, "unauthorized"),
        ("a disabled user's session", dan.headers(), 401, "unauthorized"),
    ]
    failures = []
    for method, path, admin in routes:
        url = concrete(path)
        table = list(cases)
        if admin:
            table += [("an editor token on an admin route",
                       {"Authorization": f"Bearer {tokens['editor']}"}, 403, "forbidden"),
                      ("an editor session on an admin route", eve.headers(), 403, "forbidden")]
        if method in UNSAFE:
            table += [("a session cookie without CSRF", eve.headers(csrf=False), 403, "bad_csrf"),
                      ("a session cookie with a wrong CSRF",
                       {**eve.headers(), "X-CSRF-Token": "wrong"}, 403, "bad_csrf")]
        for what, headers, status, code in table:
            answer = await call(srv, method.upper(), url, json_body={}, headers=headers)
            body = answer.body if isinstance(answer.body, dict) else {}
            got = body.get("error", {}).get("code")
            if (answer.status, got) != (status, code):
                failures.append(f"{method.upper()} {url} with {what}: {answer.status} {got}")
    assert failures == []
    assert snapshot(srv) == before
    assert await offsets(srv) == channels_before


async def test_a_session_with_its_csrf_token_passes_every_route_it_may_use(
    srv: ServerProcess,
) -> None:
    doc = (await call(srv, "GET", "/openapi.json")).body
    failures = []
    for method, path, admin in secured_operations(doc):
        # A fresh login per call: POST /editor/logout ends the session it is made with.
        session = await login(srv, "ada" if admin else "eve")
        answer = await call(srv, method.upper(), concrete(path), json_body={},
                            headers=session.headers())
        if answer.status in (401, 403):
            failures.append(f"{method.upper()} {path}: {answer.status} {answer.body}")
        if method in UNSAFE and method != "get":
            bearer = {"Authorization": f"Bearer {srv.tokens['admin']}"}  # type: ignore[attr-defined]
            answer = await call(srv, method.upper(), concrete(path), json_body={},
                                headers=bearer)
            if answer.status in (401, 403) and path != "/editor/logout":
                failures.append(f"bearer {method.upper()} {path}: {answer.status}")
    assert failures == []


async def test_an_html_form_post_passes_with_the_csrf_field_and_is_refused_without(
    srv: ServerProcess,
) -> None:
    session = await login(srv, "eve")
    cookie = session.headers(csrf=False)
    refused = await call(srv, "POST", "/editor/logout", headers=cookie, data={"x": "1"})
    assert (refused.status, refused.body["error"]["code"]) == (403, "bad_csrf")
    assert (await call(srv, "GET", "/api/session", headers=cookie)).status == 200
    done = await call(srv, "POST", "/editor/logout", headers=cookie,
                      data={"csrf": session.csrf})
    assert done.status == 303 and done.headers["Location"] == "/editor"
    assert (await call(srv, "GET", "/api/session", headers=cookie)).status == 401


async def test_logins_and_failed_logins_are_in_the_audit_log_for_admins(
    srv: ServerProcess,
) -> None:
    wrong = await call(srv, "POST", "/editor/login",
                       json_body={"name": "eve", "password": "not her password"})
    assert (wrong.status, wrong.body["error"]["code"]) == (401, "login_failed")
    ada = await login(srv, "ada")
    entries = (await call(srv, "GET", "/api/audit?limit=500", headers=ada.headers())).body[
        "entries"]
    seen = {(e["actor"], e["action"], e["target"]) for e in entries}
    assert ("anonymous", "user.login_failed", "user:eve") in seen
    assert ("user:ada", "user.login", "user:ada") in seen
    assert ("cli", "user.add", "user:eve") in seen
    assert ("cli", "token.revoke", "token:3") in seen or any(
        a == "token.revoke" for _, a, _ in seen)
    assert "not her password" not in json.dumps(entries)


async def test_admin_apis_add_users_create_and_revoke_tokens_each_audited(
    srv: ServerProcess,
) -> None:
    ada = await login(srv, "ada")
    made = await call(srv, "POST", "/api/users", headers=ada.headers(),
                      json_body={"name": "zoe", "role": "editor",
                                 "password": "another long password"})
    assert made.status == 201 and made.body["user"]["name"] == "zoe"
    again = await call(srv, "POST", "/api/users", headers=ada.headers(),
                       json_body={"name": "zoe", "role": "editor",
                                  "password": "another long password"})
    assert (again.status, again.body["error"]["code"]) == (409, "conflict")
    short = await call(srv, "POST", "/api/users", headers=ada.headers(),
                       json_body={"name": "tim", "password": "short"})
    assert short.status == 400
    zoe = await login(srv, "zoe", "another long password")
    token = await call(srv, "POST", "/api/tokens", headers=ada.headers(),
                       json_body={"name": "wire", "role": "editor"})
    assert token.status == 201 and token.body["value"].startswith("tk_")
    bearer = {"Authorization": f"Bearer {token.body['value']}"}
    assert (await call(srv, "GET", "/api/console/config", headers=bearer)).status == 200
    revoked = await call(srv, "POST", f"/api/tokens/{token.body['token']['id']}/revoke",
                         headers=ada.headers())
    assert revoked.status == 200 and revoked.body["token"]["revokedAt"] is not None
    assert (await call(srv, "GET", "/api/console/config", headers=bearer)).status == 401
    disabled = await call(srv, "POST", f"/api/users/{made.body['user']['id']}/disable",
                          headers=ada.headers())
    assert disabled.status == 200 and disabled.body["user"]["disabledAt"] is not None
    assert (await call(srv, "GET", "/api/session", headers=zoe.headers())).status == 401
    entries = (await call(srv, "GET", "/api/audit?limit=20", headers=ada.headers())).body[
        "entries"]
    actions = [(e["actor"], e["action"], e["target"]) for e in entries]
    for expected in [("user:ada", "user.add", "user:zoe"),
                     ("user:ada", "token.create", "token:wire"),
                     ("user:ada", "token.revoke", "token:wire"),
                     ("user:ada", "user.disable", "user:zoe")]:
        assert expected in actions
    assert token.body["value"] not in json.dumps(entries)
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids, reverse=True)
    older = (await call(srv, "GET", f"/api/audit?limit=5&before={ids[2]}",
                        headers=ada.headers())).body["entries"]
    assert [e["id"] for e in older] == ids[3:8]


def test_passwords_are_stored_as_argon2id_and_never_in_clear(srv: ServerProcess) -> None:
    files = [p for p in Path(srv.data_dir).glob("ticker.db*")]
    assert files
    for path in files:
        assert b"correct horse battery" not in path.read_bytes(), path
    con = sqlite3.connect(srv.data_dir / "ticker.db")
    try:
        hashes = [r[0] for r in con.execute("SELECT password_hash FROM console_users")]
    finally:
        con.close()
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
