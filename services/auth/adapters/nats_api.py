"""Core NATS request/reply for ``auth.v1.*``; audit events go to JetStream ``audit.v1.auth``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from services.auth.handlers import AuthService, reply
from shared.contracts import subjects
from shared.contracts.auth import LoginRequest, SessionReply, TokenRequest
from shared.runtime.bus import Bus

Route = tuple[type[LoginRequest] | type[TokenRequest], Callable[[AuthService], Callable[[Any], SessionReply]]]

ROUTES: dict[str, Route] = {
    subjects.AUTH_LOGIN: (LoginRequest, lambda s: s.login),
    subjects.AUTH_VERIFY: (TokenRequest, lambda s: s.verify),
    subjects.AUTH_WHOAMI: (TokenRequest, lambda s: s.whoami),
    subjects.AUTH_LOGOUT: (TokenRequest, lambda s: s.logout),
}


class AuthApi:
    """Serves the routes; one request touches the store at a time (DuckDB connection), in a worker thread."""

    def __init__(self, bus: Bus, service: AuthService) -> None:
        self.bus = bus
        self.service = service
        self.lock = asyncio.Lock()
        self.subs: list[Subscription] = []

    async def start(self) -> None:
        for subject, route in ROUTES.items():
            self.subs.append(await self.bus.nc.subscribe(subject, cb=self._handler(route)))

    async def stop(self) -> None:
        for sub in self.subs:
            await sub.unsubscribe()

    def _handler(self, route: Route) -> Callable[[Msg], Any]:
        model, pick = route

        async def on_msg(msg: Msg) -> None:
            answer = await self._answer(model, pick, msg.data)
            if msg.reply:
                await msg.respond(answer.to_json())

        return on_msg

    async def _answer(self, model: Any, pick: Any, data: bytes) -> SessionReply:
        try:
            request = model.model_validate_json(data)
        except ValidationError:
            return reply(ok=False, error="bad request")
        async with self.lock:
            try:
                result: SessionReply = await asyncio.to_thread(pick(self.service), request)
            except Exception:  # never crash the subscription
                result = reply(ok=False, error="internal error")
            audits = self.service.drain_audits()
        for event in audits:
            await self.bus.publish(event, subjects.AUDIT_AUTH)
        return result
