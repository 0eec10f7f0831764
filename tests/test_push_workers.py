"""Push workers beside the servers: three real ``ticker worker`` processes on PostgreSQL
deliver one alert to 20,000 subscribers of the push-service stand-in (its own process:
VAPID verified, every push decrypted); one worker is SIGKILLed halfway. Every subscriber
gets the alert and second copies stay within that worker's in-flight window."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from subscribers import alerts
from subscribers.delivery.batching import in_flight_window
from subscribers.migrations import WITH_PLATFORM
from subscribers.validate import AlertIn
from tests.conftest import postgres_schema_url
from tests.pushhelpers import SUBJECT
from tests.support import base_env
from tests.test_push_crash import StandInProcess, seed, vapid_key
from ticker.storage import open_database

SUBSCRIBERS = 20_000
CONCURRENCY, BATCH = 16, 50
WINDOW = in_flight_window(CONCURRENCY, BATCH)


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from postgres_schema_url()


def worker_env(tmp_path: Path, url: str, origin: str) -> dict[str, str]:
    env = base_env(tmp_path)
    env.update({"TICKER_DATABASE_URL": url, "TICKER_PUSH_ALLOWED_HOSTS": origin,
                "TICKER_VAPID_SUBJECT": SUBJECT, "TICKER_MODE": "production",
                "TICKER_LOG_LEVEL": "WARNING", "TICKER_PUSH_CONCURRENCY": str(CONCURRENCY),
                "TICKER_PUSH_BATCH_SIZE": str(BATCH), "TICKER_PUSH_LEASE_SECONDS": "2"})
    return env


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "ticker", "worker"], env=env,
                                stdout=subprocess.PIPE, stderr=err, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("worker ") and "delivering from postgresql://" in first, first
    return proc


async def create_alert(url: str) -> int:
    db = await open_database(url, WITH_PLATFORM)
    try:
        alert = AlertIn(title="Evacuate the river bank", body="Water is rising.",
                        url="https://news.example/x", icon="", image="", tag="", topics=(),
                        languages=(), urgency="high", ttl=3600)
        alert_id, _ = await alerts.create(db, alert, idempotency_key=None, created_by=None,
                                          now=time.time())
        return alert_id
    finally:
        await db.close()


async def alert_status(url: str, alert_id: int) -> dict[str, Any]:
    db = await open_database(url, WITH_PLATFORM)
    try:
        status = await alerts.status(db, alert_id)
        assert status is not None
        return status
    finally:
        await db.close()


def test_three_workers_deliver_to_everyone_through_a_kill_with_few_second_copies(
        tmp_path: Path, pg_url: str) -> None:
    key_id, key = asyncio.run(vapid_key(pg_url))
    standin = StandInProcess(key, tmp_path / "subs.jsonl", count=SUBSCRIBERS)
    env = worker_env(tmp_path, pg_url, standin.origin)
    workers: list[subprocess.Popen[str]] = []
    try:
        subs = [json.loads(line) for line in
                (tmp_path / "subs.jsonl").read_text().splitlines()]
        asyncio.run(seed(pg_url, subs, key_id))
        workers = [start_worker(env, tmp_path / f"worker{i}.log") for i in range(3)]
        alert_id = asyncio.run(create_alert(pg_url))
        standin.wait_for(SUBSCRIBERS // 2, within=600)
        workers[0].send_signal(signal.SIGKILL)  # halfway, with batches in flight
        workers[0].wait(10)
        deadline = time.monotonic() + 600
        while (status := asyncio.run(alert_status(pg_url, alert_id)))["status"] == "sending":
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
        stats = standin.stats()
        for proc in workers[1:]:  # SIGTERM: a graceful stop, exit 0
            proc.send_signal(signal.SIGTERM)
        outs = [proc.communicate(timeout=30)[0] for proc in workers[1:]]
        assert [proc.returncode for proc in workers[1:]] == [0, 0]
        assert all(out.rstrip().splitlines()[-1].endswith(" stopping") for out in outs), outs
        assert any(f"alert {alert_id} done: {SUBSCRIBERS} accepted" in out for out in outs)
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
        standin.stop()
    copies = stats["accepted"]
    assert len(copies) == SUBSCRIBERS and min(copies.values()) >= 1  # nobody lost it
    second = sum(n - 1 for n in copies.values())
    print(f"second copies: {second} (window {WINDOW})")
    assert second <= WINDOW, second
    assert stats["rejections"] == 0
    assert (status["status"], status["counts"]["accepted"]) == ("done", SUBSCRIBERS)


LIVE_SUBSCRIBERS = 600


async def console_frames(server: Any, until_done: int, within: float) -> list[dict[str, Any]]:
    """``console:alerts`` frames as a logged-in console sees them, until alert ``until_done``
    is reported done."""
    import aiohttp

    from tests.consolehelpers import login

    session = await login(server, "eve")
    frames: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(
            server.ws_url, headers={"Cookie": f"ticker_session={session.cookie}"}) as ws:
        await ws.send_json({"type": "subscribe", "channels": ["console:alerts"]})
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            msg = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
            assert msg.type == aiohttp.WSMsgType.TEXT, f"the console socket ended: {msg}"
            frame = json.loads(msg.data)
            assert frame["type"] != "error", frame
            if frame["type"] == "message":
                frames.append(frame["data"])
                if frame["data"]["id"] == until_done and frame["data"]["status"] == "done":
                    return frames
    raise AssertionError(f"no 'done' frame within {within} s: {frames[-3:]}")


async def test_a_workers_live_counts_reach_the_console_of_a_server_that_sends_nothing(
        tmp_path: Path, pg_url: str, redis_url: str) -> None:
    from tests.consolehelpers import add_user
    from tests.support import ServerProcess

    key_id, key = await vapid_key(pg_url)
    standin = await asyncio.to_thread(StandInProcess, key, tmp_path / "subs.jsonl",
                                      count=LIVE_SUBSCRIBERS)
    # Production mode without a VAPID subject: this server's push is off, so every push
    # and every count of the alert comes from the worker, through Redis.
    server = ServerProcess(tmp_path / "node", env={
        "TICKER_DATABASE_URL": pg_url, "TICKER_BROKER_URL": redis_url,
        "TICKER_MODE": "production", "TICKER_LOG_LEVEL": "WARNING"})
    add_user(server, "eve", "editor")
    worker: subprocess.Popen[str] | None = None
    try:
        await asyncio.to_thread(server.start)
        subs = [json.loads(line) for line in
                (tmp_path / "subs.jsonl").read_text().splitlines()]
        await seed(pg_url, subs, key_id)
        alert_id = await create_alert(pg_url)
        watching = asyncio.create_task(console_frames(server, alert_id, within=120))
        await asyncio.sleep(0.5)  # the console is subscribed before the worker starts
        env = worker_env(tmp_path, pg_url, standin.origin)
        env["TICKER_BROKER_URL"] = redis_url
        worker = await asyncio.to_thread(start_worker, env, tmp_path / "worker.log")
        frames = await asyncio.wait_for(watching, 150)
    finally:
        if worker is not None:
            worker.kill()
            worker.wait(10)
            if worker.stdout is not None:
                worker.stdout.close()
        await asyncio.to_thread(server.stop)
        standin.stop()
    last = frames[-1]
    assert (last["counts"]["accepted"], last["remaining"]) == (LIVE_SUBSCRIBERS, 0), last
    accepted = [f["counts"]["accepted"] for f in frames if f["id"] == alert_id]
    assert accepted == sorted(accepted)  # counts only grow, in order
