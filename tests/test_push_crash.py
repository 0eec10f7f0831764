"""No reader loses an alert to a crash: a real ``ticker serve`` SIGKILLed three times while
it sends one alert to 5,000 subscribers, restarted each time, against the push-service
stand-in in a process of its own (it outlives the kills, verifies VAPID, decrypts every
push and counts what it accepted per subscriber). On SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from subscribers.crypto import vapid
from subscribers.delivery.batching import in_flight_window
from subscribers.migrations import WITH_PLATFORM
from tests.pushhelpers import SUBJECT
from tests.support import ServerProcess
from ticker.storage import open_database

SUBSCRIBERS = 5000
CONCURRENCY, BATCH = 16, 50
WINDOW = in_flight_window(CONCURRENCY, BATCH)  # 2 batches of 50: what a kill can resend
KILLS_AT = (900, 2200, 3500)  # stand-in requests seen before each kill


class StandInProcess:
    def __init__(self, key: str, out: Path, count: int = SUBSCRIBERS) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.standin_process", "--key", key, "--count",
             str(count), "--out", str(out)], stdout=subprocess.PIPE,
            cwd=Path(__file__).resolve().parent.parent)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the stand-in did not start")
        ports = json.loads(line)
        self.origin, self.control = ports["origin"], ports["control"]

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.control + "/stats", timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def wait_for(self, requests: int, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while self.stats()["requests"] < requests:
            assert time.monotonic() < deadline, f"fewer than {requests} pushes arrived"
            time.sleep(0.02)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


async def vapid_key(url: str) -> tuple[int, str]:
    db = await open_database(url, WITH_PLATFORM)
    try:
        key = await vapid.ensure_key(db)
        return key.id, key.public_key
    finally:
        await db.close()


async def seed(url: str, subs: list[dict[str, Any]], key_id: int) -> None:
    """The stand-in's subscribers, straight into the server's table (5,000 POSTs would
    take longer than the send)."""
    now = time.time()
    db = await open_database(url, WITH_PLATFORM)
    try:
        await db.executemany(
            "INSERT INTO push_subscriptions (endpoint, p256dh, auth, expiration_time, language, "
            "timezone, vapid_key_id, created_at, updated_at) VALUES (?, ?, ?, NULL, 'en', "
            "'UTC', ?, ?, ?)",
            [(s["endpoint"], s["keys"]["p256dh"], s["keys"]["auth"], key_id, now, now)
             for s in subs])
    finally:
        await db.close()


def post_alert(server: ServerProcess, token: str) -> int:
    request = urllib.request.Request(
        server.url + "/api/alerts", method="POST",
        data=json.dumps({"title": "Evacuate the river bank", "url": "https://news.example/x",
                         "body": "Water is rising."}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return int(json.loads(resp.read())["id"])


def alert_status(server: ServerProcess, token: str, alert_id: int) -> dict[str, Any]:
    request = urllib.request.Request(server.url + f"/api/alerts/{alert_id}",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return dict(json.loads(resp.read()))


def test_every_reader_gets_an_alert_sent_through_three_kills_with_few_second_copies(
        tmp_path: Path, database_url: str) -> None:
    data = tmp_path / "node"
    data.mkdir()
    key_id, key = asyncio.run(vapid_key(database_url))
    standin = StandInProcess(key, tmp_path / "subs.jsonl")
    server = ServerProcess(data, env={
        "TICKER_DATABASE_URL": database_url,
        "TICKER_PUSH_ALLOWED_HOSTS": standin.origin, "TICKER_VAPID_SUBJECT": SUBJECT,
        "TICKER_MODE": "production", "TICKER_LOG_LEVEL": "WARNING",
        "TICKER_PUSH_CONCURRENCY": str(CONCURRENCY), "TICKER_PUSH_BATCH_SIZE": str(BATCH),
        "TICKER_PUSH_LEASE_SECONDS": "2"})
    try:
        subs = [json.loads(line) for line in
                (tmp_path / "subs.jsonl").read_text().splitlines()]
        asyncio.run(seed(database_url, subs, key_id))
        token = server.create_token()
        server.start()
        alert_id = post_alert(server, token)
        for at in KILLS_AT:
            standin.wait_for(at)
            server.kill()  # SIGKILL mid-send
            server.start()
        deadline = time.monotonic() + 60
        while (status := alert_status(server, token, alert_id))["status"] == "sending":
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        stats = standin.stats()
    finally:
        server.stop()
        standin.stop()
    copies = stats["accepted"]
    assert len(copies) == SUBSCRIBERS and min(copies.values()) >= 1  # nobody lost it
    second = sum(n - 1 for n in copies.values())
    print(f"second copies: {second} (window {WINDOW} per kill)")
    assert second <= len(KILLS_AT) * WINDOW, second  # at most the in-flight window per kill
    assert stats["rejections"] == 0
    counts = status["counts"]
    assert (status["status"], counts["targeted"], counts["accepted"]) == (
        "done", SUBSCRIBERS, SUBSCRIBERS)  # exact, though some batches went twice
    assert status["total"] == SUBSCRIBERS and status["remaining"] == 0
