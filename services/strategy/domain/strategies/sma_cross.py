"""sma_cross: the reference strategy.

Rule: keep the last ``slow`` closes. When the fast SMA crosses above the slow SMA (it was at or below it on
the previous bar and is above it now) the target becomes long; when it crosses below, the target becomes
flat (short when ``allow_short``). A signal is emitted only when the target changes. Price only: no
insight needed.
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
    mean,
    push,
)
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar


class SmaCrossParams(ShortableParams):
    fast: int = Field(default=10, ge=1, le=1000, description="Fast SMA length in bars")
    slow: int = Field(default=30, ge=2, le=5000, description="Slow SMA length in bars")

    @model_validator(mode="after")
    def _fast_below_slow(self) -> Self:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be smaller than slow ({self.slow})")
        return self


class SmaCross(BaseStrategy[SmaCrossParams]):
    name: ClassVar[str] = "sma_cross"
    params_model = SmaCrossParams
    description: ClassVar[str] = "Long when the fast SMA crosses above the slow SMA, flat/short below"

    def on_bar(self, bar: OHLCVBar, insight: InsightEvent | None, ctx: StrategyContext) -> StrategyResult:
        p = self.params
        closes = push(ctx.state.get("closes", ()), bar.close, p.slow)
        prev_above = ctx.state.get("above")
        if len(closes) < p.slow:
            return None, {"closes": closes, "above": None}
        fast, slow = mean(closes[-p.fast :]), mean(closes)
        above = fast > slow
        state = {"closes": closes, "above": above}
        if prev_above is None or above == prev_above:
            return None, state
        strength = min(abs(fast - slow) / slow * 10, 1.0)
        if above:
            reason = f"fast SMA{p.fast} {fast:.4f} crossed above slow SMA{p.slow} {slow:.4f}"
            return self.change_to(ctx, "long", strength, reason), state
        reason = f"fast SMA{p.fast} {fast:.4f} crossed below slow SMA{p.slow} {slow:.4f}"
        return self.change_to(ctx, bearish_target(p.allow_short), strength, reason), state
