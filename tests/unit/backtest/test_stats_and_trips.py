"""Backtest arithmetic pinned on hand-computed cases: round trips, drawdown, returns, ratios."""

from __future__ import annotations

import math
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from bastion.backtest.stats import compute, max_drawdown_duration
from bastion.backtest.trips import round_trips
from shared.contracts.orders import TradeEvent

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def fill(
    day: int, side: str, qty: str, price: str, commission: str = "0", symbol: str = "INFY"
) -> TradeEvent:
    order_id = uuid.uuid4()
    return TradeEvent.build(
        producer="execution",
        key=str(order_id),
        occurred_at=T0 + timedelta(days=day),
        correlation_id=order_id,
        causation_id=order_id,
        trade_id=uuid.uuid4(),
        order_id=order_id,
        symbol=symbol,
        side=side,
        quantity=Decimal(qty),
        price=Decimal(price),
        commission=Decimal(commission),
        mode="paper",
        filled_at=T0 + timedelta(days=day),
    )


def test_a_long_round_trip_nets_commission_from_both_fills() -> None:
    (trip,) = round_trips([fill(0, "buy", "10", "100", "1.5"), fill(3, "sell", "10", "110", "1.5")])
    assert (trip.direction, trip.quantity, trip.entry_price, trip.exit_price) == (
        "long",
        Decimal(10),
        Decimal(100),
        Decimal(110),
    )
    assert trip.pnl == Decimal("97.0")  # 10 * (110 - 100) - 3
    assert trip.exit_time == T0 + timedelta(days=3)


def test_scaling_in_averages_the_entry_and_a_reversal_opens_a_short() -> None:
    trips = round_trips(
        [
            fill(0, "buy", "10", "100"),
            fill(1, "buy", "10", "110"),
            fill(2, "sell", "30", "120", "3"),  # closes 20 long, opens 10 short; commission split 2 : 1
        ]
    )
    long, short = trips
    assert long.entry_price == Decimal(105)
    assert long.pnl == Decimal(20 * 15) - Decimal(2)
    assert short.direction == "short"
    assert short.quantity == Decimal(10)
    assert short.pnl is None
    assert short.is_open
    assert short.commission == Decimal(1)


def test_short_trip_profits_when_price_falls() -> None:
    (trip,) = round_trips([fill(0, "sell", "5", "200"), fill(1, "buy", "5", "190")])
    assert trip.pnl == Decimal(50)


def test_symbols_are_tracked_separately() -> None:
    trips = round_trips(
        [
            fill(0, "buy", "1", "10", symbol="INFY"),
            fill(0, "buy", "1", "20", symbol="TCS"),
            fill(1, "sell", "1", "12", symbol="INFY"),
        ]
    )
    closed = {t.symbol: t.pnl for t in trips}
    assert closed == {"INFY": Decimal(2), "TCS": None}


def daily(values: list[float]) -> pd.Series:
    return pd.Series(values, index=pd.DatetimeIndex([T0 + timedelta(days=i) for i in range(len(values))]))


def test_drawdown_return_and_trade_stats_on_a_known_curve() -> None:
    equity = daily([100.0, 120.0, 90.0, 108.0, 130.0])
    trips = round_trips(
        [
            fill(0, "buy", "1", "10"),
            fill(1, "sell", "1", "14"),
            fill(2, "buy", "1", "10"),
            fill(3, "sell", "1", "8"),
        ]
    )
    stats = compute(equity, 100.0, trips, [True, True, False, False, True], [])
    assert stats["total_return_pct"] == pytest.approx(30.0)
    assert stats["max_drawdown_pct"] == pytest.approx(-25.0)  # 120 -> 90
    assert stats["max_drawdown_days"] == pytest.approx(3.0)  # day 1 peak, recovered on day 4
    assert stats["trades"] == 2
    assert stats["win_rate_pct"] == pytest.approx(50.0)
    assert stats["profit_factor"] == pytest.approx(2.0)  # +4 / -2
    assert stats["avg_trade"] == pytest.approx(1.0)
    assert stats["exposure_pct"] == pytest.approx(60.0)
    rets = pd.Series([0.2, -0.25, 0.2, 130 / 108 - 1])  # between daily closes
    assert stats["sharpe"] == pytest.approx(rets.mean() / rets.std(ddof=1) * math.sqrt(252))
    assert stats["cagr_pct"] == pytest.approx((1.3 ** (365.25 / 4) - 1) * 100)


def test_figures_that_cannot_be_computed_are_none_not_nan() -> None:
    stats = compute(daily([100.0]), 100.0, [], [False], [])
    assert stats["sharpe"] is None
    assert stats["volatility_ann_pct"] is None
    assert stats["cagr_pct"] is None
    assert stats["win_rate_pct"] is None
    assert stats["profit_factor"] is None


def test_a_flat_curve_has_no_sharpe_and_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's 0/0 RuntimeWarning would reach the user's terminal
        stats = compute(daily([100.0, 100.0, 100.0]), 100.0, [], [False, False, False], [])
    assert stats["sharpe"] is None
    assert stats["volatility_ann_pct"] == 0.0
    assert stats["total_return_pct"] == 0.0


def test_drawdown_duration_runs_to_the_end_when_never_recovered() -> None:
    assert max_drawdown_duration(daily([100.0, 110.0, 105.0, 104.0])) == timedelta(days=2)


def test_an_empty_run_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no equity points"):
        compute(pd.Series(dtype=float), 100.0, [], [], [])
