"""Turning a strategy's decision into the ``SignalEvent`` the worker publishes (pure, deterministic)."""

from __future__ import annotations

from typing import Any

from services.strategy.domain.base import BaseStrategy, SignalDecision
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import SignalEvent

PRODUCER = "strategy"


def signal_key(bar: OHLCVBar, strategy_id: str) -> str:
    """The cause key of a signal: one bar and one strategy instance give one event id."""
    return f"{bar.event_id}|{strategy_id}"


def build_signal(
    strategy: BaseStrategy[Any], bar: OHLCVBar, insight: InsightEvent | None, decision: SignalDecision
) -> SignalEvent:
    """The signal for ``decision``; the same inputs always give byte-identical JSON."""
    return SignalEvent.build(
        producer=PRODUCER,
        key=signal_key(bar, strategy.instance_id),
        occurred_at=bar.timestamp,
        correlation_id=bar.correlation_id,
        causation_id=insight.event_id if insight is not None else bar.event_id,
        symbol=bar.symbol,
        interval=bar.interval,
        strategy=strategy.name,
        strategy_id=strategy.instance_id,
        target=decision.target,
        strength=decision.strength,
        reason=decision.reason[:500],
        bar_timestamp=bar.timestamp,
        bar_event_id=bar.event_id,
        insight_event_id=insight.event_id if insight is not None else None,
    )
