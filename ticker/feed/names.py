"""The channel registry: which channels a node has, what kind each is, and the name rule.

Every other place that needs a channel name's shape (the feed session, the channel API, the
OpenAPI document, the settings' source names) takes it from here, so the rule is written once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# A channel name: lower-case letters and digits, then also ``._:-``; 64 characters at most.
NAME_PATTERN = r"[a-z0-9][a-z0-9._:-]{0,63}"
# ``match`` anchors the start; ``\Z`` (not ``$``) refuses a trailing newline.
CHANNEL_RE = re.compile(NAME_PATTERN + r"\Z")

# A data ticker's channel is ``data:<source>``.
DATA_PREFIX = "data:"
# A source name is what follows the prefix: the channel rule without ``:`` (it separates
# the kind from the name), short enough that ``data:<source>`` is still a channel name.
SOURCE_NAME_PATTERN = rf"[a-z0-9][a-z0-9._-]{{0,{63 - len(DATA_PREFIX)}}}"
SOURCE_NAME_RE = re.compile(SOURCE_NAME_PATTERN + r"\Z")

# ``headlines:<language>`` and ``headlines:<category>``: the headlines of one language or one
# section. Made on first use (see :meth:`ticker.feed.channels.Hub.get`), so a widget may
# subscribe before the first article of its kind arrives.
HEADLINES = "headlines"
HEADLINES_PREFIX = "headlines:"
HEADLINES_KEY_RE = re.compile(rf"[a-z0-9][a-z0-9._-]{{0,{63 - len(HEADLINES_PREFIX)}}}\Z")

# The built-in channels and whether each is a "latest" channel (hands its current value to
# every new subscriber) rather than a stream that starts new subscribers at the head.
BUILTIN: dict[str, bool] = {"clock": True, HEADLINES: False, "breaking": True,
                            "console:alerts": False}
# Channels only a console login may subscribe to (alert status objects for the editors).
PRIVATE_PREFIX = "console:"


def is_channel_name(name: str) -> bool:
    return CHANNEL_RE.match(name) is not None


def is_private(name: str) -> bool:
    return name.startswith(PRIVATE_PREFIX)


def data_channel(source: str) -> str:
    """The channel a data source publishes to."""
    return DATA_PREFIX + source


def headlines_channel(key: str) -> str:
    """The headlines channel of one language or category (``headlines:en``)."""
    return HEADLINES_PREFIX + key


def is_on_demand(name: str) -> bool:
    """Whether a channel of this name is made when first named (the headlines family)."""
    return (name.startswith(HEADLINES_PREFIX)
            and HEADLINES_KEY_RE.match(name, len(HEADLINES_PREFIX)) is not None)


def is_latest(name: str) -> bool:
    """Whether a new subscriber gets the channel's current value (data tickers do)."""
    return BUILTIN.get(name, False) or name.startswith(DATA_PREFIX)


def feed_channels(sources: Iterable[str]) -> list[str]:
    """Every channel of a node: the built-in ones, then one per data source."""
    return [*BUILTIN, *(data_channel(s) for s in sources)]
