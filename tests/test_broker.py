"""The feed's brokers, in process: the same scenarios against memory:// and redis://.

Each node is a real Hub with a real broker: memory:// keeps its history in a real SQLite
file, redis:// talks to the real Redis on 127.0.0.1:6379 under a key prefix of the test's own.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from tests.conftest import redis_prefix_url
from tests.test_broker_server import OwnRedis
from ticker.broker import Broker, open_broker
from ticker.broker.history import MIGRATION
from ticker.feed import resume
from ticker.feed.channels import Hub, Message, Position
from ticker.feed.session import Session, wall_ms
from ticker.metrics import Metrics
from ticker.storage import open_database
from ticker.storage.database import Database
from ticker.storage.migrations import MIGRATIONS

CHANNELS = ["clock", "headlines", "breaking"]


class Buffered:
    """A sink's transport that holds nothing back."""

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


class Collect:
    """A feed sink that keeps what it is handed (a connection that never falls behind)."""

    fd = -1
    closed = False
    transport = Buffered()

    def __init__(self) -> None:
        self.got: list[Message] = []

    def deliver(self, msg: Message) -> None:
        self.got.append(msg)

    def finish_direct(self, frame: bytes, sent: int) -> None:
        raise AssertionError("never written directly (fd is -1)")

    async def wait_for(self, count: int, within: float = 10.0) -> list[Message]:
        """What it got once it holds ``count`` messages (or ``within`` seconds passed)."""
        deadline = time.monotonic() + within
        while len(self.got) < count and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        return self.got


class Node:
    def __init__(self, hub: Hub, broker: Broker) -> None:
        self.hub, self.broker = hub, broker


