"""confluence_consumer: follows the analytics insight's bias.

Rule: when flat, go long on a bullish insight whose confidence >= ``min_confidence`` (short on a bearish
one when ``allow_short``). While in a position, exit to flat when the bias flips against it or the
confidence decays below ``exit_confidence``; a flip with confidence >= ``min_confidence`` reverses
straight to the other side when ``allow_short``. Strength is the insight's confidence.
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from services.strategy.domain.base import (
    BaseStrategy,
    ShortableParams,
    SignalDecision,
    StrategyContext,
    StrategyResult,
)
from shared.contracts.analytics import ConfluenceInsight, InsightEvent
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import Target


class ConfluenceParams(ShortableParams):
    min_confidence: float = Field(default=0.6, ge=0, le=1, description="Confidence needed to enter")
    exit_confidence: float = Field(default=0.4, ge=0, le=1, description="Exit when confidence falls below")

    @model_validator(mode="after")
    def _exit_not_above_entry(self) -> Self:
        if self.exit_confidence > self.min_confidence:
            raise ValueError(
                f"exit_confidence ({self.exit_confidence}) must not exceed "
                f"min_confidence ({self.min_confidence})"
            )
        return self


_SIDE: dict[str, Target] = {"bullish": "long", "bearish": "short"}


class ConfluenceConsumer(BaseStrategy[ConfluenceParams]):
    name: ClassVar[str] = "confluence_consumer"
    params_model = ConfluenceParams
    requires_insights: ClassVar[bool] = True
    description: ClassVar[str] = "Trades the insight bias above a confidence; exits on flip or decay"

    def on_bar(self, bar: OHLCVBar, insight: InsightEvent | None, ctx: StrategyContext) -> StrategyResult:
        if insight is None:
            return None, dict(ctx.state)
        return self._decide(insight.insight, ctx), {}

    def _decide(self, ins: ConfluenceInsight, ctx: StrategyContext) -> SignalDecision | None:
        p = self.params
        wanted = self._entry(ins)
        what = f"{ins.bias} confidence {ins.confidence:.2f}"
        if ctx.target == "flat":
            return self.change_to(ctx, wanted, ins.confidence, f"enter on {what}")
        held_side = "bullish" if ctx.target == "long" else "bearish"
        if ins.bias not in (held_side, "neutral"):  # flipped: reverse when allowed and confident, else exit
            return self.change_to(ctx, wanted, ins.confidence, f"bias flipped: {what}")
        if ins.confidence < p.exit_confidence:
            return self.change_to(ctx, "flat", ins.confidence, f"confidence decayed: {what}")
        return None

    def _entry(self, ins: ConfluenceInsight) -> Target:
        side = _SIDE.get(ins.bias)
        if side is None or ins.confidence < self.params.min_confidence:
            return "flat"
        if side == "short" and not self.params.allow_short:
            return "flat"
        return side
