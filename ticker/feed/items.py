"""What a published item may look like, per channel. Pure validation, no I/O."""

from __future__ import annotations

from typing import Any

# Fed by the server itself (scheduler, sources); the API may not publish on these.
SERVER_FED_PREFIXES = ("clock", "data:")

_TEXT_LIMITS = {"title": 300, "summary": 1000, "body": 1000, "text": 300, "label": 40}


def _url_ok(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://", "/")) \
        and len(value) <= 2048


def validate_item(channel: str, body: Any) -> dict[str, Any] | str:
    """The item's ``data`` when valid, or a sentence saying what is wrong."""
    if channel == "clock" or channel.startswith("data:"):
        return f"Channel {channel!r} is fed by the server and cannot be published to."
    if not isinstance(body, dict) or set(body) - {"data"} or not isinstance(body.get("data"), dict):
        return "The body must be {\"data\": {...}} with an object as data."
    data: dict[str, Any] = body["data"]
    if channel in ("headlines", "breaking"):
        clearing = channel == "breaking" and data.get("clear") is True
        title = data.get("title")
        if not clearing and (not isinstance(title, str) or not title.strip()):
            return f"A {channel} item needs a non-empty 'title'."
        for key, limit in _TEXT_LIMITS.items():
            value = data.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                return f"'{key}' must be a string of at most {limit} characters."
        for key in ("url", "image"):
            if key in data and data[key] is not None and not _url_ok(data[key]):
                return f"'{key}' must be an http(s) URL."
    return data
