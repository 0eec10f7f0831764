"""The newsroom's HTTP shapes (answers, queries, small bodies) as pydantic models.

The webhook's body is :class:`ticker.newsroom.incoming.ArticleIn`, beside its core; these
are the rest of what ``/openapi.json`` says about ``/api/articles``, ``/api/approvals`` and
``/api/feeds``, and what the handlers build their answers from.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ticker.feed.names import SOURCE_NAME_PATTERN
from ticker.newsroom.articles import CATEGORY_PATTERN, LANGUAGE_PATTERN, Article, article_json


class ArticleOut(BaseModel):
    id: int
    guid: str
    url: str
    title: str
    summary: str
    category: str
    tags: list[str]
    language: str
    image: str
    published: str | None = Field(description="ISO 8601, UTC.")
    updated: str | None
    breaking: bool
    approval: Literal["pending", "sent", "dismissed"] | None = Field(
        description="Where a breaking article stands in the approval queue.")

    @classmethod
    def of(cls, article: Article) -> ArticleOut:
        return cls.model_validate(article_json(article))


class Ingested(BaseModel):
    article: ArticleOut
    result: Literal["created", "updated", "unchanged"] = Field(description=(
        "unchanged: nothing readers see changed, nothing was published."))


class ArticleList(BaseModel):
    articles: list[ArticleOut]


class ArticlesQuery(BaseModel):
    limit: int = Field(50, ge=1, le=200, description="How many, newest first.")


class ArticlePath(BaseModel):
    id: int = Field(ge=1, le=2**63 - 1)


class SignatureHeader(BaseModel):
    signature: str | None = Field(None, alias="X-Ticker-Signature", max_length=1024,
                                 pattern=r"^[!-~]+$", description=(
        "Instead of a bearer token: t=<unix seconds>,v1=<hex HMAC-SHA256(webhook_secret, "
        "'<t>.<raw body>')>; within 5 minutes of the server's clock, each used once."))


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["send", "dismiss"]


class Decided(BaseModel):
    article: ArticleOut
    alert: int | None = Field(description="The alert sent (send), else null.")


class FeedIn(BaseModel):
    """An admin's feed (``POST /api/feeds``); the configured ones are in the TOML file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=f"^{SOURCE_NAME_PATTERN}$")
    url: str = Field(max_length=2048, pattern=r"^https?://[!-~]+$")
    interval: float = Field(300.0, ge=1, le=7 * 24 * 3600)
    language: str = Field("", pattern=f"^({LANGUAGE_PATTERN})?$")
    category: str = Field("", pattern=f"^({CATEGORY_PATTERN})?$")


class FeedOut(BaseModel):
    name: str
    url: str
    interval: float
    language: str
    category: str
    origin: Literal["config", "api"]
    health: dict[str, Any] = Field(description=(
        "{'status': 'ok' | 'failing' | 'waiting', 'lastPollAt', 'lastError', "
        "'consecutiveFailures', 'nextPollAt'}"))


class FeedList(BaseModel):
    feeds: list[FeedOut]


class FeedPath(BaseModel):
    name: str = Field(pattern=f"^{SOURCE_NAME_PATTERN}$")
