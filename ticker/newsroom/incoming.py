"""An article as it arrives (the webhook's body, a feed's entry), checked and normalised.

:class:`ArticleIn` is the webhook's request body and the one rule for what an article may
hold: feed entries are put through it too, so both ways in keep the same limits. No I/O.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ticker.feed.items import BLANK, NON_BLANK
from ticker.newsroom.articles import CATEGORY_PATTERN, LANGUAGE_PATTERN, Article

MAX_TITLE = 300
MAX_SUMMARY = 1000
MAX_TAGS = 20
HTTP_URL = f"^https?://[^{BLANK}]+$"


class ArticleIn(BaseModel):
    """``POST /api/articles``: one article, identified by ``guid``."""

    model_config = ConfigDict(extra="forbid")

    guid: Annotated[str, Field(min_length=1, max_length=512, pattern=NON_BLANK, description=(
        "The CMS's stable id for the article: the same guid again updates it."))]
    url: Annotated[str, Field(max_length=2048, pattern=HTTP_URL,
                                        description="The article's http(s) address.")]
    title: Annotated[str, Field(min_length=1, max_length=MAX_TITLE, pattern=NON_BLANK,
                                description="Not blank.")]
    summary: Annotated[str, Field(max_length=MAX_SUMMARY, description=(
        "Plain text (markup is shown as written).")) ] = ""
    category: Annotated[str, Field(max_length=32, pattern=f"^({CATEGORY_PATTERN})?$",
                                          description="One word, e.g. 'sport'.")] = ""
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=MAX_TAGS)
    language: Annotated[str, Field(max_length=35, pattern=f"^({LANGUAGE_PATTERN})?$",
                                          description="BCP 47, e.g. 'en' or 'pt-br'.")] = ""
    image: Annotated[str, Field(max_length=2048, pattern=f"({HTTP_URL})|^$",
                                          description="An http(s) image address.")] = ""
    published: AwareDatetime | None = Field(None, description=(
        "RFC 3339 with an offset, or Unix seconds."))
    updated: AwareDatetime | None = None
    breaking: bool = False

    def article(self) -> Article:
        """As the newsroom keeps it (``id`` 0: not stored yet)."""
        return Article(
            id=0, guid=self.guid, url=self.url, title=self.title, summary=self.summary,
            category=self.category, tags=tuple(dict.fromkeys(self.tags)),
            language=self.language, image=self.image,
            published=self.published.timestamp() if self.published else None,
            updated=self.updated.timestamp() if self.updated else None,
            breaking=self.breaking)


class _Text(HTMLParser):
    SKIP = frozenset({"script", "style"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIP:
            self._skipping += 1
        elif tag in ("br", "p", "div", "li"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def plain_text(markup: str, limit: int = MAX_SUMMARY) -> str:
    """HTML (a feed's summary) as one line of plain text, cut at a word within ``limit``."""
    parser = _Text()
    parser.feed(markup)
    parser.close()
    text = re.sub(r"\s+", " ", "".join(parser.parts)).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"
