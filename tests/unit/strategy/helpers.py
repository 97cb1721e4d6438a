"""Crafted bars and insights for strategy tests, and a driver that feeds them like a worker would."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from services.strategy.domain import BaseStrategy, SignalDecision, StrategyContext
from shared.contracts.analytics import Bias, ConfluenceInsight, InsightEvent, Regime
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import Target

T0 = datetime(2026, 1, 5, 9, 15, tzinfo=UTC)


def bar(
    i: int, close: float, symbol: str = "INFY", high: float | None = None, low: float | None = None
) -> OHLCVBar:
    ts = T0 + timedelta(minutes=i)
    hi = high if high is not None else close * 1.001
    lo = low if low is not None else close * 0.999
    return OHLCVBar.build(
        producer="test",
        key=OHLCVBar.key_for(symbol, "1m", ts.isoformat()),
        occurred_at=ts,
        symbol=symbol,
        interval="1m",
        timestamp=ts,
        open=close,
        high=max(hi, close),
        low=min(lo, close),
        close=close,
        volume=100.0,
        source="synthetic",
    )


def bars(closes: Sequence[float], symbol: str = "INFY") -> list[OHLCVBar]:
    return [bar(i, c, symbol) for i, c in enumerate(closes)]


def insight(
    b: OHLCVBar,
    bias: Bias = "neutral",
    confidence: float = 0.5,
    regime: Regime = "ranging",
    rsi: float | None = 50.0,
) -> InsightEvent:
    score = {"bullish": 0.5, "bearish": -0.5, "neutral": 0.0}[bias]
    return InsightEvent.build(
        producer="test",
        key=str(b.event_id),
        occurred_at=b.timestamp,
        correlation_id=b.correlation_id,
        causation_id=b.event_id,
        bar_event_id=b.event_id,
        insight=ConfluenceInsight(
            symbol=b.symbol,
            interval=b.interval,
            as_of=b.timestamp,
            bias=bias,
            confidence=confidence,
            score=score,
            regime=regime,
            components=(),
        ),
        indicators={"rsi_14": rsi},
    )


def run(
    strategy: BaseStrategy[Any],
    feed: Sequence[tuple[OHLCVBar, InsightEvent | None]],
    roundtrip_state: bool = True,
) -> list[tuple[int, SignalDecision]]:
    """Feed bars in order, tracking target and state as the worker does; (bar index, decision) per signal."""
    target: Target = "flat"
    state: dict[str, Any] = {}
    out: list[tuple[int, SignalDecision]] = []
    for i, (b, ins) in enumerate(feed):
        ctx = StrategyContext(symbol=b.symbol, strategy_id=strategy.instance_id, target=target, state=state)
        decision, state = strategy.on_bar(b, ins, ctx)
        if roundtrip_state:
            state = json.loads(json.dumps(state))
        if decision is not None:
            out.append((i, decision))
            target = decision.target
    return out


def targets(signals: list[tuple[int, SignalDecision]]) -> list[tuple[int, Target]]:
    return [(i, d.target) for i, d in signals]
