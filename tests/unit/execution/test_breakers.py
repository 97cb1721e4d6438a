"""Circuit breakers: daily loss and max drawdown halt trading on their own; only a resume re-opens."""

from __future__ import annotations

from decimal import Decimal

from services.execution.domain.engine import ExecutionCore
from services.execution.domain.risk import session_day
from shared.contracts.orders import OrderEvent
from shared.contracts.risk import RiskDecision, RiskStateChanged
from tests.unit.execution.helpers import NO_LIMITS, bar, command, core, limits, signal

D = Decimal


def buy_at(c: ExecutionCore, i: int, price: float, day: int = 0) -> None:
    b = bar(i, price, day=day)
    c.on_bar(b)
    c.on_signal(signal(b))
    c.on_bar(bar(i + 1, price, day=day))


def test_daily_loss_breaker_halts_on_a_losing_day() -> None:
    c = core(limits(daily_loss_limit=D(500)), qty=100)
    buy_at(c, 0, 100)
    assert c.state.portfolio.quantity("INFY") == 100
    assert not c.on_bar(bar(2, 96)).of(RiskStateChanged)  # -400
    out = c.on_bar(bar(3, 94))  # -600
    (changed,) = out.of(RiskStateChanged)
    assert changed.state == "HALTED"
    assert changed.changed_by == "breaker:daily_loss"
    assert "day P&L -600" in changed.reason
    b = bar(4, 95)
    c.on_bar(b)
    (d,) = c.on_signal(signal(b, "flat")).of(RiskDecision)
    assert not d.approved


def test_daily_loss_resets_at_the_next_session() -> None:
    c = core(limits(daily_loss_limit=D(500)), qty=100)
    buy_at(c, 0, 100)
    c.on_bar(bar(2, 96))  # -400 on day 0
    assert not c.on_bar(bar(0, 93, day=1)).of(RiskStateChanged)  # day 1 opens at -400 equity ... -300 today
    assert c.state.risk.state == "ACTIVE"
    assert c.state.portfolio.day_pnl == -300


def test_drawdown_breaker_halts_from_equity_peak() -> None:
    c = core(limits(max_drawdown_pct=D(1)), qty=100)
    buy_at(c, 0, 100)
    c.on_bar(bar(2, 110))  # peak 101_000
    assert c.state.risk.state == "ACTIVE"
    out = c.on_bar(bar(3, 99))  # equity 99_900: 1.09% below peak
    (changed,) = out.of(RiskStateChanged)
    assert changed.changed_by == "breaker:max_drawdown"


def test_breaker_cancels_working_orders() -> None:
    c = core(limits(daily_loss_limit=D(500)), qty=100)
    buy_at(c, 0, 100)
    b = bar(2, 100, symbol="TCS")
    c.on_bar(b)
    c.on_signal(signal(b))
    assert c.state.pending
    out = c.on_bar(bar(3, 90))
    assert [o.status for o in out.of(OrderEvent)] == ["cancelled"]


def test_resume_rearms_breakers_from_current_equity() -> None:
    c = core(limits(daily_loss_limit=D(500)), qty=100)
    buy_at(c, 0, 100)
    c.on_bar(bar(2, 94))
    assert c.state.risk.state == "HALTED"
    c.on_command(command("resume"), "admin")
    assert c.state.risk.state == "ACTIVE"
    assert not c.on_bar(bar(3, 93)).of(RiskStateChanged)
    assert c.on_bar(bar(4, 88)).of(RiskStateChanged)


def test_session_day_starts_at_configured_time() -> None:
    assert session_day(bar(0, 1).timestamp.replace(hour=3, minute=44), NO_LIMITS) == "2026-01-04"
    assert session_day(bar(0, 1).timestamp.replace(hour=3, minute=45), NO_LIMITS) == "2026-01-05"


def test_a_late_fill_is_marked_to_the_newest_bar_and_trips_the_breaker() -> None:
    c = core(limits(daily_loss_limit=D(50)))
    b0 = bar(0, 100.0)
    for b in (b0, bar(1, 100.0), bar(2, 90.0, open_=100.0)):
        c.on_bar(b)
    c.on_signal(signal(b0))  # bars ran ahead: fills at bar 1's open, then marked to bar 2's close
    assert c.state.portfolio.position("INFY").last_price == 90
    assert c.state.risk.state == "HALTED"
