"""regime_adaptive: switches behaviour with the insight's market regime.

Rule, per bar, from the insight of the bar:
- ``trending_up``: long; ``trending_down``: short when ``allow_short``, else flat (trend following);
- ``volatile``: flat;
- ``ranging``: RSI mean reversion on ``insight.indicators["rsi_14"]``: long when RSI < ``oversold``, short
  (flat unless ``allow_short``) when RSI > ``overbought``; a long exits to flat once RSI >= ``exit_level``,
  a short once RSI <= ``exit_level``; otherwise (or when RSI is still warming up) hold.
Signals only on change of target; strength is the insight's confidence.
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from services.strategy.domain.base import (
    BaseStrategy,
    ShortableParams,
    StrategyContext,
    StrategyResult,
    bearish_target,
)
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import Target


class RegimeParams(ShortableParams):
    oversold: float = Field(default=30, gt=0, lt=100, description="RSI below this: buy in a range")
    overbought: float = Field(default=70, gt=0, lt=100, description="RSI above this: sell in a range")
    exit_level: float = Field(default=50, gt=0, lt=100, description="RSI where a range trade exits")
    rsi_key: str = Field(default="rsi_14", min_length=1, description="Insight indicator holding the RSI")

    @model_validator(mode="after")
    def _ordered_levels(self) -> Self:
        if not self.oversold < self.exit_level < self.overbought:
            raise ValueError(
                f"need oversold ({self.oversold}) < exit_level ({self.exit_level}) "
                f"< overbought ({self.overbought})"
            )
        return self


class RegimeAdaptive(BaseStrategy[RegimeParams]):
    name: ClassVar[str] = "regime_adaptive"
    params_model = RegimeParams
    requires_insights: ClassVar[bool] = True
    description: ClassVar[str] = (
        "Trend following when trending, RSI mean reversion when ranging, flat if volatile"
    )

    def on_bar(self, bar: OHLCVBar, insight: InsightEvent | None, ctx: StrategyContext) -> StrategyResult:
        if insight is None:
            return None, {}
        ins = insight.insight
        target, why = self._target(insight, ctx)
        reason = f"{ins.regime}: {why}"
        return self.change_to(ctx, target, ins.confidence, reason), {}

    def _target(self, insight: InsightEvent, ctx: StrategyContext) -> tuple[Target, str]:
        regime = insight.insight.regime
        if regime == "trending_up":
            return "long", "follow the trend"
        if regime == "trending_down":
            return bearish_target(self.params.allow_short), "follow the trend"
        if regime == "volatile":
            return "flat", "stand aside"
        return self._range(insight.indicators.get(self.params.rsi_key), ctx)

    def _range(self, rsi: float | None, ctx: StrategyContext) -> tuple[Target, str]:
        p = self.params
        if rsi is None:
            return ctx.target, "RSI warming up"
        if rsi < p.oversold:
            return "long", f"RSI {rsi:.1f} < {p.oversold:g}"
        if rsi > p.overbought:
            return bearish_target(p.allow_short), f"RSI {rsi:.1f} > {p.overbought:g}"
        if ctx.target == "long" and rsi >= p.exit_level:
            return "flat", f"RSI {rsi:.1f} back to {p.exit_level:g}"
        if ctx.target == "short" and rsi <= p.exit_level:
            return "flat", f"RSI {rsi:.1f} back to {p.exit_level:g}"
        return ctx.target, "hold"
