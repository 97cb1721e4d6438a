"""Execution and risk configuration: one pydantic model with safe defaults (paper mode, conservative limits).

Money is ``Decimal``. Every limit can be switched off with ``null`` in the config file except the trading
state machine itself. See ``deploy/execution.yaml`` (documented there) for the file form.
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.common import ExecutionMode

_STRICT = ConfigDict(frozen=True, extra="forbid")


class RiskLimits(BaseModel):
    """Pre-trade limits and circuit breakers. ``None`` disables one limit."""

    model_config = _STRICT

    max_position_qty: Decimal | None = Field(default=Decimal(100), gt=0)
    max_position_notional: Decimal | None = Field(default=Decimal(100_000), gt=0)
    max_gross_exposure: Decimal | None = Field(default=Decimal(250_000), gt=0)
    max_order_qty: Decimal | None = Field(default=Decimal(100), gt=0)
    max_order_notional: Decimal | None = Field(default=Decimal(100_000), gt=0)
    max_orders_per_second: int | None = Field(default=5, gt=0)
    max_orders_per_minute: int | None = Field(default=60, gt=0)
    price_band_pct: Decimal | None = Field(default=Decimal(10), gt=0, description="bar-to-bar jump guard")
    max_signal_age_bars: int | None = Field(default=2, ge=0)
    max_signal_age_seconds: int | None = Field(default=None, ge=0)
    suppress_duplicates: bool = True
    max_open_positions: int | None = Field(default=5, gt=0)
    daily_loss_limit: Decimal | None = Field(default=Decimal(5_000), gt=0, description="money, > 0")
    max_drawdown_pct: Decimal | None = Field(default=Decimal(10), gt=0, le=100)
    session_start: time = Field(default=time(3, 45), description="UTC; 03:45 UTC is 09:15 IST (NSE open)")

    @classmethod
    def off(cls) -> RiskLimits:
        """Every limit and breaker switched off (a backtest that measures the strategy alone)."""
        nullable = {
            name: None for name, f in cls.model_fields.items() if type(None) in get_args(f.annotation)
        }
        return cls(**nullable, suppress_duplicates=False)

    def as_strings(self) -> dict[str, str]:
        return {k: "off" if v is None else str(v) for k, v in self.model_dump().items()}


class SizingConfig(BaseModel):
    """How a target becomes a quantity. Always floored to whole lots and capped by the risk limits."""

    model_config = _STRICT

    policy: Literal["fixed_qty", "fixed_notional", "percent_equity", "all_cash"] = Field(
        default="fixed_qty",
        description="all_cash: the most units the available cash pays for at the signal close, net of "
        "commission (the equity less what every other strategy book holds or has working orders for)",
    )
    quantity: Decimal = Field(default=Decimal(1), gt=0)
    notional: Decimal = Field(default=Decimal(10_000), gt=0)
    percent: Decimal = Field(default=Decimal(5), gt=0, le=100)
    lot_size: Decimal = Field(default=Decimal(1), gt=0)
    allow_short: bool = False


class CostModel(BaseModel):
    """Paper fills: slippage in bps against the taker; a fill's commission is ``commission_pct`` percent of
    its notional, at most ``commission_cap`` when set, plus ``flat_fee``.

    The defaults are the brokerage of an Indian discount broker's intraday equity order: 0.03% or 20 per
    executed order, whichever is lower (Zerodha, Upstox). Taxes and exchange charges are not in them; the
    ``india_equity_delivery`` preset has those.
    """

    model_config = _STRICT

    slippage_bps: Decimal = Field(default=Decimal(5), ge=0, lt=10_000, description="10,000 bps is 100%")
    commission_pct: Decimal = Field(default=Decimal("0.03"), ge=0)
    commission_cap: Decimal | None = Field(
        default=Decimal(20), ge=0, description="most a fill's percent commission comes to; null: no cap"
    )
    flat_fee: Decimal = Field(default=Decimal(0), ge=0)
    fill_at: Literal["next_open", "signal_close"] = "next_open"
    price_tick: Decimal = Field(default=Decimal("0.01"), gt=0)

    @classmethod
    def india_equity_delivery(cls) -> CostModel:
        """An approximation of NSE cash delivery charges (not tax advice; check your broker's sheet).

        STT 0.1% + exchange transaction 0.00297% + SEBI 0.0001% + stamp duty 0.015% (buy side, charged
        here on both sides to stay conservative) + 18% GST on exchange and SEBI charges ~= 0.119% of
        notional; brokerage 0 for delivery at discount brokers; flat 15.93 per order for the depository
        (DP) charge, which is really per scrip per sell day. Tick 0.05 as on NSE.
        """
        return cls(
            slippage_bps=Decimal(5),
            commission_pct=Decimal("0.119"),
            commission_cap=None,
            flat_fee=Decimal("15.93"),
            price_tick=Decimal("0.05"),
        )


class ExecutionConfig(BaseModel):
    """Everything the execution service is configured with."""

    model_config = _STRICT

    mode: ExecutionMode = "paper"
    live_opt_in: bool = Field(default=False, description="live also needs this and a broker adapter")
    initial_cash: Decimal = Field(default=Decimal(1_000_000), gt=0)
    limits: RiskLimits = RiskLimits()
    sizing: SizingConfig = SizingConfig()
    costs: CostModel = CostModel()
    cost_preset: Literal["custom", "india_equity_delivery"] = "custom"
    recent_limit: int = Field(default=200, gt=0, le=5000, description="rows in the *.recent snapshots")
    bars_kept: int = Field(
        default=64,
        ge=2,
        le=100_000,
        description="bars per symbol kept in memory to price and fill a signal that arrives after newer "
        "bars; the service decides an older signal on its bar history (execution.duckdb, the last 10,000 "
        "bars per symbol) as if every bar had been kept (the core alone rejects it: price unknown)",
    )
    equity_points_kept: int = Field(
        default=500,
        ge=0,
        le=100_000,
        description="points of the portfolio's equity curve kept in the state (the dashboard's equity "
        "chart); 0 keeps none (bastion backtest records its own curve)",
    )

    def effective_costs(self) -> CostModel:
        if self.cost_preset == "india_equity_delivery":
            return CostModel.india_equity_delivery()
        return self.costs
