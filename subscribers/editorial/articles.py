"""The article -> alert hook (``appkeys.article_alerts``): a breaking article becomes an alert.

NEWS calls it for ``breaking_policy = "auto"`` and for an approval's "send". The alert is
built as an editor would compose it and validated by the same model (:class:`AlertBody`):
the title, the summary as body (cut where lock screens stop reading), the article's url and
image, its category as the topic when readers can choose that topic, its language. The
Idempotency-Key ``article:<guid>`` makes one article one alert: a second call, even after
the article's title changed, returns the first alert.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from subscribers import alerts
from subscribers.errors import IdempotencyConflict
from subscribers.service import PUSH
from subscribers.settings import PushSettings
from subscribers.validate import LINK_OR_EMPTY, MAX_TEXT, parse_alert
from subscribers.web.schemas import IDEMPOTENCY_KEY_MAX
from ticker import appkeys
from ticker.newsroom.articles import Article

BODY_CHARS = 280  # twice what the widest notification shows: the rest only costs bytes
_PRINTABLE = re.compile(r"[\x21-\x7e]+")

ArticleAlerts = Callable[[Article, str], Awaitable[int]]


def idempotency_key(guid: str) -> str:
    """``article:<guid>``, or a hash of the guid when it is too long or not plain ASCII."""
    key = f"article:{guid}"
    if len(key) <= IDEMPOTENCY_KEY_MAX and _PRINTABLE.fullmatch(guid):
        return key
    return "article:sha256:" + hashlib.sha256(guid.encode("utf-8")).hexdigest()


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "\u2026"


def alert_body(article: Article, offered_topics: Sequence[str]) -> dict[str, Any]:
    """The ``POST /api/alerts`` body for the article (pure).

    A category readers cannot choose does not widen the alert to everyone: it goes to the
    ``breaking`` topic when the site offers one (the article is breaking news), else to
    everyone, as an editor sending it by hand would.
    """
    if article.category in offered_topics:
        topics = [article.category]
    else:
        topics = ["breaking"] if "breaking" in offered_topics else []
    image = article.image if re.match(LINK_OR_EMPTY, article.image) and \
        len(article.image) <= MAX_TEXT["image"] else ""
    return {"title": _cut(article.title, MAX_TEXT["title"]) or article.url,
            "body": _cut(article.summary, BODY_CHARS), "url": article.url, "image": image,
            "topics": topics, "languages": [article.language] if article.language else [],
            "tag": f"article-{article.id}"}


def article_hook(app: web.Application) -> ArticleAlerts:
    async def article_alert(article: Article, actor: str) -> int:
        push, db = app[PUSH], app[appkeys.database]
        push.running()
        settings = app[appkeys.settings].part(PushSettings)
        alert = parse_alert(alert_body(article, settings.push_topics), settings.push_topics,
                            settings.push_ttl)
        key = idempotency_key(article.guid)
        try:
            alert_id, created = await alerts.create(db, alert, idempotency_key=key,
                                                    created_by=None, now=push.clock.now(),
                                                    actor=actor)
        except IdempotencyConflict:  # the article changed since its alert: still one alert
            found = await alerts.by_key(db, key)
            assert found is not None
            return found
        if created:
            push.changed(alert_id, wake=True)
        return alert_id

    return article_alert
