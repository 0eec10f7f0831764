"""HTTP handlers for ``/api/push/*`` and ``/api/alerts*``: validate, call the core, answer."""

from __future__ import annotations

import asyncio
import socket

import pydantic
from aiohttp import web

from subscribers import alerts
from subscribers import subscriptions as store
from subscribers.crypto import vapid
from subscribers.editorial import testsend
from subscribers.editorial.preview import preview
from subscribers.errors import (
    AlreadyFinished,
    InvalidSubscription,
    UnknownAlert,
    UnknownSubscription,
)
from subscribers.pushclient.endpoints import check_addresses, check_endpoint
from subscribers.service import PUSH, PushService
from subscribers.settings import PushSettings
from subscribers.validate import (
    AlertBody,
    Receipt,
    SubscribeBody,
    UnsubscribeBody,
    subscription_in,
)
from subscribers.web import schemas
from subscribers.web.schemas import IDEMPOTENCY_KEY_MAX as IDEMPOTENCY_KEY_MAX
from ticker import appkeys
from ticker.errors import RateLimited, read_body
from ticker.storage.database import Database
from ticker.web.auth import require_token
from ticker.web.clientaddr import client_address
from ticker.web.openapi import add_operations

SUBSCRIPTION_MAX_BYTES = 4 * 1024  # a PushSubscription with topics is well under 1 KiB
RECEIPT_MAX_BYTES = 1024
ALERT_MAX_BYTES = 16 * 1024


def _push(request: web.Request) -> tuple[PushService, Database]:
    push = request.app[PUSH]
    push.running()
    return push, request.app[appkeys.database]


async def resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _limit(limiter_ok: bool, retry_after: float) -> None:
    if not limiter_ok:
        raise RateLimited(headers={"Retry-After": str(max(1, round(retry_after)))})


def _client(request: web.Request) -> str:
    """Who the request is from, for the per-client limits (proxies: ticker.web.clientaddr)."""
    trusted = request.app[appkeys.trusted_proxies]
    return client_address(request.remote, request.headers.getall("X-Forwarded-For", []), trusted)


async def vapid_public_key(request: web.Request) -> web.Response:
    _, db = _push(request)
    key = await vapid.ensure_key(db)
    return web.json_response({"publicKey": key.public_key},
                             headers={"Cache-Control": "public, max-age=60"})


async def subscribe(request: web.Request) -> web.Response:
    push, db = _push(request)
    now, client = push.clock.now(), _client(request)
    _limit(push.subscribe_limiter.allow(client, now),
           push.subscribe_limiter.retry_after(client, now))
    topics = request.app[appkeys.settings].part(PushSettings).push_topics
    body = await read_body(request, SubscribeBody, SUBSCRIPTION_MAX_BYTES,
                           code="invalid_subscription",
                           context={"topics": topics, "allow": push.allow})
    sub = subscription_in(body, topics)
    await check_addresses(check_endpoint(sub.endpoint, push.allow), resolve)
    if sub.vapid_key is None:
        key_id = (await vapid.ensure_key(db)).id
    else:
        found = await vapid.key_id_for(db, sub.vapid_key)
        if found is None:
            raise InvalidSubscription("'vapidKey' is not a key of this server; fetch "
                                      "/api/push/vapid-public-key and subscribe again.")
        key_id = found
    created = await store.upsert(db, sub, key_id, now)
    push.metrics.subscriptions.inc("created" if created else "updated")
    answer = schemas.Subscribed(topics=list(sub.topics), language=sub.language,
                                timezone=sub.timezone)
    return web.json_response(answer.model_dump(), status=201)


async def unsubscribe(request: web.Request) -> web.Response:
    push, db = _push(request)
    body = await read_body(request, UnsubscribeBody, SUBSCRIPTION_MAX_BYTES,
                           code="invalid_subscription")
    if not await store.unsubscribe(db, body.endpoint, body.auth):
        raise UnknownSubscription()
    push.metrics.subscriptions.inc("removed")
    return web.Response(status=204)


async def receipt(request: web.Request) -> web.Response:
    push, db = _push(request)
    now, client = push.clock.now(), _client(request)
    _limit(push.receipt_limiter.allow(client, now), push.receipt_limiter.retry_after(client, now))
    body = await read_body(request, Receipt, RECEIPT_MAX_BYTES, code="invalid_event")
    if not await alerts.exists(db, body.alert):
        raise UnknownAlert()
    await alerts.record_receipt(db, body.alert, body.event)
    push.metrics.receipts.inc(body.event)
    return web.Response(status=204)


