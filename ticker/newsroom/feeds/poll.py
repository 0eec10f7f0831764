"""Polling one feed: a conditional GET within a size cap, parsed, each entry taken in.

``poll_feed`` is a plain async job (APScheduler only calls it; tests call it directly). It
never raises: a failing feed is logged once when it starts failing, counted in /metrics,
shown on /healthz, retried with backoff (:mod:`ticker.newsroom.feeds.state`), and never
holds up another feed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import aiohttp

from ticker.metrics import Metrics
from ticker.net.client import PublicClient, Refused, TooLarge, read_capped
from ticker.newsroom.feeds.parse import Defaults, MalformedFeed, parse_feed
from ticker.newsroom.feeds.state import FeedState
from ticker.newsroom.ingest import Newsroom
from ticker.settings import NewsFeedSettings

log = logging.getLogger("ticker.feeds")



class FeedError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Document:
    body: bytes
    headers: dict[str, str]


async def fetch(feed: NewsFeedSettings, state: FeedState, client: PublicClient
                ) -> Document | None:
    """The document, or None for 304 Not Modified. Never reads past ``max_bytes``."""
    headers: dict[str, str] = {}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    try:
        async with asyncio.timeout(feed.timeout), client.get(
                feed.url, headers=headers, seconds=feed.timeout) as resp:
            if resp.status == 304:
                return None
            if not 200 <= resp.status < 300:
                raise FeedError("http_status", f"HTTP {resp.status}")
            try:
                body = await read_capped(resp, feed.max_bytes)
            except TooLarge as exc:
                raise FeedError("too_large", str(exc)) from None
            keep = ("ETag", "Last-Modified", "Content-Type", "Content-Location",
                    "Content-Language")
            return Document(body, {k.lower(): resp.headers[k] for k in keep if k in resp.headers})
    except TimeoutError:
        raise FeedError("timeout", f"no complete answer within {feed.timeout:g} s") from None
    except Refused as exc:
        raise FeedError("refused", str(exc)[:300]) from None
    except aiohttp.ClientError as exc:
        raise FeedError("network", f"{type(exc).__name__}: {exc}"[:300]) from None



async def poll_feed(feed: NewsFeedSettings, state: FeedState, client: PublicClient,
                    newsroom: Newsroom, metrics: Metrics, now: float | None = None) -> None:
    """One poll of ``feed``: its new and changed entries become articles. Never raises."""
    started = time.time() if now is None else now
    if not state.due(started):
        return  # backing off after failures
    try:
        outcome = await _poll(feed, state, client, newsroom, metrics, started)
        if state.failures:
            log.info("feed recovered", extra={"feed": feed.name})
        state.succeeded(started)
        metrics.feed_polls.labels(feed.name, outcome).inc()
    except FeedError as exc:
        _failed(feed, state, metrics, started, exc.reason, exc.detail)
    except Exception as exc:
        log.exception("feed poll failed unexpectedly", extra={"feed": feed.name})
        _failed(feed, state, metrics, started, "internal", type(exc).__name__)


async def _poll(feed: NewsFeedSettings, state: FeedState, client: PublicClient,
                newsroom: Newsroom, metrics: Metrics, now: float) -> str:
    doc = await fetch(feed, state, client)
    if doc is None:
        return "not_modified"
    try:
        # Off the loop: parsing a few MB of XML takes long enough to stall every client.
        parsed = await asyncio.to_thread(
            parse_feed, doc.body, Defaults(feed.language, feed.category), doc.headers)
    except MalformedFeed as exc:
        raise FeedError(exc.reason, exc.detail) from None
    if parsed.skipped:
        log.info("feed entries skipped", extra={"feed": feed.name, "skipped": parsed.skipped,
                                                "first_problem": parsed.first_problem})
    changed = 0
    # Feeds list the newest first; taken oldest first, the newest is published last and so
    # stands on top of a widget's list.
    for article in reversed(parsed.articles):
        taken = await newsroom.take(article, now)
        metrics.articles.labels("feed", taken.result).inc()
        changed += taken.result != "unchanged"
    # Kept only now: had taking the entries failed, a 304 next time would hide them.
    state.etag, state.last_modified = doc.headers.get("etag"), doc.headers.get("last-modified")
    return "changed" if changed else "unchanged"


def _failed(feed: NewsFeedSettings, state: FeedState, metrics: Metrics, now: float,
            reason: str, detail: str) -> None:
    first = state.failures == 0
    state.failed(now, feed.interval, f"{reason}: {detail}")
    metrics.feed_polls.labels(feed.name, "error").inc()
    metrics.feed_errors.labels(feed.name, reason).inc()
    # Once per streak: a feed down for a day must not fill the log.
    (log.warning if first else log.debug)(
        "feed poll failed", extra={"feed": feed.name, "reason": reason, "detail": detail,
                                   "failures": state.failures})
