"""An article as the newsroom keeps it (the model; storage and routing live beside it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Article:
    """One article, identified by ``guid`` (the CMS's id, or a feed entry's id or link).

    Times are Unix seconds (None when the source gave none). ``language`` is a BCP 47 tag,
    lower-case (``en``, ``en-gb``); ``category`` a channel-safe word (``sport``), both
    possibly empty.
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
