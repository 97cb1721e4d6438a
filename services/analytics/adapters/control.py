"""Control requests to the running analytics service over core NATS (request/reply, no stream):
``RecomputeInsights`` on ``ctl.v1.analytics.recompute``, answered with ``InsightsRecomputed``.

``bastion analytics update`` sends it when the service holds ``analytics.duckdb`` (DuckDB has one writer).
Symbols are recomputed one at a time, yielding to the event loop in between, so live bars keep flowing
during a long recompute. Every request gets a reply, a refusal included; nothing here can stop the service.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from services.analytics.handlers import AnalyticsService
from services.analytics.recompute import UnknownSymbolError, symbols_to_update
from shared.contracts.analytics import InsightsRecomputed, RecomputeInsights
from shared.contracts.subjects import ANALYTICS_RECOMPUTE
from shared.runtime.bus import Bus
from shared.validation import readable

log = structlog.get_logger()


def _reply(**fields: Any) -> InsightsRecomputed:
    return InsightsRecomputed.model_validate(fields)


class ControlServer:
    def __init__(self, bus: Bus, service: AnalyticsService) -> None:
        self.bus = bus
        self.service = service
        self.sub: Subscription | None = None

    async def start(self) -> None:
        self.sub = await self.bus.nc.subscribe(ANALYTICS_RECOMPUTE, queue="analytics", cb=self._on_request)

    async def stop(self) -> None:
        if self.sub is not None:
            await self.sub.unsubscribe()
            self.sub = None

    async def _on_request(self, msg: Msg) -> None:
        reply = await self.handle(msg.data)
        if msg.reply:
            await msg.respond(reply.to_json())

    async def handle(self, data: bytes) -> InsightsRecomputed:
        try:
            request = RecomputeInsights.model_validate_json(data)
        except ValidationError as exc:
            return _reply(ok=False, error=f"bad request: {readable(exc, whole='request')}"[:500])
        try:
            symbols = symbols_to_update(self.service.store, request.symbol)
        except UnknownSymbolError as exc:
            return _reply(ok=False, unknown_symbol=True, known=exc.known, error=str(exc)[:500])
        done: list[str] = []
        count = new = 0
        log.info("analytics.recompute_started", symbols=len(symbols), publish=request.publish)
        try:
            for symbol in symbols:
                insights = self.service.recompute_symbol(symbol)
                if request.publish and insights:
                    new += await self.bus.publish_many([(i.subject(), i) for i in insights])
                count += len(insights)
                done.append(symbol)
                await asyncio.sleep(0)  # let live bars through between symbols
        except Exception as exc:  # reported to the caller (exit 1 there); the service goes on
            log.warning("analytics.recompute_failed", symbol=symbol, error=repr(exc))
            return _reply(
                ok=False,
                error=f"{symbol}: {exc!r}"[:500],
                symbols=tuple(done),
                insights=count,
                published_new=new,
            )
        log.info("analytics.recompute_done", symbols=len(done), insights=count, new=new)
        return _reply(ok=True, symbols=tuple(done), insights=count, published_new=new)