NodeFactory = Callable[[], Any]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ticker.db'}"


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The broker URL of each backend in turn."""
    if request.param == "memory":
        yield "memory://"
    else:
        yield from redis_prefix_url()


@pytest.fixture
async def nodes(backend: str, sqlite_url: str) -> AsyncIterator[Any]:
    """``await nodes()`` starts a node on the backend (all share its storage); stopped after."""
    started: list[tuple[Broker, Database]] = []

    async def make(history_size: int = 50) -> Node:
        db = await open_database(sqlite_url, [*MIGRATIONS, MIGRATION])
        hub = Hub(CHANNELS, max_size=history_size, max_age=3600, clock=time.time)
        broker = open_broker(backend, hub, Metrics(), history_size=history_size,
                             history_seconds=3600)
        await broker.start(db)
        started.append((broker, db))
        return Node(hub, broker)

    async def stop(node: Node) -> None:
        for broker, db in list(started):
            if broker is node.broker:
                started.remove((broker, db))
                await broker.close()
                await db.close()

    make.stop = stop  # type: ignore[attr-defined]
    yield make
    for broker, db in started:
        await broker.close()
        await db.close()


async def test_published_messages_reach_a_subscriber_once_in_order_with_rising_offsets(
    nodes: Any,
) -> None:
    node = await nodes()
    sink = Collect()
    node.hub.subscribe("headlines", sink, None)
    sent = [await node.broker.publish("headlines", {"title": f"t{i}"}) for i in range(20)]
    got = await sink.wait_for(20)
    assert [m.offset for m in sent] == list(range(1, 21))
    assert [(m.epoch, m.offset, m.data["title"]) for m in got] == [
        (m.epoch, m.offset, m.data["title"]) for m in sent]
    await asyncio.sleep(0.2)
    assert len(sink.got) == 20  # nothing twice


async def test_resume_gives_exactly_the_missed_messages_and_an_unknown_epoch_is_not_recovered(
    nodes: Any,
) -> None:
    node = await nodes()
    sink = Collect()
    node.hub.subscribe("headlines", sink, None)
    sent = [await node.broker.publish("headlines", {"title": f"t{i}"}) for i in range(6)]
    await sink.wait_for(6)
    seen = Position(sent[2].epoch, sent[2].offset)
    rec = node.hub.subscribe("headlines", Collect(), seen)
    assert rec.recovered and [m.offset for m in rec.messages] == [4, 5, 6]
    assert node.hub.subscribe("headlines", Collect(), Position("gone", 3)).recovered is False
    broker_rec = await node.broker.history("headlines", seen)
    assert broker_rec.recovered and [m.offset for m in broker_rec.messages] == [4, 5, 6]


async def test_a_latest_channel_hands_its_current_value_to_a_new_subscriber(nodes: Any) -> None:
    node = await nodes()
    watcher = Collect()
    node.hub.subscribe("breaking", watcher, None)
    await node.broker.publish("breaking", {"title": "first"})
    await node.broker.publish("breaking", {"title": "second"})
    await watcher.wait_for(2)
    rec = node.hub.subscribe("breaking", Collect(), None)
    assert [m.data["title"] for m in rec.messages] == ["second"]
    assert [m.data["title"] for m in (await node.broker.history("breaking", None)).messages] == [
        "second"]


async def test_history_is_bounded_and_resuming_from_before_it_is_not_recovered(
    nodes: Any,
) -> None:
    node = await nodes(history_size=5)
    sink = Collect()
    node.hub.subscribe("headlines", sink, None)
    sent = [await node.broker.publish("headlines", {"n": i}) for i in range(12)]
    await sink.wait_for(12)
    epoch = sent[0].epoch
    assert node.hub.subscribe("headlines", Collect(), Position(epoch, 2)).recovered is False
    rec = node.hub.subscribe("headlines", Collect(), Position(epoch, 9))
    assert rec.recovered and [m.offset for m in rec.messages] == [10, 11, 12]


async def test_a_node_started_again_resumes_clients_in_the_same_epoch(nodes: Any) -> None:
    first = await nodes()
    sink = Collect()
    first.hub.subscribe("headlines", sink, None)
    sent = [await first.broker.publish("headlines", {"n": i}) for i in range(5)]
    await sink.wait_for(5)
    await nodes.stop(first)
    again = await nodes()
    rec = again.hub.subscribe("headlines", Collect(), Position(sent[1].epoch, sent[1].offset))
    assert rec.recovered and [m.data["n"] for m in rec.messages] == [2, 3, 4]
    after = await again.broker.publish("headlines", {"n": 5})
    assert (after.epoch, after.offset) == (sent[0].epoch, 6)


async def test_unknown_channels_are_refused_and_on_demand_ones_are_made(nodes: Any) -> None:
    node = await nodes()
    with pytest.raises(KeyError):
        await node.broker.publish("nope", {"title": "x"})
    msg = await node.broker.publish("headlines:fr", {"title": "x"})
    assert msg.offset == 1 and "headlines:fr" in node.hub.channels


async def test_a_burst_of_concurrent_publishes_is_numbered_without_gaps_and_delivered_in_order(
    nodes: Any,
) -> None:
    node = await nodes(history_size=500)
    sink = Collect()
    node.hub.subscribe("headlines", sink, None)
    # More in flight than a node's Redis connections (they wait for one, never fail).
    sent = await asyncio.gather(*(node.broker.publish("headlines", {"n": n})
                                  for n in range(300)))
    got = await sink.wait_for(300)
    assert sorted(m.offset for m in sent) == list(range(1, 301))
    assert [m.offset for m in got] == list(range(1, 301))
    by_offset = {m.offset: m.data["n"] for m in sent}
    assert [m.data["n"] for m in got] == [by_offset[m.offset] for m in got]


# ---------------------------------------------------------------------- redis:// only


@pytest.fixture
async def redis_nodes(redis_url: str, sqlite_url: str) -> AsyncIterator[Any]:
    started: list[tuple[Broker, Database]] = []

    async def make(hub_size: int = 50) -> Node:
        db = await open_database(sqlite_url, [*MIGRATIONS, MIGRATION])
        hub = Hub(CHANNELS, max_size=hub_size, max_age=3600, clock=time.time)
        broker = open_broker(redis_url, hub, Metrics(), history_size=50, history_seconds=3600)
        await broker.start(db)
        started.append((broker, db))
        return Node(hub, broker)

    yield make
    for broker, db in started:
        await broker.close()
        await db.close()


async def test_every_node_numbers_a_channel_the_same_way(redis_nodes: Any) -> None:
    a, b = await redis_nodes(), await redis_nodes()
    on_a, on_b = Collect(), Collect()
    a.hub.subscribe("headlines", on_a, None)
    b.hub.subscribe("headlines", on_b, None)
    sent = [await (a if i % 2 else b).broker.publish("headlines", {"n": i}) for i in range(10)]
    got_a, got_b = await on_a.wait_for(10), await on_b.wait_for(10)
    expected = [(m.epoch, m.offset, m.data["n"]) for m in sent]
    assert [(m.epoch, m.offset, m.data["n"]) for m in got_a] == expected
    assert [(m.epoch, m.offset, m.data["n"]) for m in got_b] == expected
    assert a.hub.channels["headlines"].position == b.hub.channels["headlines"].position


async def test_a_node_that_missed_pubsub_messages_fills_the_hole_from_the_stream(
    redis_nodes: Any, redis_url: str,
) -> None:
    a, b = await redis_nodes(), await redis_nodes()
    on_b = Collect()
    b.hub.subscribe("headlines", on_b, None)
    await a.broker.publish("headlines", {"n": 0})
    await on_b.wait_for(1)
    # What a lost pub/sub message looks like to B: numbered and streamed, never published.
    client = redis.asyncio.Redis.from_url(redis_url.split("?")[0])
    prefix = redis_url.split("key_prefix=")[1]
    epoch = on_b.got[0].epoch
    for n in (2, 3):
        payload = f'{{"c":"headlines","e":"{epoch}","o":{n},"t":{time.time()},"d":{{"n":{n - 1}}}}}'
        await client.hincrby(f"{prefix}meta:headlines", "s", 1)
        await client.xadd(f"{prefix}stream:headlines", {"p": payload}, id=f"{n}-0")
    await client.aclose()
    await a.broker.publish("headlines", {"n": 3})
    got = await on_b.wait_for(4)
    assert [(m.offset, m.data["n"]) for m in got] == [(1, 0), (2, 1), (3, 2), (4, 3)]


async def test_a_node_started_later_takes_every_channel_from_the_streams(
    redis_nodes: Any,
) -> None:
    a = await redis_nodes()
    await a.broker.publish("breaking", {"title": "storm"})
    made = await a.broker.publish("headlines:de", {"title": "Sturm"})
    b = await redis_nodes()
    assert [m.data["title"] for m in b.hub.subscribe("breaking", Collect(), None).messages] == [
        "storm"]
    rec = b.hub.subscribe("headlines:de", Collect(), Position(made.epoch, 0))
    assert rec.recovered and [m.data["title"] for m in rec.messages] == ["Sturm"]


async def test_a_resume_this_node_cannot_serve_is_read_from_the_stream(
    redis_nodes: Any,
) -> None:
    # B's own history holds less than the stream (as a node that was away a while would).
    a, b = await redis_nodes(), await redis_nodes(hub_size=2)
    on_b = Collect()
    b.hub.subscribe("headlines", on_b, None)
    sent = [await a.broker.publish("headlines", {"n": n}) for n in range(4)]
    await on_b.wait_for(4)
    client = Collect()
    session = Session(b.hub, client, rate=100, now=time.monotonic, wall_ms=wall_ms)
    reply = session.dispatch({"type": "subscribe", "channels": ["headlines"], "since": {
        "headlines": {"epoch": sent[0].epoch, "offset": sent[0].offset}}})
    assert list(reply.deferred) == ["headlines"] and not reply.positions
    out, stands = await resume.replay(reply.deferred, b.broker.history)
    subscribed = json.loads(out[0])  # type: ignore[arg-type]
    assert subscribed["recovered"] is True and subscribed["offset"] == sent[0].offset
    assert [m.data["n"] for m in out[1:]] == [1, 2, 3]  # type: ignore[union-attr]
    assert stands["headlines"] == Position(sent[-1].epoch, sent[-1].offset)
    # The client was subscribed all along: what comes next reaches it.
    await a.broker.publish("headlines", {"n": 4})
    assert [m.data["n"] for m in await client.wait_for(1)] == [4]


async def test_a_node_that_lost_its_subscription_catches_up_from_the_stream_in_order(
    tmp_path: Path, sqlite_url: str
) -> None:
    own = OwnRedis(tmp_path / "redis")  # its own Redis: every pub/sub client is cut here
    own.start()
    started: list[tuple[Broker, Database]] = []
    metrics = [Metrics(), Metrics()]
    try:
        for k in range(2):
            db = await open_database(sqlite_url, [*MIGRATIONS, MIGRATION])
            hub = Hub(CHANNELS, max_size=50, max_age=3600, clock=time.time)
            broker = open_broker(own.url, hub, metrics[k], history_size=50, history_seconds=3600)
            await broker.start(db)
            started.append((broker, db))
        (a, _), (b, _) = started
        on_b = Collect()
        b.hub.subscribe("headlines", on_b, None)  # type: ignore[attr-defined]
        await a.publish("headlines", {"n": 0})
        await on_b.wait_for(1)
        admin = redis.asyncio.Redis.from_url(own.url)
        await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        await admin.aclose()
        # Published while B is away (it reconnects after a backoff): B must not lose them.
        for n in range(1, 21):
            await a.publish("headlines", {"n": n})
        got = await on_b.wait_for(21, within=30)
        assert [m.data["n"] for m in got] == list(range(21))
        assert [m.offset for m in got] == list(range(1, 22))
        deadline = time.monotonic() + 30
        while b.health()["status"] != "ok" and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        assert b.health()["status"] == "ok"
        # It did lose its subscription, and came back once.
        assert metrics[1].registry.get_sample_value("ticker_broker_reconnects_total") == 1
    finally:
        for broker, db in started:
            await broker.close()
            await db.close()
        own.kill()
