"""An RSS or Atom document -> articles. No I/O: bytes in, articles out.

feedparser reads the document; its SAX parser is defusedxml's, so entity declarations
(billion laughs) and external entities or DTDs are refused instead of expanded or fetched.
It is handed bytes, never a URL or a path, so it never fetches anything itself.
"""

from __future__ import annotations

import calendar
import io
import re
import time
import xml.sax
import xml.sax.handler
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import feedparser
import feedparser.api
import pydantic
from defusedxml import DefusedXmlException
from defusedxml.expatreader import create_parser

from ticker.newsroom.articles import CATEGORY_RE, LANGUAGE_RE, Article
from ticker.newsroom.incoming import MAX_SUMMARY, MAX_TAGS, MAX_TITLE, ArticleIn, plain_text

# feedparser's documented choice of SAX driver, set for feedparser alone (the stdlib's
# xml.sax defaults are untouched): xml.sax.make_parser imports this module and calls its
# create_parser, which forbids DTDs' entities and external references.
feedparser.api.PREFERRED_XML_PARSERS[:] = ["defusedxml.expatreader"]


class MalformedFeed(Exception):
    """The document is not a feed we can read (``reason`` is a metrics label)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Defaults:
    """A feed's configured language and category, for entries that name none."""

    language: str = ""
    category: str = ""


@dataclass(frozen=True)
class Parsed:
    articles: list[Article]
    skipped: int  # entries that could not be made into an article (no link, no title...)
    first_problem: str | None


class _Root(Exception):
    """The prolog is over: the document's first element has started."""


class _StopAtRoot(xml.sax.handler.ContentHandler):
    def startElement(self, name: str, attrs: Any) -> None:
        raise _Root

    def startElementNS(self, name: Any, qname: Any, attrs: Any) -> None:
        raise _Root


def check_prolog(body: bytes) -> None:
    """Refuse entity declarations and external references in the DTD.

    feedparser rewrites a document's DOCTYPE before its parser sees it (dropping most
    declarations silently), so its defused parser alone would refuse some hostile
    documents and quietly read others. Reading the prolog with defusedxml first refuses
    them all the same way; it stops at the root element, so it costs next to nothing.
    """
    parser = create_parser(forbid_dtd=False, forbid_entities=True, forbid_external=True)
    parser.setContentHandler(_StopAtRoot())
    try:
        parser.feed(body)
    except _Root:
        return
    except xml.sax.SAXException:
        return  # not well-formed: feedparser's lenient reading decides what it is


def parse_feed(body: bytes, defaults: Defaults,
               headers: Mapping[str, str] | None = None) -> Parsed:
    try:
        check_prolog(body)
        doc = feedparser.parse(io.BytesIO(body), response_headers=dict(headers or {}),
                               sanitize_html=True, resolve_relative_uris=True)
    except DefusedXmlException as exc:
        raise MalformedFeed("entities", f"refused: {type(exc).__name__}") from None
    if doc.get("bozo") and not doc.get("entries"):
        detail = str(doc.get("bozo_exception") or "not a feed")[:200]
        raise MalformedFeed("malformed", detail)
    if not doc.get("version") and not doc.get("entries"):
        raise MalformedFeed("malformed", "not an RSS or Atom document")
    feed_language = _language(doc.get("feed", {}).get("language", ""))
    articles, skipped, problem = [], 0, None
    for entry in doc.get("entries", []):
        try:
            articles.append(entry_article(entry, feed_language, defaults))
        except pydantic.ValidationError as exc:
            skipped += 1
            problem = problem or str(exc.errors(include_url=False)[0]["msg"])[:200]
    return Parsed(articles, skipped, problem)


def entry_article(entry: dict[str, Any], feed_language: str, defaults: Defaults) -> Article:
    """One entry as an article; raises pydantic's ValidationError when it cannot be one."""
    link = str(entry.get("link") or "")
    tags = [str(t.get("term") or "")[:64].strip() for t in entry.get("tags") or []]
    tags = [t for t in tags if t][:MAX_TAGS]
    fields: dict[str, Any] = {
        "guid": str(entry.get("id") or link)[:512],
        "url": link,
        "title": plain_text(str(entry.get("title") or ""), MAX_TITLE),
        "summary": plain_text(str(entry.get("summary") or ""), MAX_SUMMARY),
        "language": (_language(_entry_language(entry)) or feed_language
                     or defaults.language),
        "category": defaults.category or next(
            (c for c in map(_category, tags) if c), ""),
        "tags": tags,
        "image": _image(entry),
        # dict.get: FeedParserDict.get maps a missing "updated" to "published" (with a
        # deprecation warning); we want what the entry says.
        "published": _time(dict.get(entry, "published_parsed")),
        "updated": _time(dict.get(entry, "updated_parsed")),
    }
    return ArticleIn.model_validate(fields).article()


def _entry_language(entry: Mapping[str, Any]) -> str:
    for key in ("title_detail", "summary_detail"):
        detail = entry.get(key) or {}
        if detail.get("language"):
            return str(detail["language"])
    return ""


def _language(raw: str) -> str:
    tag = str(raw or "").strip().lower().replace("_", "-")
    return tag if LANGUAGE_RE.match(tag) else ""


def _category(term: str) -> str:
    word = re.sub(r"[^a-z0-9_-]+", "-", term.lower()).strip("-_")[:32]
    return word if CATEGORY_RE.match(word) else ""


def _image(entry: Mapping[str, Any]) -> str:
    candidates: list[Mapping[str, Any]] = [
        *[m for m in entry.get("media_content") or []
          if m.get("medium") == "image" or str(m.get("type", "")).startswith("image/")],
        *(entry.get("media_thumbnail") or []),
        *[e for e in entry.get("enclosures") or [] if str(e.get("type", "")).startswith("image/")],
    ]
    for item in candidates:
        url = str(item.get("url") or item.get("href") or "")
        if url.startswith(("http://", "https://")) and len(url) <= 2048 and " " not in url:
            return url
    return ""


def _time(parsed: time.struct_time | None) -> int | None:
    # feedparser gives UTC struct_times; timegm reads them as UTC (mktime would not).
    return calendar.timegm(parsed) if parsed else None
