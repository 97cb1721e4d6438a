"""Risk: decisions on signals, kill-switch commands, trading state, positions."""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.common import Money, Symbol, TradingState
from shared.contracts.envelope import Command, Event, UtcDatetime
from shared.contracts.subjects import risk_decision_subject


class RiskCheck(BaseModel):
    """One pre-trade check's outcome."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str = Field(max_length=64)
    passed: bool
    reason: str = Field(max_length=300)


class RiskDecision(Event):
    """The risk manager's answer to one signal: approved or rejected, with every failed check's reason."""

    SCHEMA: ClassVar[str] = "bastion.risk.decision"
    VERSION: ClassVar[str] = "1.0"

    signal_id: uuid.UUID
    symbol: Symbol
    strategy_id: str = Field(max_length=64)
    approved: bool
    state: TradingState
    checks: tuple[RiskCheck, ...]
    limits: dict[str, str] = Field(description="Limits in force, as strings")

    def subject(self) -> str:
        return risk_decision_subject(self.symbol)


class RiskCommand(Command):
    """Kill switch: halt or resume trading. Needs an admin session token; published on risk.v1.command."""

    SCHEMA: ClassVar[str] = "bastion.risk.command"
    VERSION: ClassVar[str] = "1.0"

    command_id: uuid.UUID
    action: Literal["halt", "resume", "reduce"]
    reason: str = Field(min_length=1, max_length=300)
    session_token: str = Field(min_length=1, max_length=256, repr=False)
    issued_at: UtcDatetime
    cancel_orders: bool = Field(
        True,
        description="halt: cancel every working order; reduce: cancel the working orders that would not "
        "shrink a position",
    )
    flatten: bool = False


class RiskStateChanged(Event):
    """Trading state moved (command or circuit breaker). Published on risk.v1.state."""

    SCHEMA: ClassVar[str] = "bastion.risk.state"
    VERSION: ClassVar[str] = "1.0"

    state: TradingState
    previous: TradingState
    reason: str = Field(max_length=300)
    changed_by: str = Field(max_length=64, description="username, or breaker:<name>")
    command_id: uuid.UUID | None = None


class Position(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    symbol: Symbol
    quantity: Money
    average_price: Money
    last_price: Money
    realised_pnl: Money
    unrealised_pnl: Money


class PositionSnapshot(Event):
    """Every position, cash and equity at one moment of data time."""

    SCHEMA: ClassVar[str] = "bastion.exec.positions"
    VERSION: ClassVar[str] = "1.0"

    positions: tuple[Position, ...]
    cash: Money
    equity: Money
    realised_pnl: Money
    unrealised_pnl: Money
    day_pnl: Money
