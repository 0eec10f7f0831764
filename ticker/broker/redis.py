"""``redis://``: the feed shared by every node through one Redis (after Centrifugo's engine).

Per channel, a hash ``<prefix>meta:<channel>`` holds the epoch (``e``) and the last offset
(``s``), and a stream ``<prefix>stream:<channel>`` the history, capped near ``history_size``
(``XADD MAXLEN ~``) and expiring ``history_seconds`` after the last message. Publishing is one
Lua script, so numbering, history and delivery cannot disagree: offset + 1, ``XADD``, and
``PUBLISH`` of the numbered message on ``<prefix>feed``, which every node subscribes to and
hands to its Hub in order. A node that sees a hole in a channel's offsets (a pub/sub message
it missed) fills it from the stream (``XRANGE``) first; on every (re)connection it brings all
its channels up to date from the streams before taking live messages, so its local history
is the stream's and clients resume on any node. What the stream no longer holds is not
pretended: the channel's local history restarts after the hole (``recovered: false``).

``?key_prefix=NAME:`` in the URL puts the keys under another prefix (several sites, or tests,
sharing one Redis); the default is ``ticker:``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ticker.broker.base import BrokerUnavailable, BrokerUnreachable, mask_url
from ticker.feed import wire
from ticker.feed.channels import Channel, Hub, Message, Position, Recovery
from ticker.feed.names import is_latest
from ticker.metrics import Metrics

log = logging.getLogger("ticker.broker")

DEFAULT_PREFIX = "ticker:"
# A publish waits this long for Redis before answering 503: a hung Redis must not hang the API.
PUBLISH_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5.0
# Connections per node: publishes pipeline well over a few; the pub/sub one is on top.
POOL_SIZE = 32
# Reconnection waits double from the first to the last: quick after a blip, gentle on a Redis
# that is restarting for a while.
BACKOFF_FIRST = 0.1
BACKOFF_LAST = 5.0
DOWN = (RedisError, OSError, TimeoutError)

# KEYS: meta hash, stream. ARGV: epoch for a new numbering, channel (JSON), ts, data (JSON),
# history size, history milliseconds, pub/sub channel. A missing meta hash is a new numbering
# (first message, or Redis lost its data): a stale stream under it is dropped.
PUBLISH_LUA = """
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch)
end
local offset = redis.call('HINCRBY', KEYS[1], 's', 1)
local payload = '{"c":' .. ARGV[2] .. ',"e":"' .. epoch .. '","o":' .. offset ..
                ',"t":' .. ARGV[3] .. ',"d":' .. ARGV[4] .. '}'
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], offset .. '-0', 'p', payload)
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('PUBLISH', ARGV[7], payload)
return {epoch, offset}
"""


def split_url(url: str) -> tuple[str, str]:
    """The URL redis-py understands and the key prefix (``?key_prefix=``, else the default)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "key_prefix"), DEFAULT_PREFIX)
    rest = urlencode([(k, v) for k, v in query if k != "key_prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


def key_prefix(url: str) -> str:
    """Where this deployment's keys live in Redis (``ticker:`` unless the URL says)."""
    return split_url(url)[1]


def redis_client(url: str) -> redis.asyncio.Redis:
    """A redis-py asyncio client for the broker URL. It does not retry on its own: an outage
    reaches the caller at once (which decides: answer 503, back off, take over a lock)."""
    plain, _prefix = split_url(url)
    # A burst of publishes waits for one of the pool's connections instead of failing with
    # "Too many connections" (redis-py's plain pool refuses the 101st at once: measured with
    # 100 publishes in flight beside the pub/sub connection).
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        plain, max_connections=POOL_SIZE, timeout=PUBLISH_TIMEOUT,
        retry=Retry(NoBackoff(), 0), socket_connect_timeout=CONNECT_TIMEOUT)
    client: redis.asyncio.Redis = redis.asyncio.Redis.from_pool(pool)  # closes the pool too
    return client


class Entry:
    """One numbered message as Redis carries it (pub/sub payload, stream field ``p``)."""

    __slots__ = ("channel", "data", "epoch", "offset", "ts")

    def __init__(self, raw: bytes | str) -> None:
        p = json.loads(raw)
        self.channel, self.epoch = str(p["c"]), str(p["e"])
        self.offset, self.ts, self.data = int(p["o"]), float(p["t"]), p["d"]
        if not isinstance(self.data, dict):
            raise ValueError("data is not an object")


class RedisBroker:
    def __init__(self, url: str, hub: Hub, metrics: Metrics, *, history_size: int,
                 history_seconds: float) -> None:
        self.url = mask_url(url)
        prefix = key_prefix(url)
        self.hub = hub
        hub.remote_history = True
        self.metrics = metrics
        self._redis = redis_client(url)
        self._size = max(1, history_size)
        self._seconds = history_seconds
        self._meta, self._stream = f"{prefix}meta:", f"{prefix}stream:"
        self._feed = f"{prefix}feed"
        self._script = self._redis.register_script(PUBLISH_LUA)
        self._up = False
        self._down_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._pubsub: PubSub | None = None

    async def start(self, db: object) -> None:
        try:
            pubsub = await asyncio.wait_for(self._connect(), CONNECT_TIMEOUT * 2)
        except DOWN as exc:
            raise BrokerUnreachable(f"cannot reach the broker at {self.url}: "
                                    f"{_reason(exc)}") from None
        self._up = True
        self._task = asyncio.create_task(self._run(pubsub))

    # ------------------------------------------------------------------ publishing

    async def publish(self, channel: str, data: Mapping[str, Any]) -> Message:
        if self.hub.channel_for(channel) is None:
            raise KeyError(channel)
        ts = time.time()
        args: list[bytes | str | int] = [
            secrets.token_hex(4), json.dumps(channel), repr(ts), wire.dumps(data),
            self._size, int(self._seconds * 1000), self._feed]
        try:
            epoch, offset = await asyncio.wait_for(
                self._script(keys=[self._meta + channel, self._stream + channel], args=args),
                PUBLISH_TIMEOUT)
        except DOWN as exc:
            self.metrics.broker_publish_errors.inc()
            raise BrokerUnavailable(f"the broker is not reachable ({_reason(exc)})") from None
        return Message(channel, _text(epoch), int(offset), data, ts)

    async def history(self, channel: str, since: Position | None) -> Recovery:
        """Read from the stream itself (a node whose own history does not reach back)."""
        try:
            return await asyncio.wait_for(self._history(channel, since), PUBLISH_TIMEOUT)
        except DOWN as exc:
            raise BrokerUnavailable(f"the broker is not reachable ({_reason(exc)})") from None

    async def _history(self, channel: str, since: Position | None) -> Recovery:
        head = await self._redis.hmget(self._meta + channel, ["e", "s"])
        local = self.hub.channels[channel]
        if head[0] is None or head[1] is None:
            return local.since(since, time.time())
        epoch, top = _text(head[0]), int(head[1])
        # The channel core decides; it is fed what the stream holds.
        shadow = Channel(channel, latest=is_latest(channel), max_size=self._size,
                         max_age=self._seconds, epoch=epoch)
        for entry in await self._entries(channel, max(1, top - self._size + 1), top):
            if entry.epoch == epoch:
                shadow.accept(epoch, entry.offset, entry.data, entry.ts)
        shadow.skip_to(epoch, top)
        return shadow.since(since, time.time())

    # ------------------------------------------------------------------ delivering

    async def _connect(self) -> PubSub:
        """Subscribe, then bring every channel up to date: live messages wait in the socket
        meanwhile and those the streams already gave are dropped as duplicates."""
        pubsub = self._pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self._feed)
            await self._sync()
        except BaseException:
            with contextlib.suppress(*DOWN):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        return pubsub

    async def _run(self, pubsub: PubSub | None) -> None:
        backoff = BACKOFF_FIRST
        while True:
            try:
                if pubsub is None:
                    pubsub = await self._connect()
                    self._back()
                    backoff = BACKOFF_FIRST
                await self._listen(pubsub)
            except DOWN as exc:
                self._lost(exc)
                if pubsub is not None:
                    with contextlib.suppress(*DOWN):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]
                    pubsub = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_LAST)

    async def _listen(self, pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None and message.get("type") == "message":
                await self._take(message["data"])

    async def _take(self, raw: bytes) -> None:
        try:
            entry = Entry(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("broker message skipped: not a feed message",
                        extra={"bytes": len(raw)})
            return
        channel = self.hub.channel_for(entry.channel)
        if channel is None:
            return  # a channel this node does not serve (configured elsewhere only)
        expected = channel.offset + 1 if entry.epoch == channel.epoch else 1
        if entry.offset > expected:
            await self._fill(entry.channel, entry.epoch, expected, entry.offset - 1)
        self.hub.accept(entry.channel, entry.epoch, entry.offset, entry.data, entry.ts)

    async def _sync(self) -> None:
        names = dict.fromkeys(self.hub.channels)
        async for key in self._redis.scan_iter(match=self._meta + "*", count=500):
            names[_text(key).removeprefix(self._meta)] = None
        for name in names:
            await self._sync_channel(name)

    async def _sync_channel(self, name: str) -> None:
        channel = self.hub.channel_for(name)
        if channel is None:
            return
        meta = self._meta + name
        head = await self._redis.hmget(meta, ["e", "s"])
        if head[0] is None:
            # No message yet: the first node to look names the epoch, so that a client
            # subscribed before the first message resumes on any node.
            await self._redis.hsetnx(meta, "e", channel.epoch)
            head = await self._redis.hmget(meta, ["e", "s"])
        if head[0] is None:
            return
        epoch, top = _text(head[0]), int(head[1] or 0)
        if epoch == channel.epoch and channel.offset >= top:
            return
        first = channel.offset + 1 if epoch == channel.epoch else 1
        await self._fill(name, epoch, first, top)
        # The stream expired or was trimmed past the head: start at the head, honestly empty.
        channel.skip_to(epoch, top)

    async def _fill(self, name: str, epoch: str, first: int, last: int) -> None:
        """Hand the Hub the messages ``first..last`` the stream still holds (at most a
        history's worth: older ones would be dropped by the Hub anyway)."""
        for entry in await self._entries(name, max(first, last - self._size + 1), last):
            if entry.epoch == epoch:
                self.hub.accept(name, epoch, entry.offset, entry.data, entry.ts)

    async def _entries(self, name: str, first: int, last: int) -> list[Entry]:
        if last < first:
            return []
        rows = await self._redis.xrange(self._stream + name, min=f"{first}-0", max=f"{last}-0")
        out = []
        for _id, fields in rows or ():
            try:
                out.append(Entry((fields or {})[b"p"]))
            except (ValueError, KeyError, TypeError):
                log.warning("stream entry skipped: not a feed message", extra={"channel": name})
        return out

    # ------------------------------------------------------------------ health

    def _lost(self, exc: BaseException) -> None:
        if self._up:  # once per outage, not once per attempt
            self._up = False
            self._down_at = time.monotonic()
            log.warning("broker unreachable; reconnecting",
                        extra={"broker": self.url, "error": _reason(exc)})

    def _back(self) -> None:
        self._up = True
        self.metrics.broker_reconnects.inc()
        log.info("broker reachable again", extra={
            "broker": self.url, "down_seconds": round(time.monotonic() - self._down_at, 1)})

    def health(self) -> dict[str, Any]:
        return {"status": "ok" if self._up else "degraded", "url": self.url}

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(*DOWN):
            if self._pubsub is not None:
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            await self._redis.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _reason(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0][:200]
