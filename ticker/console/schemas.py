"""The console's HTTP shapes (pydantic): login, session, users, tokens, audit, config."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ticker.console.users import NAME_PATTERN, PASSWORD_MAX, PASSWORD_MIN

Role = Literal["editor", "admin"]


class LoginBody(BaseModel):
    """JSON, or the login form's fields (``application/x-www-form-urlencoded``)."""

    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)


class SessionUserOut(BaseModel):
    name: str
    role: Role


class SessionOut(BaseModel):
    user: SessionUserOut
    csrf: str = Field(description="Send it as X-CSRF-Token on every unsafe request.")


class UserBody(BaseModel):
    name: str = Field(pattern=NAME_PATTERN, description=(
        "Lower-case letters, digits and ._- (64 at most)."))
    role: Role = "editor"
    password: str = Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)


class UserOut(BaseModel):
    id: int
    name: str
    role: Role
    createdAt: float
    disabledAt: float | None
    lastLoginAt: float | None


class UserAnswer(BaseModel):
    user: UserOut


class Users(BaseModel):
    users: list[UserOut]


class TokenBody(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"\S")
    role: Role = "editor"


class TokenOut(BaseModel):
    id: int
    name: str
    role: Role
    createdAt: float
    revokedAt: float | None


class TokenAnswer(BaseModel):
    token: TokenOut


class TokenCreated(BaseModel):
    token: TokenOut
    value: str = Field(description="The token itself: shown this once, stored hashed.")


class Tokens(BaseModel):
    tokens: list[TokenOut]


class IdPath(BaseModel):
    id: int = Field(ge=1, le=2**62)


class AuditQuery(BaseModel):
    limit: int = Field(50, ge=1, le=500)
    before: int | None = Field(None, ge=1, le=2**62, description="Older than this entry id.")


class AuditEntry(BaseModel):
    id: int
    at: float
    actor: str = Field(description="user:<name>, token:<name>, cli or system.")
    action: str
    target: str
    detail: dict[str, Any]


class Audit(BaseModel):
    entries: list[AuditEntry]


class ConsoleConfig(BaseModel):
    siteName: str
    topics: list[str] = Field(description="The push topics readers can choose ([]: push off).")
    user: SessionUserOut