def _alert_id(request: web.Request) -> int:
    try:
        return schemas.AlertPath.model_validate({"id": request.match_info["id"]},
                                                strict=False).id
    except pydantic.ValidationError:
        raise UnknownAlert() from None  # a path that names no alert is not found


def _alert_context(request: web.Request, push: PushService) -> dict[str, object]:
    settings = request.app[appkeys.settings].part(PushSettings)
    return {"topics": settings.push_topics, "now": push.clock.now()}


def _ttl(request: web.Request) -> int:
    return request.app[appkeys.settings].part(PushSettings).push_ttl


async def create_alert(request: web.Request) -> web.Response:
    push, db = _push(request)
    token = await require_token(request)
    key = schemas.IdempotencyHeader.model_validate(
        {"Idempotency-Key": request.headers.get("Idempotency-Key")}).idempotency_key
    body = await read_body(request, AlertBody, ALERT_MAX_BYTES, code="invalid_alert",
                           context=_alert_context(request, push))
    alert_id, created = await alerts.create(db, body.value(_ttl(request)),
                                            idempotency_key=key, created_by=token.id,
                                            now=push.clock.now(), actor=token.actor)
    if created:
        push.changed(alert_id, wake=True)
    status = await alerts.status(db, alert_id)
    return web.json_response(status, status=201 if created else 200,
                             headers={"Location": f"/api/alerts/{alert_id}"})


async def list_alerts(request: web.Request) -> web.Response:
    _, db = _push(request)
    await require_token(request)
    query = schemas.AlertsQuery.model_validate(dict(request.query), strict=False)
    return web.json_response({"alerts": await alerts.recent(db, query.limit)},
                             headers={"Cache-Control": "no-store"})


async def preview_alert(request: web.Request) -> web.Response:
    push, db = _push(request)
    await require_token(request)
    body = await read_body(request, AlertBody, ALERT_MAX_BYTES, code="invalid_alert",
                           context=_alert_context(request, push))
    alert = body.value(_ttl(request))
    audience = await alerts.audience_size(db, alert, push.clock.now())
    return web.json_response(preview(alert, audience), headers={"Cache-Control": "no-store"})


async def test_alert(request: web.Request) -> web.Response:
    push, db = _push(request)
    engine, _ = push.running()
    token = await require_token(request)
    body = await read_body(request, schemas.TestSendBody, ALERT_MAX_BYTES,
                           code="invalid_alert", context=_alert_context(request, push))
    alert = body.alert.value(_ttl(request))
    target = await testsend.target(db, body.endpoint, push.clock.now())
    alert_id = await alerts.create_test(db, alert, actor=token.actor, endpoint=target.endpoint,
                                        now=push.clock.now())
    try:
        outcome = await testsend.send(engine, alert, alert_id, target)
    except BaseException:
        await alerts.finish_test(db, alert_id, "error", push.clock.now())  # no row left open
        raise
    await alerts.finish_test(db, alert_id, outcome.outcome, push.clock.now())
    answer = schemas.TestSent(alert=alert_id, status=outcome.status, outcome=outcome.outcome)
    return web.json_response(answer.model_dump())


async def alert_status(request: web.Request) -> web.Response:
    _, db = _push(request)
    await require_token(request)
    body = await alerts.status(db, _alert_id(request))
    if body is None:
        raise UnknownAlert()
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def cancel_alert(request: web.Request) -> web.Response:
    push, db = _push(request)
    token = await require_token(request)
    alert_id = _alert_id(request)
    if not await alerts.exists(db, alert_id):
        raise UnknownAlert()
    if not await alerts.cancel(db, alert_id, push.clock.now(), token.actor):
        raise AlreadyFinished()
    push.running()[1].cancel(alert_id)
    push.changed(alert_id)
    return web.json_response(await alerts.status(db, alert_id))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/push/vapid-public-key", vapid_public_key)
    app.router.add_post("/api/push/subscriptions", subscribe)
    app.router.add_delete("/api/push/subscriptions", unsubscribe)
    app.router.add_post("/api/push/events", receipt)
    app.router.add_post("/api/alerts", create_alert)
    app.router.add_get("/api/alerts", list_alerts)
    app.router.add_post("/api/alerts/preview", preview_alert)
    app.router.add_post("/api/alerts/test", test_alert)
    app.router.add_get("/api/alerts/{id}", alert_status)
    app.router.add_post("/api/alerts/{id}/cancel", cancel_alert)
    add_operations(app, *schemas.OPERATIONS)
