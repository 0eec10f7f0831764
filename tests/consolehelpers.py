"""Helpers for the console tests: users made through the CLI, logins, raw HTTP calls."""

from __future__ import annotations

import json
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

import aiohttp

from tests.support import ServerProcess

PASSWORD = "correct horse battery"


def add_user(server: ServerProcess, name: str, role: str = "editor",
             password: str = PASSWORD) -> None:
    out = server.cli("users", "add", name, "--role", role, "--password-stdin",
                     input=password + "\n")
    assert out.returncode == 0, out.stderr


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    set_cookie: list[str]
    body: Any


async def call(server: ServerProcess, method: str, path: str, *, json_body: Any = None,
               headers: dict[str, str] | None = None, data: Any = None) -> Answer:
    """One request with exactly the headers given (no cookie jar: cookies are explicit)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http, \
            http.request(method, server.url + path, json=json_body, data=data,
                         headers=headers or {}, allow_redirects=False) as resp:
        raw = await resp.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        return Answer(resp.status, dict(resp.headers), resp.headers.getall("Set-Cookie", []),
                      body)


@dataclass
class Login:
    cookie: str  # the session id
    csrf: str

    def headers(self, csrf: bool = True) -> dict[str, str]:
        out = {"Cookie": f"ticker_session={self.cookie}"}
        if csrf:
            out["X-CSRF-Token"] = self.csrf
        return out


def session_cookie(set_cookie: list[str]) -> str:
    for line in set_cookie:
        jar: SimpleCookie = SimpleCookie()
        jar.load(line)
        if "ticker_session" in jar:
            return jar["ticker_session"].value
    raise AssertionError(f"no session cookie in {set_cookie}")


async def login(server: ServerProcess, name: str, password: str = PASSWORD,
                address: str | None = None) -> Login:
    headers = {"X-Forwarded-For": address} if address else {}
    answer = await call(server, "POST", "/editor/login",
                        json_body={"name": name, "password": password}, headers=headers)
    assert answer.status == 200, answer.body
    return Login(session_cookie(answer.set_cookie), answer.body["csrf"])
