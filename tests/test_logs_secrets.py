"""No log level prints a secret: a real server at DEBUG, in both log formats, handling
subscriptions, alerts, token-authenticated requests and a token put in a URL, writes
neither the VAPID private key, a subscriber's keys, an API token or its hash, nor the
webhook secret anywhere in its output."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from subscribers.testing import PushServiceStandIn
from tests.pushhelpers import Api, by_state, query, server_env
from tests.support import ServerProcess, base_env, run_cli
from ticker.logs import redact

WEBHOOK_SECRET = "whsec-3f1c9a7e5b2d4c6a8e0f"


@pytest.mark.parametrize("fmt", ["json", "text"])
async def test_debug_logs_carry_no_secret(server_factory: Any, fmt: str) -> None:
    async with PushServiceStandIn() as ps, aiohttp.ClientSession() as http:
        srv: ServerProcess = server_factory(env=server_env(
            ps, TICKER_LOG_LEVEL="DEBUG", TICKER_LOG_FORMAT=fmt,
            TICKER_WEBHOOK_SECRET=WEBHOOK_SECRET, TICKER_PUSH_ENCRYPT_PROCESSES="0"))
        token = await asyncio.to_thread(srv.create_token)
        await asyncio.to_thread(srv.start)
        api = Api(http, srv.url, token)
        sub = ps.subscribe(await api.public_key())
        assert (await api.subscribe(sub, topics=["news"]))[0] == 201
        status, alert = await api.send({"title": "Flood", "url": "https://news.example/f"})
        assert status == 201
        assert by_state((await api.wait_done(alert["id"]))["counts"]) == {"sent": 1}
        assert (await api.call("POST", "/api/channels/headlines/messages",
                               {"data": {"title": "Hello"}}))[0] == 201
        # Tokens put in URLs by mistake (or by a client that cannot set headers).
        for path in (f"/api/channels/headlines/messages?limit=1&access_token={token}",
                     f"/healthz?token={token}&key={sub.auth}&x=1"):
            async with http.get(srv.url + path) as resp:
                await resp.read()
        assert (await api.call("DELETE", "/api/push/subscriptions",
                               {"endpoint": sub.endpoint, "auth": sub.auth}))[0] == 204
        await asyncio.sleep(0.2)  # the access log line of the last request
    private_key = query(srv.data_dir, "SELECT private_key FROM vapid_keys")[0][0]
    token_hash = query(srv.data_dir, "SELECT token_hash FROM api_tokens")[0][0]
    assert srv.stop() == 0
    out = srv.log()

    # The test means something only if DEBUG output and the access log were there.
    assert "debug" in out.lower() and "/healthz?token=" in out
    if fmt == "json":
        # Every line is a JSON record, but for the one human line serve prints first.
        lines = [line for line in out.splitlines() if line.strip()]
        assert lines[0].startswith("listening on http://")
        assert all(json.loads(line) for line in lines[1:])
    secrets = {"VAPID private key": private_key, "subscriber auth": sub.auth,
               "subscriber p256dh": sub.p256dh, "API token": token,
               "token hash": token_hash, "webhook secret": WEBHOOK_SECRET,
               "token body": token.removeprefix("tk_")}
    leaked = [name for name, value in secrets.items() if value in out]
    assert leaked == [], f"{leaked} appear in the {fmt} log"
    assert "token=***" in out and "key=***" in out and "x=1" in out


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('"GET /sse?channels=clock&token=tk_abcDEF123_-xyz HTTP/1.1" 200',
         '"GET /sse?channels=clock&token=*** HTTP/1.1" 200'),
        ("GET /x?access_token=abc&limit=5&api_key=k1&sig=9f&Password=hunter2#frag",
         "GET /x?access_token=***&limit=5&api_key=***&sig=***&Password=***#frag"),
        ('{"request_header": {"Referer": "https://site/?auth=s3cret"}}',
         '{"request_header": {"Referer": "https://site/?auth=***"}}'),
        ("Authorization: Bearer tk_0123456789abcdef", "Authorization: Bearer ***"),
        ("a token tk_0123456789abcdef in a message", "a token tk_*** in a message"),
        ("postgresql://ticker:pa55word@db.internal:5432/ticker",
         "postgresql://ticker:***@db.internal:5432/ticker"),
        # Nothing secret-looking: unchanged.
        ("GET /api/channels/headlines/messages?limit=1&x=tk_ HTTP/1.1",
         "GET /api/channels/headlines/messages?limit=1&x=tk_ HTTP/1.1"),
        ("https://news.example/story?id=42", "https://news.example/story?id=42"),
    ],
    ids=["token-param", "secret-names", "referer-in-json", "bearer", "bare-token",
         "url-password", "plain-query", "plain-url"],
)
def test_redact_masks_credentials_of_a_recognisable_shape(line: str, expected: str) -> None:
    assert redact(line) == expected


def test_print_config_masks_a_database_password(tmp_path: Path) -> None:
    env = {**base_env(tmp_path), "TICKER_DATABASE_URL": "postgresql://ticker:pa55word@db/ticker",
           "TICKER_WEBHOOK_SECRET": WEBHOOK_SECRET}
    out = run_cli(["serve", "--print-config"], env)
    assert out.returncode == 0, out.stderr
    assert (json.loads(out.stdout)["storage"]["database_url"]
            == "postgresql://ticker:***@db/ticker")
    assert "pa55word" not in out.stdout and WEBHOOK_SECRET not in out.stdout
