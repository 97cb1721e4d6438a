"""Strategy signals: intent only.

GUARANTEE: a signal says what a strategy wants (a target direction and how strongly); it carries no
quantity and no price. Sizing belongs to execution. A contract test enforces this.
"""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import Field

from shared.contracts.common import Interval, Symbol
from shared.contracts.envelope import Event, UtcDatetime
from shared.contracts.subjects import signal_subject

Target = Literal["long", "flat", "short"]


class SignalEvent(Event):
    """Published on ``strategy.v1.signal.<SYM>``; causation_id is the insight's (or bar's) event id."""

    SCHEMA: ClassVar[str] = "bastion.strategy.signal"
    VERSION: ClassVar[str] = "1.0"

    symbol: Symbol
    interval: Interval
    strategy: str = Field(min_length=1, max_length=64, description="Strategy name in the registry")
    strategy_id: str = Field(min_length=1, max_length=64, description="Strategy instance id")
    target: Target
    strength: float = Field(ge=0, le=1)
    reason: str = Field(max_length=500)
    bar_timestamp: UtcDatetime
    bar_event_id: uuid.UUID
    insight_event_id: uuid.UUID | None = None

    def subject(self) -> str:
        return signal_subject(self.symbol)
