"""Polling data-ticker sources: fetch, read, and publish on ``data:<name>`` when it changed.

``poll_source`` is a plain async job (APScheduler only calls it; tests call it directly).
It never raises: a failed or malformed fetch keeps the last good value, marks it stale once,
and is logged and counted. What to publish is decided by :mod:`ticker.sources.parse`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from apscheduler.triggers.interval import IntervalTrigger

from ticker import appkeys
from ticker.feed.publisher import Publisher
from ticker.metrics import Metrics
from ticker.net.client import PublicClient, Refused, TooLarge, read_capped
from ticker.settings import SourceSettings
from ticker.sources.parse import (
    MalformedDocument,
    channel_payload,
    on_failed_fetch,
    on_good_reading,
    on_not_modified,
    parse_document,
    unavailable_payload,
)
from ticker.sources.state import SourceState

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger("ticker.sources")



class FetchError(Exception):
    """A fetch that yielded no usable document. ``reason`` is a metrics label (few values)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Fetched:
    body: bytes
    etag: str | None
    last_modified: str | None


async def fetch(source: SourceSettings, state: SourceState,
                client: PublicClient) -> Fetched | None:
    """GET the document, conditionally when we hold validators; ``None`` means 304."""
    headers: dict[str, str] = {}
    if state.payload is not None:
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
    try:
        async with client.get(source.url, headers=headers, seconds=source.timeout) as resp:
            if resp.status == 304:
                return None
            if not 200 <= resp.status < 300:
                raise FetchError("http_status", f"HTTP {resp.status}")
            try:
                body = await read_capped(resp, source.max_bytes)
            except TooLarge as exc:
                raise FetchError("too_large", str(exc)) from None
            return Fetched(body, resp.headers.get("ETag"), resp.headers.get("Last-Modified"))
    except TimeoutError:  # aiohttp's timeouts are ClientErrors too: this must come first
        raise FetchError("timeout", f"no complete answer within {source.timeout:g} s") from None
    except Refused as exc:
        raise FetchError("refused", str(exc)[:300]) from None
    except aiohttp.ClientError as exc:
        raise FetchError("network", f"{type(exc).__name__}: {exc}"[:300]) from None



async def poll_source(source: SourceSettings, state: SourceState,
                      client: PublicClient, publisher: Publisher, metrics: Metrics,
                      now: datetime | None = None) -> None:
    """One poll of ``source``: publish on ``data:<name>`` if the value or its staleness
    changed. Never raises (a scheduled job that raises only fills the log)."""
    started = now or datetime.now(UTC)
    state.last_fetch_at = started
    try:
        try:
            result = await _attempt(source, state, client, started)
            state.last_error = None
        except FetchError as exc:
            result = Result("error", on_failed_fetch(
                state.payload, unavailable_payload(source.name, source.attribution)))
            _count_failure(source, state, metrics, exc.reason, exc.detail)
        metrics.source_fetches.labels(source.name, result.outcome).inc()
        if result.update is not None:
            await publisher.publish(f"data:{source.name}", result.update)
            state.payload = result.update
        # Committed only now: had publishing failed, a 304 next time would hide the new value.
        if result.validators is not None:
            state.etag, state.last_modified = result.validators
    except Exception:
        log.exception("source poll failed unexpectedly", extra={"source": source.name})
        metrics.source_fetch_errors.labels(source.name, "internal").inc()


@dataclass(frozen=True)
class Result:
    outcome: str  # metrics label: changed | unchanged | not_modified | error
    update: dict[str, Any] | None  # what to publish, if anything
    validators: tuple[str | None, str | None] | None = None  # of a good document


async def _attempt(source: SourceSettings, state: SourceState, client: PublicClient,
                   started: datetime) -> Result:
    """Fetch and read the document, and decide what to publish."""
    try:
        # A hard bound on the whole poll, whatever the client's own timeouts do.
        async with asyncio.timeout(source.timeout):
            fetched = await fetch(source, state, client)
    except TimeoutError:
        raise FetchError("timeout", f"no complete answer within {source.timeout:g} s") from None
    if fetched is None:
        return Result("not_modified", on_not_modified(state.payload))
    try:
        reading = parse_document(source.format, fetched.body, source.fields, source.as_of)
    except MalformedDocument as exc:
        raise FetchError("malformed", str(exc)) from None
    new = channel_payload(source.name, source.attribution, reading, started)
    update = on_good_reading(state.payload, new)
    if update is not None and state.stale:
        log.info("source recovered", extra={"source": source.name})
    return Result("changed" if update is not None else "unchanged", update,
                  (fetched.etag, fetched.last_modified))


def _count_failure(source: SourceSettings, state: SourceState, metrics: Metrics,
                   reason: str, detail: str) -> None:
    state.last_error = f"{reason}: {detail}"
    metrics.source_fetch_errors.labels(source.name, reason).inc()
    log.warning("source fetch failed; keeping the last good value",
                extra={"source": source.name, "reason": reason, "detail": detail,
                       "url": source.url, "has_value": state.payload is not None})


def _jitter(interval: float) -> float:
    # Spread sources sharing an interval (and nodes sharing a config) without moving far.
    return min(interval * 0.1, 30.0)


async def schedule_sources(app: web.Application, scheduler: AsyncIOScheduler,
                           poll_now: bool = True) -> None:
    """Poll every configured source once now (``poll_now``: on the leading node), then on
    its interval.

    The first polls run concurrently before the server listens, so a subscriber's first
    frame already carries data; each is bounded by its source's timeout.
    """
    settings = app[appkeys.settings]
    sources: tuple[SourceSettings, ...] = settings.sources
    client = app[appkeys.http_client]
    publisher: Publisher = app[appkeys.publisher]
    metrics: Metrics = app[appkeys.metrics]
    states = app[appkeys.source_states]  # created empty with the app: /healthz reads it
    states.update({s.name: SourceState(s.name) for s in sources})
    if poll_now:
        await asyncio.gather(*(poll_source(s, states[s.name], client, publisher, metrics)
                               for s in sources))
    for s in sources:
        scheduler.add_job(
            poll_source,
            IntervalTrigger(seconds=s.interval, jitter=_jitter(s.interval), timezone=UTC),
            args=(s, states[s.name], client, publisher, metrics),
            id=f"source:{s.name}", name=f"poll source {s.name}",
            # A poll that missed its moment (a busy loop, a suspended laptop) still runs,
            # once, rather than a burst of catch-up polls.
            misfire_grace_time=max(1, int(s.interval)), coalesce=True, max_instances=1)
