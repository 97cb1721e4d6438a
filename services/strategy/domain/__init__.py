"""Pure strategy rules: no I/O, no clock, no broker, no database.

A strategy is called with bars (one at a time, ``on_bar``, or several at once, ``on_bars``), their insights
(when it asks for insights) and a read-only ``StrategyContext``; it returns the decisions it wants and its
new state (``base``'s module docstring).
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
