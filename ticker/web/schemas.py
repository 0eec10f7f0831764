"""The platform's HTTP shapes as pydantic models: parameters, answers, errors, feed frames.

Request bodies live beside their core (``ticker.feed.items``); these are the rest of what
``/openapi.json`` is generated from. The tests check every answer the server gives against
them (tests/test_openapi.py), so the document cannot describe one shape while a handler
sends another.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ticker.feed.names import NAME_PATTERN
from ticker.feed.session import MAX_CHANNELS_PER_SESSION

# Anchored for JSON Schema (ECMA) and pydantic (Rust regex): there "$" is the very end.
CHANNEL_PATTERN = f"^{NAME_PATTERN}$"
ChannelName = Annotated[str, Field(pattern=CHANNEL_PATTERN,
                                   description="A channel name, e.g. 'headlines'.")]


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable: see the operation's statuses.")
    message: str = Field(description="A human sentence naming the field at fault.")


class Error(BaseModel):
    """Every refusal: ``{"error": {"code": ..., "message": ...}}``."""

    error: ErrorDetail


class ChannelPath(BaseModel):
    channel: ChannelName


class HistoryQuery(BaseModel):
    limit: int = Field(20, ge=0, le=200, description="How many recent messages (newest last).")


class Published(BaseModel):
    channel: str
    epoch: str = Field(description="Changes when numbering restarts.")
    offset: int = Field(ge=1, description="Rises by one per message within an epoch.")


class MessageFrame(BaseModel):
    """A channel's message, on ``/ws``, ``/sse`` and in a channel's history."""

    type: Literal["message"] = "message"
    channel: str
    epoch: str
    offset: int = Field(ge=1)
    data: dict[str, Any]


class History(BaseModel):
    channel: str
    epoch: str
    offset: int = Field(ge=0, description="The latest message's offset (0: none yet).")
    messages: list[MessageFrame]


class Health(BaseModel):
    """Each part (e.g. ``push``) adds an object with its own ``status``."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "degraded"]
    database: Literal["ok", "error"]
    connections: int = Field(ge=0)
    pid: int = Field(ge=1, description="The process that answered (serve --processes N).")
    uptime_seconds: int = Field(ge=0)


_NAME = CHANNEL_PATTERN.strip("^$")
_CHANNEL_LIST = f"^{_NAME}(,{_NAME}){{0,{MAX_CHANNELS_PER_SESSION - 1}}}$"


class SseQuery(BaseModel):
    channels: str = Field(pattern=_CHANNEL_LIST, description=(
        f"Comma-separated channel names (at most {MAX_CHANNELS_PER_SESSION}), "
        "each matching " + CHANNEL_PATTERN + "."))
    lastEventId: str | None = Field(None, description=(
        "Resume as with the Last-Event-ID header (for clients that cannot send it)."))


class SseHeaders(BaseModel):
    last_event_id: str | None = Field(None, alias="Last-Event-ID", description=(
        "The last event id seen, 'epoch:offset[,epoch:offset...]': each named channel "
        "replays what it missed, or says recovered: false."))


# --- /ws frames (documented under components; ticker.feed.session parses them) ------------

class Position(BaseModel):
    epoch: str
    offset: int = Field(ge=0)


class SubscribeFrame(BaseModel):
    type: Literal["subscribe"]
    channels: list[ChannelName] = Field(max_length=MAX_CHANNELS_PER_SESSION)
    since: dict[str, Position] | None = Field(None, description="Per channel: resume after.")


class UnsubscribeFrame(BaseModel):
    type: Literal["unsubscribe"]
    channels: list[ChannelName]


class TimeFrame(BaseModel):
    type: Literal["time"]
    t0: float = Field(description="The client's clock, ms; the answer echoes it.")


class SubscribedFrame(BaseModel):
    type: Literal["subscribed"]
    channel: str
    epoch: str
    offset: int = Field(ge=0)
    recovered: bool = Field(description="false: history did not reach back; refetch.")


class TimeReplyFrame(BaseModel):
    type: Literal["time"]
    t0: float
    server: int = Field(description="The server's clock, ms.")


class ErrorFrame(BaseModel):
    type: Literal["error"]
    code: str
    message: str


WS_FRAMES: tuple[type[BaseModel], ...] = (
    SubscribeFrame, UnsubscribeFrame, TimeFrame, SubscribedFrame, MessageFrame,
    TimeReplyFrame, ErrorFrame)
