"""The paper broker: market orders fill at the next bar's open (or the signal bar's close), with slippage
against the taker and commission = percent of notional + flat fee. Prices round against the taker."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from pydantic import BaseModel

from services.execution.domain.config import CostModel
from shared.contracts.common import ExecutionMode, Side
from shared.contracts.envelope import derive_event_id
from shared.contracts.orders import TradeEvent

PRODUCER = "execution"
CENT = Decimal("0.01")


class PendingOrder(BaseModel):
    """An accepted order waiting for a bar of its symbol after ``after`` (the signal's bar time)."""

    order_id: uuid.UUID
    signal_id: uuid.UUID
    decision_id: uuid.UUID
    correlation_id: uuid.UUID
    symbol: str
    side: Side
    quantity: Decimal
    strategy_id: str
    after: datetime


def fill_price(raw: Decimal, side: Side, costs: CostModel) -> Decimal:
    """``raw`` moved by the slippage against the taker and rounded to the tick against the taker."""
    slip = raw * costs.slippage_bps / Decimal(10_000)
    price = raw + slip if side == "buy" else raw - slip
    ticks = price / costs.price_tick
    rounded = ticks.to_integral_value(rounding=ROUND_CEILING if side == "buy" else ROUND_FLOOR)
    return max(rounded * costs.price_tick, costs.price_tick)


def commission(notional: Decimal, costs: CostModel) -> Decimal:
    fee = notional * costs.commission_pct / 100
    if costs.commission_cap is not None and fee > costs.commission_cap:
        fee = costs.commission_cap
    fee += costs.flat_fee
    return fee.quantize(CENT, rounding=ROUND_HALF_UP)


def trade_id_for(order_id: uuid.UUID) -> uuid.UUID:
    """One order fills once in paper mode, so its trade id is derived from the order id."""
    return derive_event_id("bastion.exec.trade.id", PRODUCER, str(order_id))


def fill(
    order: PendingOrder,
    raw_price: Decimal,
    at: datetime,
    bar_event_id: uuid.UUID,
    costs: CostModel,
    mode: ExecutionMode,
) -> TradeEvent:
    price = fill_price(raw_price, order.side, costs)
    return TradeEvent.build_trusted(  # every field derived here from validated values
        producer=PRODUCER,
        key=str(order.order_id),
        occurred_at=at,
        correlation_id=order.correlation_id,
        causation_id=order.order_id,
        trade_id=trade_id_for(order.order_id),
        order_id=order.order_id,
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity,
        price=price,
        commission=commission(price * order.quantity, costs),
        mode=mode,
        filled_at=at,
        bar_event_id=bar_event_id,
    )
