"""Core NATS request/reply for ``auth.v1.*``; audit events go to JetStream ``audit.v1.auth``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from services.auth.handlers import AuthService
from shared.contracts import subjects
from shared.contracts.auth import LoginRequest, SessionReply, TokenRequest, UserAdminReply, UserAdminRequest
from shared.contracts.envelope import Command, Contract
from shared.runtime.bus import Bus

#: a request's model, the service's method for it, and the reply's model (its ``ok=False`` answers)
Route = tuple[type[Command], Callable[[AuthService], Callable[[Any], Contract]], type[Contract]]

ROUTES: dict[str, Route] = {
    subjects.AUTH_LOGIN: (LoginRequest, lambda s: s.login, SessionReply),
    subjects.AUTH_VERIFY: (TokenRequest, lambda s: s.verify, SessionReply),
    subjects.AUTH_WHOAMI: (TokenRequest, lambda s: s.whoami, SessionReply),
    subjects.AUTH_LOGOUT: (TokenRequest, lambda s: s.logout, SessionReply),
    # only the operator NATS user may publish it (deploy/nats/nats.conf), and the token must be an admin's
    subjects.AUTH_USERS: (UserAdminRequest, lambda s: s.admin, UserAdminReply),
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
        async def on_msg(msg: Msg) -> None:
            answer = await self._answer(route, msg.data)
            if msg.reply:
                await msg.respond(answer.to_json())

        return on_msg

    async def _answer(self, route: Route, data: bytes) -> Contract:
        model, pick, answer = route
        try:
            request = model.model_validate_json(data)
        except ValidationError:
            return answer.model_validate({"ok": False, "error": "bad request"})
        async with self.lock:
            try:
                result: Contract = await asyncio.to_thread(pick(self.service), request)
            except Exception:  # never crash the subscription
                result = answer.model_validate({"ok": False, "error": "internal error"})
            audits = self.service.drain_audits()
        for event in audits:
            await self.bus.publish(event, subjects.AUDIT_AUTH)
        return result
