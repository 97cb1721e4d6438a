"""The core builds its own events and kept bars without validating them again (``build_trusted``,
``_bar_ref``) and memoises price Decimals; each must be exactly what the validating path gives: same values
of the same types, same JSON bytes. Breakers are skipped only when none is configured."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.execution.domain import engine as engine_module
from services.execution.domain.config import CostModel, RiskLimits
from services.execution.domain.engine import BarRef, ExecutionCore, _bar_ref, price_decimal
from services.execution.domain.positions import Portfolio, PositionState
from services.execution.domain.risk import breakers_armed, tripped_breakers
from shared.contracts.envelope import Event
from shared.contracts.orders import OrderEvent, TradeEvent
from shared.contracts.risk import RiskDecision, RiskStateChanged
from shared.contracts.signals import Target
from tests.unit.execution.helpers import bar, command, core, limits, signal

TARGETS: tuple[Target, ...] = ("long", "flat", "short")


def validated(model: Any) -> Any:
    """The same model rebuilt through pydantic validation from its own field values."""
    return type(model)(**{name: getattr(model, name) for name in type(model).model_fields})


def assert_as_if_validated(model: Any) -> None:
    again = validated(model)
    assert again == model
    assert again.model_dump_json(by_alias=True) == model.model_dump_json(by_alias=True)
    for name in type(model).model_fields:  # 1 == 1.0 and equal Decimals of another exponent hide here
        mine, theirs = getattr(model, name), getattr(again, name)
        assert type(mine) is type(theirs), name
        assert repr(mine) == repr(theirs), name


def busy_core_events(c: ExecutionCore, seed: int) -> list[Event]:
    """Bars of two symbols with signals of every target, an admin halt with cancels and a resume."""
    rng, events = random.Random(seed), list[Event]()
    for i in range(120):
        for symbol in ("INFY", "TCS"):
            b = bar(i, 100 + i % 9 - i % 4 + (i // 40) * 7, symbol=symbol, open_=100 + i % 5)
            events += c.on_bar(b)
            if rng.random() < 0.4:
                events += c.on_signal(signal(b, rng.choice(TARGETS), strategy_id=f"s{i % 3}"))
        if i == 50:  # resume (a breaker may have halted), place orders, halt before they fill
            events += c.on_command(command("resume"), "admin")
            for symbol in ("INFY", "TCS"):
                target: Target = "flat" if c.working_quantity(symbol, "h") != 0 else "long"
                events += c.on_signal(signal(bar(i, 100, symbol=symbol), target, strategy_id="h"))
            events += c.on_command(command("halt", cancel=True), "admin")
        if i == 60:
            events += c.on_command(command("resume"), "admin")
    return events


@pytest.mark.parametrize("seed", [1, 2])
def test_every_event_of_the_core_is_what_validation_would_have_built(seed: int) -> None:
    costs = CostModel(slippage_bps=Decimal(3), commission_pct=Decimal("0.05"), flat_fee=Decimal(1))
    tight = limits(max_order_qty=Decimal(4), max_drawdown_pct=Decimal("0.5"), daily_loss_limit=Decimal(50))
    c = core(limits=tight, qty=3, costs=costs, allow_short=True)
    events = busy_core_events(c, seed)
    kinds = {type(e) for e in events}
    assert {RiskDecision, OrderEvent, TradeEvent, RiskStateChanged} <= kinds
    assert {e.status for e in events if isinstance(e, OrderEvent)} >= {"accepted", "filled", "cancelled"}
    assert any(isinstance(e, RiskDecision) and not e.approved for e in events)
    for event in events:
        assert_as_if_validated(event)
        for check in getattr(event, "checks", ()):
            assert_as_if_validated(check)
    for kept in c.state.bars.values():
        for ref in kept:
            assert_as_if_validated(ref)


def test_a_pending_order_is_what_validation_would_have_built() -> None:
    c = core(qty=3)
    b = bar(0, 101.25)
    c.on_bar(b)
    c.on_signal(signal(b, "long"))
    (order,) = c.state.pending
    assert_as_if_validated(order)


def test_the_fast_bar_ref_is_the_validated_bar_ref() -> None:
    b = bar(3, 101.25, open_=100.5)
    fast = _bar_ref(b.timestamp, price_decimal(b.open), price_decimal(b.close), b.event_id, True)
    slow = BarRef(
        timestamp=b.timestamp,
        open=Decimal(str(b.open)),
        close=Decimal(str(b.close)),
        event_id=b.event_id,
        live=True,
    )
    assert fast == slow
    assert fast.model_dump_json() == slow.model_dump_json()
    assert fast.model_fields_set == slow.model_fields_set
    assert_as_if_validated(fast)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-5, 5)), max_size=30))
def test_price_decimal_is_decimal_of_str_whatever_came_before(values: list[float]) -> None:
    for value in [*values, *values, 0.0, -0.0, 1, 1.0, 1, 100, 100.0]:
        got = price_decimal(value)
        assert str(got) == str(Decimal(str(value))), value


def test_the_price_memo_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "PRICES_KEPT", 10)
    monkeypatch.setattr(engine_module, "_PRICES", {})
    for i in range(1, 100):
        assert str(price_decimal(i / 4)) == str(Decimal(str(i / 4)))
        assert len(engine_module._PRICES) <= 10


def test_without_breaker_limits_no_portfolio_trips_a_breaker() -> None:
    every_other_limit = RiskLimits(daily_loss_limit=None, max_drawdown_pct=None)
    assert not breakers_armed(every_other_limit)
    assert not breakers_armed(RiskLimits.off())
    rich = Decimal(10**9)
    crashed = Portfolio(cash=Decimal(-1_000_000), peak_equity=rich, session_start_equity=rich)
    crashed.positions["X"] = PositionState(symbol="X", quantity=Decimal(5), last_price=Decimal(1))
    assert tripped_breakers(every_other_limit, crashed) == {}
    for armed in (RiskLimits(daily_loss_limit=None), RiskLimits(max_drawdown_pct=None)):
        assert breakers_armed(armed)
        assert tripped_breakers(armed, crashed) != {}
