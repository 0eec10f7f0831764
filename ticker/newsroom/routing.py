"""What an incoming article changes and where it goes: pure decisions, tested with tables.

* :func:`compare`: the same guid again is ``unchanged`` unless a field readers see changed
  (title, summary, url, image, category, language, breaking): then ``updated`` and published
  again. Tags and the published/updated times are not shown by the widgets, and CMSs and
  feeds touch them without news; a change there only is stored quietly (``unchanged``).
* :func:`channels`: ``headlines``, ``headlines:<language>``, ``headlines:<category>``.
* :func:`headline`: the channel payload (the contract's headlines item plus the article's
  guid, category, language, published time and breaking flag).
* :func:`breaking_action`: what ``breaking_policy`` does with an article that has just
  become breaking (new, or its flag turned on): alert at once, queue it, or nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from ticker.feed.names import HEADLINES, headlines_channel
from ticker.newsroom.articles import Article, iso

Result = Literal["created", "updated", "unchanged"]
Policy = Literal["auto", "approve", "off"]
Action = Literal["alert", "queue", "none"]

ACTIONS: dict[Policy, Action] = {"auto": "alert", "approve": "queue", "off": "none"}
SHOWN = ("title", "summary", "url", "image", "category", "language", "breaking")
QUIET = ("tags", "published", "updated")


@dataclass(frozen=True)
class Change:
    result: Result
    store: bool  # whether the stored row must be written
    publish: bool  # whether the headlines channels get it (again)


def compare(old: Article | None, new: Article) -> Change:
    if old is None:
        return Change("created", store=True, publish=True)
    if any(getattr(old, f) != getattr(new, f) for f in SHOWN):
        return Change("updated", store=True, publish=True)
    quiet = any(getattr(old, f) != getattr(new, f) for f in QUIET)
    return Change("unchanged", store=quiet, publish=False)


def merged(old: Article | None, new: Article) -> Article:
    """``new`` as it will be stored: the old row's id and approval state kept."""
    if old is None:
        return new
    return dataclasses.replace(new, id=old.id, approval=old.approval)


def channels(article: Article) -> list[str]:
    keys = dict.fromkeys(k for k in (article.language, article.category) if k)
    return [HEADLINES, *(headlines_channel(k) for k in keys)]


def headline(article: Article) -> dict[str, Any]:
    item: dict[str, Any] = {"title": article.title, "url": article.url}
    if article.summary:
        item["summary"] = article.summary
    if article.image:
        item["image"] = article.image
    item.update(guid=article.guid, category=article.category, language=article.language,
                published=iso(article.published), breaking=article.breaking)
    return item


def breaking_action(policy: Policy, old: Article | None, new: Article) -> Action:
    """Only the moment an article becomes breaking counts: an edit of a breaking article
    (a typo fixed) must not send a second alert or queue it again."""
    if not new.breaking or (old is not None and old.breaking):
        return "none"
    return ACTIONS[policy]
