"""The newsroom's rows of the error table and its exceptions (the tree is in ``ticker.errors``).

The core (signatures, ingestion, feeds, approvals) raises these in its own words;
``ticker.errors.error_middleware`` answers each with its row's status and sentence.
"""

from __future__ import annotations

from ticker.errors import (
    Conflict,
    ErrorKind,
    InvalidInput,
    InvalidToken,
    NotFound,
    Unavailable,
    add_kinds,
)

add_kinds(
    ErrorKind("invalid_signature", 401,
              "X-Ticker-Signature must be t=<unix seconds>,v1=<hex HMAC-SHA256 of "
              "'<t>.<body>' with the webhook secret>."),
    ErrorKind("stale_signature", 401,
              "The signature's timestamp is more than 5 minutes from the server's clock."),
    ErrorKind("replayed_signature", 409, "This signature was already used."),
    ErrorKind("invalid_article", 400, "The article is not valid."),
    ErrorKind("unknown_article", 404, "There is no such article."),
    ErrorKind("not_pending", 409, "The article is not waiting for approval."),
    ErrorKind("alerts_unavailable", 503,
              "Push alerts are not available on this server (Web Push is off)."),
    ErrorKind("invalid_feed", 400, "The feed is not valid."),
    ErrorKind("unknown_feed", 404, "There is no such feed."),
    ErrorKind("feed_exists", 409, "A feed of that name already exists."),
)


class InvalidSignature(InvalidToken):
    code = "invalid_signature"


class StaleSignature(InvalidToken):
    code = "stale_signature"


class ReplayedSignature(Conflict):
    code = "replayed_signature"


class InvalidArticle(InvalidInput):
    code = "invalid_article"


class UnknownArticle(NotFound):
    code = "unknown_article"


class NotPending(Conflict):
    code = "not_pending"


class AlertsUnavailable(Unavailable):
    code = "alerts_unavailable"


class InvalidFeed(InvalidInput):
    code = "invalid_feed"


class UnknownFeed(NotFound):
    code = "unknown_feed"


class FeedExists(Conflict):
    code = "feed_exists"
