"""A fake auth service and a filled snapshot store for testing the web app without NATS."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from services.dashboard.adapters.store import SnapshotStore
from shared.contracts.auth import SessionReply


class FakeAuth:
    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.users = users or {"alice": "correct horse battery"}
        self.sessions: dict[str, str] = {}
        self.calls: list[str] = []

    async def login(self, username: str, password: str, client_addr: str) -> SessionReply:
        self.calls.append("login")
        if self.users.get(username) != password:
            return SessionReply(ok=False, error="invalid username or password")
        token = secrets.token_urlsafe(16)
        self.sessions[token] = username
        expires = datetime.now(UTC) + timedelta(hours=1)
        return SessionReply(ok=True, token=token, username=username, role="trader", expires_at=expires)

    async def verify(self, token: str) -> SessionReply:
        self.calls.append("verify")
        if token not in self.sessions:
            return SessionReply(ok=False, error="invalid session")
        return SessionReply(ok=True, username=self.sessions[token], role="trader")

    async def logout(self, token: str) -> SessionReply:
        self.calls.append("logout")
        return SessionReply(ok=self.sessions.pop(token, None) is not None)


def filled_store(values: dict[str, Any], put_at: datetime | None = None) -> SnapshotStore:
    store = SnapshotStore()
    for i, (key, value) in enumerate(values.items(), start=1):
        store.apply(key, json.dumps(value).encode(), i, put_at or datetime.now(UTC))
    return store
