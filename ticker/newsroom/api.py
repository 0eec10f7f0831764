"""``/api/articles`` (the CMS webhook, the editors' list) and ``/api/approvals``: thin
adapters between HTTP and :class:`ticker.newsroom.ingest.Newsroom`."""

from __future__ import annotations

import time

import pydantic
from aiohttp import web

from ticker import appkeys
from ticker.errors import from_validation, read_body, read_bytes
from ticker.newsroom import signature, store
from ticker.newsroom.incoming import ArticleIn
from ticker.newsroom.schemas import (
    ArticleList,
    ArticleOut,
    ArticlePath,
    ArticlesQuery,
    Decided,
    Decision,
    Ingested,
    SignatureHeader,
)
from ticker.web.auth import require_token
from ticker.web.openapi import Operation, add_operations

WEBHOOK_ACTOR = "webhook"


async def post_article(request: web.Request) -> web.Response:
    settings = request.app[appkeys.settings]
    header = request.headers.get(signature.HEADER)
    if header is None:
        info = await require_token(request, "editor")
        actor = info.actor
    raw = await read_bytes(request, settings.newsroom.article_max_bytes)
    now = time.time()
    used = None
    if header is not None:
        # Checked before the body is even parsed: an unsigned caller costs one HMAC.
        used = signature.verify(header, settings.server.webhook_secret.reveal(), raw, now)
        actor = WEBHOOK_ACTOR
    try:
        body = ArticleIn.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        raise from_validation(exc, "invalid_article", "article", model=ArticleIn) from None
    taken = await request.app[appkeys.newsroom].take(body.article(), now, signature=used)
    request.app[appkeys.metrics].articles.labels(
        "webhook" if actor == WEBHOOK_ACTOR else "token", taken.result).inc()
    answer = Ingested(article=ArticleOut.of(taken.article), result=taken.result)
    return web.json_response(answer.model_dump(),
                             status=201 if taken.result == "created" else 200)


async def list_articles(request: web.Request) -> web.Response:
    await require_token(request, "editor")
    query = ArticlesQuery.model_validate(dict(request.query))
    articles = await store.recent(request.app[appkeys.database], query.limit)
    answer = ArticleList(articles=[ArticleOut.of(a) for a in articles])
    return web.json_response(answer.model_dump())


async def list_approvals(request: web.Request) -> web.Response:
    await require_token(request, "editor")
    articles = await store.pending(request.app[appkeys.database])
    return web.json_response(ArticleList(articles=[ArticleOut.of(a) for a in articles])
                             .model_dump())


async def decide(request: web.Request) -> web.Response:
    info = await require_token(request, "editor")
    path = ArticlePath.model_validate(dict(request.match_info))
    decision = await read_body(request, Decision, 4096)
    article, alert = await request.app[appkeys.newsroom].decide(
        path.id, decision.action, info.actor, time.time())
    return web.json_response(Decided(article=ArticleOut.of(article), alert=alert).model_dump())


OPERATIONS = (
    Operation("POST", "/api/articles", "Ingest an article (the CMS webhook)",
              description="Authenticated by a bearer token (editor) or by "
                          "`X-Ticker-Signature`. Idempotent by `guid`: 201 created, 200 "
                          "updated (published again) or unchanged (nothing published).",
              auth=True, ok=201, body=ArticleIn, answer=Ingested,
              params=(("header", SignatureHeader),), tags=("articles",),
              raw={200: {"description": "Updated or unchanged (see `result`).",
                         "content": {"application/json": {
                             "schema": {"$ref": "#/components/schemas/Ingested"}}}}},
              errors=("invalid_article", "invalid_signature", "stale_signature",
                      "replayed_signature")),
    Operation("GET", "/api/articles", "Recent articles, newest first", auth=True,
              answer=ArticleList, params=(("query", ArticlesQuery),), tags=("articles",),
              errors=("invalid_request",)),
    Operation("GET", "/api/approvals", "Breaking articles waiting for an editor", auth=True,
              answer=ArticleList, tags=("articles",)),
    Operation("POST", "/api/approvals/{id}", "Send or dismiss a queued breaking article",
              description="`send` makes the push alert (audit-logged); `dismiss` drops it "
                          "from the queue.",
              auth=True, body=Decision, answer=Decided, params=(("path", ArticlePath),),
              tags=("articles",),
              errors=("invalid_request", "unknown_article", "not_pending",
                      "alerts_unavailable")),
)


def setup(app: web.Application) -> None:
    app.router.add_post("/api/articles", post_article)
    app.router.add_get("/api/articles", list_articles)
    app.router.add_get("/api/approvals", list_approvals)
    app.router.add_post("/api/approvals/{id}", decide)
    add_operations(app, *OPERATIONS)
