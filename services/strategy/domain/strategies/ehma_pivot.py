"""ehma_pivot: price-only Hull-style EMA crossover confirmed by a pivot.

The EHMA of length n is EMA(2 * EMA(close, n/2) - EMA(close, n), round(sqrt(n))): Hull's moving average
built from EMAs, fast to turn and smooth. A pivot low is a bar whose low is strictly below the lows of the
``pivot`` bars on each side of it (a pivot high likewise with highs); it is confirmed ``pivot`` bars later.

Rule, once ``period`` bars have been seen: long when the close is above a rising EHMA and the most recent
confirmed pivot is a pivot low (the dip held); flat (short when ``allow_short``) when the close is below a
falling EHMA and the most recent confirmed pivot is a pivot high (the bounce failed). Otherwise hold.
Signals only on change of target; strength is the distance of the close from the EHMA (10% or more: 1).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from pydantic import Field

from services.strategy.domain.base import (
    BaseStrategy,
    ShortableParams,
    StrategyContext,
    StrategyResult,
    StrategyState,
    bearish_target,
    push,
)
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar


class EhmaPivotParams(ShortableParams):
    period: int = Field(default=16, ge=4, le=1000, description="EHMA length in bars")
    pivot: int = Field(default=2, ge=1, le=20, description="Bars on each side of a pivot")


def _ema(prev: float | None, value: float, length: int) -> float:
    if prev is None:
        return value
    alpha = 2.0 / (length + 1)
    return prev + alpha * (value - prev)


def _pivot(highs: list[float], lows: list[float], k: int) -> str | None:
    """'low' / 'high' when the middle bar of a full 2k+1 window is a pivot, else None."""
    if len(lows) < 2 * k + 1:
        return None
    mid_low, mid_high = lows[k], highs[k]
    if all(mid_low < x for i, x in enumerate(lows) if i != k):
        return "low"
    if all(mid_high > x for i, x in enumerate(highs) if i != k):
        return "high"
    return None


class EhmaPivot(BaseStrategy[EhmaPivotParams]):
    name: ClassVar[str] = "ehma_pivot"
    params_model = EhmaPivotParams
    description: ClassVar[str] = "Close vs a Hull-style EMA, confirmed by the last pivot"

    def on_bar(self, bar: OHLCVBar, insight: InsightEvent | None, ctx: StrategyContext) -> StrategyResult:
        state = self._advance(ctx.state, bar)
        if state["count"] < self.params.period or state["prev_ehma"] is None:
            return None, state
        ehma, prev, close = state["ehma"], state["prev_ehma"], bar.close
        strength = min(abs(close - ehma) / ehma * 10, 1.0)
        if close > ehma > prev and state["last_pivot"] == "low":
            reason = f"close {close:.4f} above rising EHMA{self.params.period} {ehma:.4f}, pivot low held"
            return self.change_to(ctx, "long", strength, reason), state
        if close < ehma < prev and state["last_pivot"] == "high":
            reason = f"close {close:.4f} below falling EHMA{self.params.period} {ehma:.4f}, pivot high failed"
            return self.change_to(ctx, bearish_target(self.params.allow_short), strength, reason), state
        return None, state

    def _advance(self, old: Any, bar: OHLCVBar) -> StrategyState:
        n, k = self.params.period, self.params.pivot
        half = _ema(old.get("ema_half"), bar.close, max(n // 2, 1))
        full = _ema(old.get("ema_full"), bar.close, n)
        ehma = _ema(old.get("ehma"), 2 * half - full, max(round(math.sqrt(n)), 1))
        highs = push(old.get("highs", ()), bar.high, 2 * k + 1)
        lows = push(old.get("lows", ()), bar.low, 2 * k + 1)
        return {
            "count": int(old.get("count", 0)) + 1,
            "ema_half": half,
            "ema_full": full,
            "prev_ehma": old.get("ehma"),
            "ehma": ehma,
            "highs": highs,
            "lows": lows,
            "last_pivot": _pivot(highs, lows, k) or old.get("last_pivot"),
        }
