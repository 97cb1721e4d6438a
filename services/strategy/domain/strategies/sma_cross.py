"""sma_cross: the reference strategy.

Rule: keep the last ``slow`` closes. When the fast SMA crosses above the slow SMA (it was at or below it on
the previous bar and is above it now) the target becomes long; when it crosses below, the target becomes
flat (short when ``allow_short``). A signal is emitted only when the target changes. Price only: no
insight needed. Written over batches of bars (``on_bars``): a backtest runs it once over the whole history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Self

import numpy as np
from pydantic import Field, model_validator

from services.strategy.domain.base import (
    BarBatch,
    BaseStrategy,
    BatchResult,
    ShortableParams,
    SignalDecision,
    StrategyContext,
    StrategyState,
    bearish_target,
    window_sums,
)
from shared.contracts.analytics import InsightEvent
from shared.contracts.signals import Target


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

    def on_bars(
        self, bars: BarBatch, insights: Sequence[InsightEvent] | None, ctx: StrategyContext
    ) -> BatchResult:
        """The rule over a batch of closes at once: both SMAs of every bar (``window_sums``, the same float
        for a bar whatever the batch), the bars where fast-above-slow flips, and a decision at each flip
        that changes the target. State: the last ``slow`` closes and whether fast was above slow."""
        p = self.params
        kept = [float(c) for c in ctx.state.get("closes", ())]
        closes = np.concatenate([np.asarray(kept, np.float64), bars.close])
        state: StrategyState = {"closes": closes[-p.slow :].tolist(), "above": ctx.state.get("above")}
        first = max(len(kept), p.slow - 1)  # the first close (in ``closes``) with a full slow window
        if first >= len(closes):
            return [], {**state, "above": None}
        fast = window_sums(closes, p.fast, first) / p.fast
        slow = window_sums(closes, p.slow, first) / p.slow
        above = fast > slow
        state["above"] = bool(above[-1])
        previous = ctx.state.get("above")  # None until a whole slow window was seen
        flips = (np.flatnonzero(above[1:] != above[:-1]) + 1).tolist()
        if previous is not None and bool(above[0]) != previous:
            flips.insert(0, 0)
        decisions: list[tuple[int, SignalDecision]] = []
        target = ctx.target
        for k in flips:
            f, s = float(fast[k]), float(slow[k])
            wanted: Target
            if above[k]:
                wanted = "long"
                reason = f"fast SMA{p.fast} {f:.4f} crossed above slow SMA{p.slow} {s:.4f}"
            else:
                wanted = bearish_target(p.allow_short)
                reason = f"fast SMA{p.fast} {f:.4f} crossed below slow SMA{p.slow} {s:.4f}"
            view = StrategyContext(ctx.symbol, ctx.strategy_id, target)
            decision = self.change_to(view, wanted, min(abs(f - s) / s * 10, 1.0), reason)
            if decision is not None:
                decisions.append((first - len(kept) + k, decision))
                target = decision.target
        return decisions, state
