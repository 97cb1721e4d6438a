from __future__ import annotations

from decimal import Decimal

import pytest

from services.execution.domain.positions import Portfolio, PositionState
from shared.contracts.orders import TradeEvent
from tests.unit.execution.helpers import T0

D = Decimal


def trade(side: str, qty: str, price: str, fee: str = "0", n: int = 0) -> TradeEvent:
    import uuid

    return TradeEvent.build(
        producer="t",
        key=f"{side}{qty}{price}{n}",
        occurred_at=T0,
        trade_id=uuid.uuid4(),
        order_id=uuid.uuid4(),
        symbol="INFY",
        side=side,
        quantity=D(qty),
        price=D(price),
        commission=D(fee),
        mode="paper",
        filled_at=T0,
    )


def test_average_price_is_weighted_when_adding() -> None:
    pos = PositionState(symbol="INFY")
    pos.apply_fill(D(10), D(100))
    pos.apply_fill(D(10), D(110))
    assert pos.quantity == 20
    assert pos.average_price == 105


def test_reducing_realises_pnl_and_keeps_average() -> None:
    pos = PositionState(symbol="INFY")
    pos.apply_fill(D(10), D(100))
    assert pos.apply_fill(D(-4), D(110)) == 40
    assert pos.average_price == 100
    assert pos.quantity == 6


def test_flip_opens_remainder_at_fill_price() -> None:
    pos = PositionState(symbol="INFY")
    pos.apply_fill(D(10), D(100))
    realised = pos.apply_fill(D(-15), D(90))
    assert realised == -100
    assert pos.quantity == -5
    assert pos.average_price == 90


def test_short_profit_when_price_falls() -> None:
    pos = PositionState(symbol="INFY")
    pos.apply_fill(D(-10), D(100))
    assert pos.apply_fill(D(10), D(95)) == 50
    assert pos.quantity == 0
    assert pos.average_price == 0


def test_portfolio_cash_equity_and_unrealised_marked_to_last_bar() -> None:
    pf = Portfolio.starting(D(10_000))
    pf.apply_trade(trade("buy", "10", "100", fee="5"))
    assert pf.cash == D(10_000) - 1000 - 5
    pf.mark("INFY", D(120))
    assert pf.unrealised_pnl == 200
    assert pf.equity == D(10_000) - 5 + 200
    assert pf.realised_pnl == -5
    assert pf.commissions == 5


def test_day_pnl_counts_from_session_start_equity() -> None:
    pf = Portfolio.starting(D(10_000))
    pf.apply_trade(trade("buy", "10", "100"))
    pf.mark("INFY", D(100))
    assert pf.roll_session("2026-01-05")
    pf.mark("INFY", D(90))
    assert pf.day_pnl == -100
    assert not pf.roll_session("2026-01-05")
    assert pf.roll_session("2026-01-06")
    assert pf.day_pnl == 0


def test_equity_curve_is_bounded_and_tracks_peak() -> None:
    pf = Portfolio.starting(D(1000))
    for i in range(10):
        pf.record_equity(T0.replace(minute=i), 3)
    assert len(pf.equity_curve) == 3
    assert pf.peak_equity == 1000


def test_the_equity_curve_never_goes_back_in_time() -> None:
    pf = Portfolio.starting(D(1000))
    pf.record_equity(T0.replace(minute=5), 10)
    pf.apply_trade(trade("buy", "1", "10", fee="2", n=1))  # a late fill, at a bar before the last point
    pf.record_equity(T0.replace(minute=1), 10)
    assert pf.equity_curve == [(T0.replace(minute=5), D(998))]  # the equity now, at the newest time
    pf.record_equity(T0.replace(minute=6), 10)
    assert [t.minute for t, _ in pf.equity_curve] == [5, 6]


@pytest.mark.parametrize(("qty", "price"), [("1", "1"), ("7", "33.3")])
def test_round_trip_at_same_price_realises_only_commission(qty: str, price: str) -> None:
    pf = Portfolio.starting(D(1000))
    pf.apply_trade(trade("buy", qty, price, fee="1", n=1))
    pf.apply_trade(trade("sell", qty, price, fee="1", n=2))
    assert pf.realised_pnl == -2
    assert pf.equity == 998
