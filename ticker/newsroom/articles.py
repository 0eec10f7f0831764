"""An article as the newsroom keeps it (the model; storage and routing live beside it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

# A BCP 47 tag as we keep it: lower-case, e.g. ``en``, ``pt-br``, ``zh-hant-tw``.
LANGUAGE_PATTERN = r"[a-z]{2,3}(-[a-z0-9]{1,8}){0,3}"
# A category is one channel-safe word: it becomes part of ``headlines:<category>``.
CATEGORY_PATTERN = r"[a-z0-9][a-z0-9_-]{0,31}"
LANGUAGE_RE = re.compile(LANGUAGE_PATTERN + r"\Z")
CATEGORY_RE = re.compile(CATEGORY_PATTERN + r"\Z")

Approval = Literal["pending", "sent", "dismissed"]


@dataclass(frozen=True)
class Article:
    """One article, identified by ``guid`` (the CMS's id, or a feed entry's id or link).

    Times are Unix seconds (None when the source gave none). ``language`` is a BCP 47 tag,
    lower-case (``en``, ``en-gb``); ``category`` a channel-safe word (``sport``), both
    possibly empty. ``approval`` is where a breaking article stands in the console's queue
    (None for one that never entered it).
    """

    id: int
    guid: str
    url: str
    title: str
    summary: str
    category: str
    tags: tuple[str, ...]
    language: str
    image: str
    published: float | None
    updated: float | None
    breaking: bool
    approval: Approval | None = None


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def article_json(article: Article) -> dict[str, Any]:
    """The article as the API shows it (``GET /api/articles``, webhook answers)."""
    return {"id": article.id, "guid": article.guid, "url": article.url,
            "title": article.title, "summary": article.summary,
            "category": article.category, "tags": list(article.tags),
            "language": article.language, "image": article.image,
            "published": iso(article.published), "updated": iso(article.updated),
            "breaking": article.breaking, "approval": article.approval}
