"""Sizing: a signal's target direction becomes a target quantity, in whole lots, never above the limits."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from services.execution.domain.config import CostModel, RiskLimits, SizingConfig

ZERO = Decimal(0)


def floor_to_lot(quantity: Decimal, lot: Decimal) -> Decimal:
    """Largest multiple of ``lot`` not above ``quantity`` (quantity >= 0)."""
    if quantity <= 0:
        return ZERO
    return (quantity / lot).to_integral_value(rounding=ROUND_FLOOR) * lot


def base_quantity(
    sizing: SizingConfig, price: Decimal, equity: Decimal, costs: CostModel | None = None
) -> Decimal:
    """The unsigned quantity the policy asks for, before lots and limits."""
    if sizing.policy == "all_cash":
        if costs is None:
            return max(equity, ZERO) / price
        cash = max(equity - costs.flat_fee, ZERO)
        quantity = cash / (price * (1 + costs.commission_pct / 100))
        if costs.commission_cap is not None:  # past the cap, the fee is the cap: buy what the rest pays for
            quantity = max(quantity, max(cash - costs.commission_cap, ZERO) / price)
        return quantity
    if sizing.policy == "fixed_qty":
        return sizing.quantity
    if sizing.policy == "fixed_notional":
        return sizing.notional / price
    return max(equity, ZERO) * sizing.percent / 100 / price


def risk_cap(limits: RiskLimits, price: Decimal) -> Decimal | None:
    """The largest unsigned position the per-symbol and per-order limits allow at ``price``."""
    caps = [
        limits.max_position_qty,
        limits.max_order_qty,
        None if limits.max_position_notional is None else limits.max_position_notional / price,
        None if limits.max_order_notional is None else limits.max_order_notional / price,
    ]
    present = [c for c in caps if c is not None]
    return min(present) if present else None


def target_quantity(
    target: str,
    sizing: SizingConfig,
    limits: RiskLimits,
    price: Decimal,
    equity: Decimal,
    costs: CostModel | None = None,
) -> Decimal:
    """Signed target position for ``target`` (long, flat, short) at ``price``.

    A short target without ``allow_short`` means flat (exit the long).
    """
    if target == "flat" or (target == "short" and not sizing.allow_short):
        return ZERO
    quantity = base_quantity(sizing, price, equity, costs)
    cap = risk_cap(limits, price)
    if cap is not None:
        quantity = min(quantity, cap)
    quantity = floor_to_lot(quantity, sizing.lot_size)
    return quantity if target == "long" else -quantity
