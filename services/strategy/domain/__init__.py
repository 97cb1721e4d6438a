"""Pure strategy rules: no I/O, no clock, no broker, no database.

A strategy is called once per bar with the bar, the insight of that bar (when it asks for insights) and a
read-only ``StrategyContext``; it returns the decision it wants (or none) and its new state.
"""

from services.strategy.domain.base import (
    BaseStrategy,
    SignalDecision,
    StrategyContext,
    StrategyParams,
    StrategyResult,
    StrategyState,
)

__all__ = [
    "BaseStrategy",
    "SignalDecision",
    "StrategyContext",
    "StrategyParams",
    "StrategyResult",
    "StrategyState",
]
