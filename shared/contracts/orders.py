"""Orders and fills, produced only by the execution service."""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import Field

from shared.contracts.common import ExecutionMode, Money, Quantity, Side, Symbol
from shared.contracts.envelope import Event, UtcDatetime
from shared.contracts.subjects import order_subject, trade_subject

OrderType = Literal["market", "limit"]
OrderStatus = Literal["new", "accepted", "partially_filled", "filled", "cancelled", "rejected"]


class OrderEvent(Event):
    """An order's state. ``order_id`` is derived from the signal id, so a signal yields one order. The closing
    orders of a kill switch's flatten (``bastion risk halt --flatten``) have no signal: their ``signal_id``,
    ``decision_id`` and ``correlation_id`` are the ``RiskCommand``'s ``command_id``."""

    SCHEMA: ClassVar[str] = "bastion.exec.order"
    VERSION: ClassVar[str] = "1.0"

    order_id: uuid.UUID
    signal_id: uuid.UUID
    decision_id: uuid.UUID
    symbol: Symbol
    side: Side
    quantity: Quantity
    order_type: OrderType = "market"
    limit_price: Money | None = None
    status: OrderStatus
    mode: ExecutionMode
    strategy_id: str = Field(max_length=64)
    reason: str = Field(default="", max_length=500)

    def subject(self) -> str:
        return order_subject(self.symbol)


class TradeEvent(Event):
    """A fill. Positions change only from these."""

    SCHEMA: ClassVar[str] = "bastion.exec.trade"
    VERSION: ClassVar[str] = "1.0"

    trade_id: uuid.UUID
    order_id: uuid.UUID
    symbol: Symbol
    side: Side
    quantity: Quantity
    price: Money = Field(gt=0)
    commission: Money = Field(ge=0)
    mode: ExecutionMode
    filled_at: UtcDatetime
    bar_event_id: uuid.UUID | None = Field(default=None, description="The bar whose price filled it (paper)")

    def subject(self) -> str:
        return trade_subject(self.symbol)
