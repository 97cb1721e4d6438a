"""Verifies a kill-switch command's session token with the auth service over NATS (``auth.v1.verify``)."""

from __future__ import annotations

from dataclasses import dataclass

import nats.errors
from nats.aio.client import Client as NATS
from pydantic import ValidationError

from shared.contracts import subjects
from shared.contracts.auth import SessionReply, TokenRequest


class AuthUnavailable(Exception):
    """The auth service did not answer: a transient error, the command is retried."""


@dataclass(frozen=True)
class Verdict:
    username: str | None
    outcome: str  # "accepted", "denied: <why>"


class NatsVerifier:
    def __init__(self, nc: NATS, timeout: float = 3.0) -> None:
        self.nc = nc
        self.timeout = timeout

    async def verify_admin(self, token: str) -> Verdict:
        request = TokenRequest.model_validate({"token": token})
        try:
            msg = await self.nc.request(subjects.AUTH_VERIFY, request.to_json(), timeout=self.timeout)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
            raise AuthUnavailable(f"auth service did not answer: {type(exc).__name__}") from None
        try:
            reply = SessionReply.from_json(msg.data)
        except ValidationError:
            return Verdict(None, "denied: unreadable auth reply")
        if not reply.ok:
            return Verdict(None, f"denied: {reply.error or 'invalid session'}")
        if reply.role != "admin":
            return Verdict(None, f"denied: {reply.username} is {reply.role}, not admin")
        return Verdict(reply.username, "accepted")
