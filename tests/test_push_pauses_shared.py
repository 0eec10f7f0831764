"""The push services' pause shared by every process through the real Redis on 127.0.0.1:
what one process was told (429/503 Retry-After) the others honour after one sync; a shorter
pause never shortens a longer one; the key expires with the pause; Redis gone means each
process keeps its own pauses."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from subscribers.delivery.pauses import SharedPauses, merge
from subscribers.testing import Cue
from tests.pushhelpers import engine_rig
from tests.support import need

REDIS_URL = "redis://127.0.0.1:6379/15"
ORIGIN = "https://fcm.googleapis.com"


@pytest.fixture
async def client() -> AsyncIterator[Any]:
    conn = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        await conn.ping()
    except (OSError, redis.RedisError) as exc:
        await conn.aclose()
        need(False, f"Redis at 127.0.0.1:6379 is not usable: {exc}")
    prefix = f"test:{secrets.token_hex(4)}:"
    yield conn, prefix
    keys = [k async for k in conn.scan_iter(match=prefix + "*")]
    if keys:
        await conn.delete(*keys)
    await conn.aclose()


@pytest.mark.parametrize(("local", "remote", "after"), [
    ({}, {"a": 5.0}, {"a": 5.0}),
    ({"a": 9.0}, {"a": 5.0}, {"a": 9.0}),  # the later end wins
    ({"a": 1.0}, {"a": 5.0, "b": 2.0}, {"a": 5.0, "b": 2.0}),
    ({"a": 1.0}, {}, {"a": 1.0}),
])
def test_merge_keeps_the_later_end_of_each_origins_pause(
        local: dict[str, float], remote: dict[str, float], after: dict[str, float]) -> None:
    merge(local, remote)
    assert local == after


async def test_a_pause_one_process_learnt_reaches_another_after_one_sync(
        client: tuple[Any, str]) -> None:
    conn, prefix = client
    mine: dict[str, float] = {}
    theirs: dict[str, float] = {}
    one = SharedPauses(conn, mine, time.time, prefix)
    other = SharedPauses(conn, theirs, time.time, prefix)
    until = time.time() + 30
    mine[ORIGIN] = until
    one.pause(ORIGIN, until)
    await one.sync()
    await other.sync()
    assert theirs == {ORIGIN: until}
    ttl = await conn.pttl(prefix + ORIGIN)
    assert 0 < ttl <= 30_000  # the key goes with the pause
    one.pause(ORIGIN, time.time() + 2)  # a shorter Retry-After later
    await one.sync()
    assert float(await conn.get(prefix + ORIGIN)) == until
    one.pause("https://updates.push.services.mozilla.com", time.time() - 1)  # already over
    await one.sync()
    assert await conn.exists(prefix + "https://updates.push.services.mozilla.com") == 0


async def test_without_redis_each_process_keeps_its_own_pauses() -> None:
    conn = redis.asyncio.Redis.from_url("redis://127.0.0.1:1/0")
    local = {ORIGIN: time.time() + 30}
    shared = SharedPauses(conn, local, time.time, "test:gone:")
    shared.pause(ORIGIN, local[ORIGIN])
    try:
        await shared.sync()  # never raises: delivery goes on
        assert shared.failing and ORIGIN in local
    finally:
        await conn.aclose()


async def test_an_engine_told_to_wait_shares_the_pause_with_other_processes(
        tmp_path: Path, client: tuple[Any, str]) -> None:
    conn, prefix = client
    async with engine_rig(tmp_path, concurrency=1) as rig:
        throttled = await rig.subscriber()
        rig.ps.cue(throttled, Cue(429, {"Retry-After": "60"}))
        shared = SharedPauses(conn, rig.engine.pauses, rig.clock.now, prefix)
        rig.engine.on_pause = shared.pause  # as subscribers/delivery/node.py wires it
        t0 = rig.clock.now()
        await rig.engine.run_pass(await rig.alert())
        await shared.sync()
        elsewhere: dict[str, float] = {}  # another worker's engine
        await SharedPauses(conn, elsewhere, rig.clock.now, prefix).sync()
    assert elsewhere == rig.engine.pauses and list(elsewhere.values()) == [t0 + 60]
