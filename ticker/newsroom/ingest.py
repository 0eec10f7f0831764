"""Taking an article in: store it (idempotent by guid), publish it, apply the breaking policy.

The webhook and the feed poller both call :meth:`Newsroom.take`. The decisions are
:mod:`ticker.newsroom.routing`'s; this module moves values between the database, the
publisher and the article -> alert hook (``appkeys.article_alerts``, registered by Web Push).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from ticker import audit
from ticker.feed.publisher import Publisher
from ticker.newsroom import routing, store
from ticker.newsroom.articles import Article
from ticker.newsroom.errors import AlertsUnavailable, NotPending, ReplayedSignature, UnknownArticle
from ticker.newsroom.signature import WINDOW
from ticker.storage.database import Database

log = logging.getLogger("ticker.newsroom")

AlertHook = Callable[[Article, str], Awaitable[int]]
PRUNE_EVERY = 60.0  # seconds between prunes of old webhook signatures (per process)
SYSTEM = "system"  # the actor of what the server does by itself (breaking_policy auto)


@dataclass(frozen=True)
class Taken:
    article: Article
    result: routing.Result
    alert: int | None = None  # the alert sent at once (breaking_policy auto)


class Newsroom:
    def __init__(self, db: Database, publisher: Publisher, policy: routing.Policy,
                 alerts: Callable[[], AlertHook | None]) -> None:
        self.db = db
        self.publisher = publisher
        self.policy = policy
        # Looked up at each use: Web Push registers (or withdraws) the hook as it starts.
        self._alerts = alerts
        self._pruned_at = 0.0

    async def take(self, incoming: Article, now: float, *, signature: str | None = None
                   ) -> Taken:
        """Store, publish and route one article. A signature already seen raises
        :class:`ReplayedSignature` and writes nothing (one transaction)."""
        async with self.db.transaction() as tx:
            if signature is not None:
                if not await store.remember_signature(tx, signature, now):
                    raise ReplayedSignature()
                if now - self._pruned_at > PRUNE_EVERY:
                    # Not on every request: one statement less on the webhook's path.
                    await store.forget_signatures(tx, now - 2 * WINDOW)
                    self._pruned_at = now
            await store.lock_guid(tx, self.db.dialect, incoming.guid)
            old = await store.by_guid(tx, incoming.guid)
            change = routing.compare(old, incoming)
            action = routing.breaking_action(self.policy, old, incoming)
            article = routing.merged(old, incoming)
            if action == "queue":
                article = replace(article, approval="pending")
            if change.store or action == "queue":
                article = await store.save(tx, article, now)
        if change.publish:
            for channel in routing.channels(article):
                await self.publisher.publish(channel, routing.headline(article))
        alert = None
        if action == "alert":
            article, alert = await self._auto_alert(article, now)
        return Taken(article, change.result, alert)

    async def _auto_alert(self, article: Article, now: float) -> tuple[Article, int | None]:
        """breaking_policy auto: alert now; when that cannot be done, queue it instead so
        an editor still sees it."""
        try:
            alert = await self._send(article, SYSTEM, now)
        except Exception as exc:
            log.warning("breaking article could not be alerted; queued for approval",
                        extra={"article": article.id, "reason": str(exc)[:200]})
            await store.set_approval(self.db, article.id, "pending", None, now)
            return replace(article, approval="pending"), None
        return replace(article, approval="sent"), alert

    async def _send(self, article: Article, actor: str, now: float) -> int:
        hook = self._alerts()
        if hook is None:
            raise AlertsUnavailable()
        alert = await hook(article, actor)
        async with self.db.transaction() as tx:
            await store.set_approval(tx, article.id, "sent", alert, now)
            await audit.record(tx, actor, "approval.send", f"article:{article.id}", now,
                               {"alert": alert, "guid": article.guid})
        return alert

    async def decide(self, article_id: int, action: str, actor: str, now: float
                     ) -> tuple[Article, int | None]:
        """An editor's click on a queued breaking article: ``send`` or ``dismiss``."""
        article = await store.by_id(self.db, article_id)
        if article is None:
            raise UnknownArticle()
        if article.approval != "pending":
            raise NotPending()
        if action == "send":
            alert = await self._send(article, actor, now)
            return replace(article, approval="sent"), alert
        async with self.db.transaction() as tx:
            await store.set_approval(tx, article.id, "dismissed", None, now)
            await audit.record(tx, actor, "approval.dismiss", f"article:{article.id}", now,
                               {"guid": article.guid})
        return replace(article, approval="dismissed"), None
