"""History arriving after today's bars (a `bastion feed replay` of an older file for a traded symbol, or of a
new symbol's past): it is kept to price late signals, but it marks nothing, rolls no session back and trips
no breaker."""

from __future__ import annotations

from decimal import Decimal

from services.execution.domain.engine import ExecutionCore
from shared.contracts.orders import TradeEvent
from shared.contracts.risk import RiskStateChanged
from tests.unit.execution.helpers import bar, core, limits, signal

D = Decimal


def holding(daily_loss: int = 500) -> ExecutionCore:
    """100 INFY bought at 100 on bar 11."""
    c = core(limits(daily_loss_limit=D(daily_loss)), qty=100)
    b = bar(10, 100.0)
    c.on_bar(b)
    c.on_signal(signal(b))
    c.on_bar(bar(11, 100.0))
    assert c.state.portfolio.quantity("INFY") == 100
    return c


def test_an_older_bar_of_a_held_symbol_is_kept_but_marks_nothing_and_trips_no_breaker() -> None:
    c = holding()
    pf = c.state.portfolio
    curve, peak = list(pf.equity_curve), pf.peak_equity
    old = bar(5, 90.0)  # -1,000 at its close, 6 minutes before the newest bar
    assert c.on_bar(old).events == []
    assert c.state.risk.state == "ACTIVE"
    assert (pf.equity, pf.positions["INFY"].last_price) == (D(100_000), D(100))
    assert (pf.equity_curve, pf.peak_equity) == (curve, peak)
    assert [b.timestamp for b in c.state.bars["INFY"]] == [
        old.timestamp,
        bar(10, 1).timestamp,
        bar(11, 1).timestamp,
    ]
    assert c.on_bar(old).events == []  # and seen twice, still nothing
    (changed,) = c.on_bar(bar(12, 94.0)).of(RiskStateChanged)  # today's prices still count: -600
    assert changed.changed_by == "breaker:daily_loss"


def test_an_earlier_days_bar_of_another_symbol_does_not_restart_todays_session() -> None:
    c = holding()
    c.on_bar(bar(12, 96.0))  # -400 today
    c.on_bar(bar(0, 500.0, "TCS", day=-3))  # TCS's history, three days back
    assert c.state.portfolio.day_pnl == -400
    (changed,) = c.on_bar(bar(13, 94.0)).of(RiskStateChanged)  # -600 since today's open
    assert "day P&L -600" in changed.reason


def test_a_late_signal_is_still_priced_from_the_older_bar_it_names() -> None:
    c = core(qty=10)
    c.on_bar(bar(11, 100.0))
    old = bar(5, 90.0)
    c.on_bar(old)
    out = c.on_signal(signal(old))  # its bar is older than the newest: filled at the next kept bar's open
    assert [t.price for t in out.of(TradeEvent)] == [D(100)]
