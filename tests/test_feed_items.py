"""What a published item may look like, per channel: the models alone, without a server."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest

from ticker.errors import from_validation
from ticker.feed.items import publish_body, server_fed


def publish(channel: str, body: Any) -> dict[str, Any]:
    return publish_body(channel, json.dumps(body).encode()).data.model_dump(exclude_unset=True)


@pytest.mark.parametrize(("channel", "body", "published"), [
    ("headlines", {"data": {"title": "Flood", "section": "city", "n": [1]}},
     {"title": "Flood", "section": "city", "n": [1]}),  # other keys reach the widgets
    ("breaking", {"data": {"clear": True}}, {"clear": True}),
    ("breaking", {"data": {"title": "", "clear": True}}, {"title": "", "clear": True}),
    ("headlines", {"data": {"title": "A", "url": "/a", "image": None}},
     {"title": "A", "url": "/a", "image": None}),
])
def test_items_each_channel_accepts_are_published_as_sent(
        channel: str, body: Any, published: dict[str, Any]) -> None:
    assert publish(channel, body) == published


@pytest.mark.parametrize(("channel", "body", "field"), [
    ("headlines", {"data": {"title": " \u3000\x1c"}}, "title"),  # blank as str.strip() sees it
    ("headlines", {"data": {"clear": True}}, "title"),  # only breaking may be cleared
    ("headlines", {"data": {"title": "A" * 301}}, "data.title"),
    ("headlines", {"data": {"title": "A", "url": "ftp://x"}}, "data.url"),
    ("headlines", {"data": {"title": "A", "label": 5}}, "data.label"),
    ("headlines", {"data": {"title": "A"}, "extra": 1}, "extra"),
    ("headlines", {"data": "text"}, "data"),
    ("breaking", {"data": {"clear": "yes"}}, "data.clear"),
])
def test_items_a_channel_refuses_are_invalid_messages_naming_the_field(
        channel: str, body: Any, field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as exc:
        publish(channel, body)
    err = from_validation(exc.value, "invalid_message")
    assert (err.code, err.status) == ("invalid_message", 400)
    assert f"'{field}'" in err.message, err.message


def test_the_server_feeds_clock_and_data_channels() -> None:
    assert server_fed("clock") and server_fed("data:covid19")
    assert not server_fed("headlines") and not server_fed("clockwork")
