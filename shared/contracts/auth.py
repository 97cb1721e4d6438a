"""Auth request/reply messages on ``auth.v1.*`` and the auth audit event."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.envelope import Command, Contract, Event, UtcDatetime

Role = Literal["admin", "trader", "viewer"]


class LoginRequest(Command):
    SCHEMA: ClassVar[str] = "bastion.auth.login"
    VERSION: ClassVar[str] = "1.0"

    username: str = Field(max_length=64)
    password: str = Field(max_length=1024, repr=False)
    client_addr: str = Field(default="", max_length=64)


class TokenRequest(Command):
    """verify, logout and whoami all carry just the session token."""

    SCHEMA: ClassVar[str] = "bastion.auth.token"
    VERSION: ClassVar[str] = "1.0"

    token: str = Field(max_length=256, repr=False)


class SessionReply(Contract):
    """Answer to login, verify, whoami and logout. ``ok`` false carries a generic ``error``."""

    SCHEMA: ClassVar[str] = "bastion.auth.session"
    VERSION: ClassVar[str] = "1.0"

    ok: bool
    error: str | None = None
    token: str | None = Field(default=None, repr=False, description="Only in a login reply")
    username: str | None = None
    role: Role | None = None
    expires_at: UtcDatetime | None = None
    idle_expires_at: UtcDatetime | None = None


class AuthAudit(Event):
    """Login, failure, lockout, logout and user change; published on ``audit.v1.auth``."""

    SCHEMA: ClassVar[str] = "bastion.auth.audit"
    VERSION: ClassVar[str] = "1.0"

    action: str = Field(max_length=32)
    username: str = Field(max_length=64)
    client_addr: str = Field(default="", max_length=64)
    outcome: Literal["success", "failure", "locked", "info"]
    detail: str = Field(default="", max_length=300)


UserAction = Literal["create", "list", "disable", "enable", "passwd", "set-role", "delete"]


class UserAdminRequest(Command):
    """A ``bastion users`` change while the auth service runs (it holds auth.duckdb), on
    ``ctl.v1.auth.users``, which only the operator NATS user may publish. ``token``: an admin's session;
    ``username``, ``role`` and ``password`` as the action needs them."""

    SCHEMA: ClassVar[str] = "bastion.auth.users"
    VERSION: ClassVar[str] = "1.0"

    token: str = Field(max_length=256, repr=False)
    action: UserAction
    username: str = Field(default="", max_length=64)
    role: str | None = Field(default=None, max_length=16)
    password: str | None = Field(default=None, max_length=1024, repr=False)


class UserInfo(BaseModel):
    """One user as ``bastion users list`` shows it (never its password hash)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    username: str
    role: Role
    enabled: bool


class UserAdminReply(Contract):
    """Answer to a ``UserAdminRequest``: ``ok`` with what was done (``users`` for list), or the ``error``."""

    SCHEMA: ClassVar[str] = "bastion.auth.users_reply"
    VERSION: ClassVar[str] = "1.0"

    ok: bool
    error: str | None = None
    refused: bool = Field(default=False, description="The session is not an admin's (else a bad request)")
    done: str = Field(default="", max_length=300, description="What was done, as the CLI prints it")
    users: tuple[UserInfo, ...] = ()
