"""Analytics: the ConfluenceInsight and the event that carries it.

GUARANTEE: an insight describes the market; it carries no execution field (no quantity, price target,
order type or side). Strategies decide, execution sizes. A contract test enforces this.
"""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.common import Interval, Symbol
from shared.contracts.envelope import Command, Contract, Event, UtcDatetime
from shared.contracts.subjects import insight_subject

Bias = Literal["bullish", "bearish", "neutral"]
Regime = Literal["trending_up", "trending_down", "ranging", "volatile"]


class InsightComponent(BaseModel):
    """One indicator's contribution to an insight."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    indicator: str = Field(min_length=1, max_length=32)
    value: float | None
    vote: float = Field(ge=-1, le=1, description="-1 bearish .. +1 bullish")
    weight: float = Field(ge=0)
    reason: str = Field(max_length=200)


class ConfluenceInsight(BaseModel):
    """What the indicators of one bar say together. Frozen; no execution fields."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    symbol: Symbol
    interval: Interval
    as_of: UtcDatetime = Field(description="The bar's time")
    bias: Bias
    confidence: float = Field(ge=0, le=1)
    score: float = Field(ge=-1, le=1, description="Weighted vote, -1 bearish .. +1 bullish")
    regime: Regime
    components: tuple[InsightComponent, ...]


class InsightEvent(Event):
    """Published on ``analytics.v1.insight.<SYM>``; causation_id is the bar's event id."""

    SCHEMA: ClassVar[str] = "bastion.analytics.insight"
    VERSION: ClassVar[str] = "1.0"

    bar_event_id: uuid.UUID
    insight: ConfluenceInsight
    indicators: dict[str, float | None] = Field(
        description="Indicator values of the bar (sma_20, ema_20, rsi_14, macd, ...); null during warm-up"
    )

    def subject(self) -> str:
        return insight_subject(self.insight.symbol)


class RecomputeInsights(Command):
    """Request on ``ctl.v1.analytics.recompute`` (``bastion analytics update`` while the service runs): the
    running analytics service recomputes indicators and insights of all (or one) stored symbols with its own
    rules, upserts them and, with ``publish``, republishes the insights (dedupe drops the known ones)."""

    SCHEMA: ClassVar[str] = "bastion.analytics.recompute"
    VERSION: ClassVar[str] = "1.0"

    symbol: Symbol | None = None
    publish: bool = True


class InsightsRecomputed(Contract):
    """Reply to ``RecomputeInsights``. ``ok`` false carries ``error``; ``unknown_symbol`` says the symbol
    has no stored bars (``known`` lists those that have)."""

    SCHEMA: ClassVar[str] = "bastion.analytics.recomputed"
    VERSION: ClassVar[str] = "1.0"

    ok: bool
    error: str | None = Field(default=None, max_length=500)
    unknown_symbol: bool = False
    known: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    insights: int = Field(default=0, ge=0)
    published_new: int = Field(default=0, ge=0, description="Insights JetStream had not seen before")
