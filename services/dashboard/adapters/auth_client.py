"""``auth.v1.*`` requests over NATS; the dashboard keeps no users or sessions of its own."""

from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from shared.contracts import subjects
from shared.contracts.auth import LoginRequest, SessionReply, TokenRequest


class AuthUnavailableError(RuntimeError):
    """The auth service did not answer."""


@dataclass
class AuthClient:
    nc: NATS
    timeout: float = 5.0

    async def _ask(self, subject: str, payload: bytes) -> SessionReply:
        try:
            msg = await self.nc.request(subject, payload, timeout=self.timeout)
        except (NoRespondersError, NatsTimeoutError, TimeoutError) as exc:
            raise AuthUnavailableError("the auth service is not answering") from exc
        return SessionReply.from_json(msg.data)

    async def login(self, username: str, password: str, client_addr: str) -> SessionReply:
        req = LoginRequest.model_validate(
            {"username": username[:64], "password": password[:1024], "client_addr": client_addr[:64]}
        )
        return await self._ask(subjects.AUTH_LOGIN, req.to_json())

    async def verify(self, token: str) -> SessionReply:
        if not token or len(token) > 256:
            return SessionReply.model_validate({"ok": False, "error": "invalid session"})
        return await self._ask(subjects.AUTH_VERIFY, TokenRequest.model_validate({"token": token}).to_json())

    async def logout(self, token: str) -> SessionReply:
        if not token or len(token) > 256:
            return SessionReply.model_validate({"ok": False, "error": "invalid session"})
        return await self._ask(subjects.AUTH_LOGOUT, TokenRequest.model_validate({"token": token}).to_json())
