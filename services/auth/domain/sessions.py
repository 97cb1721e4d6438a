"""Opaque session tokens: 256-bit random, only the SHA-256 is stored; absolute and idle expiry."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from shared.contracts.auth import Role


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SessionPolicy:
    absolute: timedelta = timedelta(hours=12)
    idle: timedelta = timedelta(minutes=30)


@dataclass(frozen=True)
class Session:
    token_hash: str
    username: str
    role: Role
    created_at: datetime
    expires_at: datetime
    last_seen: datetime
    revoked: bool = False

    def idle_expires_at(self, policy: SessionPolicy) -> datetime:
        return min(self.last_seen + policy.idle, self.expires_at)

    def problem(self, now: datetime, policy: SessionPolicy, user_enabled: bool) -> str | None:
        """Why the session is not valid at ``now``, or None when it is."""
        if self.revoked:
            return "revoked"
        if not user_enabled:
            return "user disabled"
        if now >= self.expires_at:
            return "expired"
        if now >= self.last_seen + policy.idle:
            return "idle"
        return None

    def touched(self, now: datetime) -> Session:
        return replace(self, last_seen=now)


def open_session(username: str, role: Role, now: datetime, policy: SessionPolicy) -> tuple[str, Session]:
    """A fresh token (given once to the client) and the session to store."""
    token = new_token()
    session = Session(token_hash(token), username, role, now, now + policy.absolute, now)
    return token, session
