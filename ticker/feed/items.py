"""What a published item may look like, per channel: pydantic models, no I/O.

The models validate ``POST /api/channels/{channel}/messages`` and are what its OpenAPI
schema is generated from. What depends on the channel (``clock`` and ``data:*`` are fed by
the server; ``headlines`` and ``breaking`` need a title; only ``breaking`` may be cleared)
is checked against the channel passed in the validation context.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator
from pydantic.config import JsonDict

from ticker.errors import custom_error

# Fed by the server itself (scheduler, sources); the API may not publish on these.
SERVER_FED_PREFIXES = ("clock", "data:")
TITLED_CHANNELS = ("headlines", "breaking")

# Exactly the characters str.isspace() knows, spelled out so that JSON Schema (ECMA-262),
# pydantic's Rust regex and Python's re read the same set: "has one character that is not
# blank" means the same thing to the server, the OpenAPI document and a client's validator.
BLANK = (r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000")
NON_BLANK = f"[^{BLANK}]"
LINK = r"^(https?://|/)"

_NAME_THE_TITLE: JsonDict = {"anyOf": [
    {"required": ["title"], "properties": {"title": {"type": "string", "pattern": NON_BLANK}}},
    {"required": ["clear"], "properties": {"clear": {"const": True}}},
]}


def server_fed(channel: str) -> bool:
    return channel == "clock" or channel.startswith("data:")


def _text(limit: int, description: str) -> Any:
    return Field(None, max_length=limit, description=description)


class Item(BaseModel):
    """A ticker item. Other keys are kept and passed on to the widgets as sent."""

    model_config = ConfigDict(extra="allow", strict=True, json_schema_extra=_NAME_THE_TITLE)

    title: Annotated[str | None, _text(300, "Required, not blank, on headlines and "
                                             "breaking (unless clearing breaking).")]
    summary: Annotated[str | None, _text(1000, "A line under the title.")]
    body: Annotated[str | None, _text(1000, "Longer text.")]
    text: Annotated[str | None, _text(300, "A short text item.")]
    label: Annotated[str | None, _text(40, "A tag such as 'LIVE'.")]
    url: Annotated[str | None, Field(None, max_length=2048, pattern=LINK,
                                     description="http(s) URL or a path.")]
    image: Annotated[str | None, Field(None, max_length=2048, pattern=LINK,
                                       description="http(s) URL or a path.")]
    clear: bool | None = Field(None, description="On breaking: true hides the banner "
                                                 "(then no title is needed).")

    @model_validator(mode="after")
    def _titled(self, info: ValidationInfo) -> Item:
        channel = (info.context or {}).get("channel", "headlines")
        if channel not in TITLED_CHANNELS or (channel == "breaking" and self.clear is True):
            return self
        if self.title is None or not self.title.strip():
            raise custom_error("invalid_message",
                               f"A {channel} item needs a non-empty 'title'.")
        return self


class PublishBody(BaseModel):
    """``{"data": {...}}``: nothing else."""

    model_config = ConfigDict(extra="forbid", strict=True)

    data: Item


def publish_body(channel: str, raw: bytes) -> PublishBody:
    """Validate a publish request's body for ``channel`` (raises pydantic's ValidationError)."""
    return PublishBody.model_validate_json(raw, context={"channel": channel})

