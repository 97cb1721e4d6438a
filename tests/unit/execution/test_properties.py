"""Properties: no approved order breaks a position limit; once HALTED nothing is approved until resume."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.contracts.orders import OrderEvent, TradeEvent
from shared.contracts.risk import RiskDecision
from tests.unit.execution.helpers import bar, command, core, limits, signal

D = Decimal
SYMBOLS = ["A", "B", "C"]

steps = st.lists(
    st.tuples(
        st.sampled_from(SYMBOLS),
        st.integers(min_value=50, max_value=150),
        st.sampled_from(["long", "flat", "short"]),
        st.sampled_from(["s1", "s2"]),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(
    steps=steps,
    qty=st.integers(min_value=1, max_value=500),
    max_qty=st.integers(min_value=1, max_value=200),
    max_notional=st.integers(min_value=100, max_value=20_000),
    short=st.booleans(),
)
def test_no_position_ever_exceeds_its_limits(
    steps: list[tuple[str, int, str, str]], qty: int, max_qty: int, max_notional: int, short: bool
) -> None:
    lim = limits(max_position_qty=D(max_qty), max_position_notional=D(max_notional))
    c = core(lim, qty=qty, allow_short=short)
    for i, (symbol, price, target, strategy) in enumerate(steps):
        b = bar(i, float(price), symbol)
        c.on_bar(b)
        c.on_signal(signal(b, target, strategy))  # type: ignore[arg-type]
        working = c.working_quantity(symbol)  # position once every working order fills
        assert abs(working) <= max_qty
        assert abs(working) * price <= max_notional
        for pos in c.state.portfolio.positions.values():
            assert abs(pos.quantity) <= max_qty
        if not short:
            assert all(p.quantity >= 0 for p in c.state.portfolio.positions.values())


@settings(max_examples=60, deadline=None)
@given(
    before=steps,
    after=steps,
    cancel=st.booleans(),
)
def test_after_halt_nothing_is_approved_until_resume(
    before: list[tuple[str, int, str, str]], after: list[tuple[str, int, str, str]], cancel: bool
) -> None:
    c = core(qty=5)
    i = 0
    for symbol, price, target, strategy in before:
        b = bar(i, float(price), symbol)
        c.on_bar(b)
        c.on_signal(signal(b, target, strategy))  # type: ignore[arg-type]
        i += 1
    c.on_command(command("halt", cancel=cancel), "admin")
    positions = {s: c.state.portfolio.quantity(s) for s in SYMBOLS}
    for symbol, price, target, strategy in after:
        b = bar(i, float(price), symbol)
        out = c.on_bar(b)
        out.extend(c.on_signal(signal(b, target, strategy)))  # type: ignore[arg-type]
        assert not any(d.approved for d in out.of(RiskDecision))
        assert not any(o.status == "accepted" for o in out.of(OrderEvent))
        if cancel:
            assert not out.of(TradeEvent)
        i += 1
    if cancel:
        assert positions == {s: c.state.portfolio.quantity(s) for s in SYMBOLS}
    c.on_command(command("resume"), "admin")
    b = bar(i, 100.0, "Z")
    c.on_bar(b)
    assert c.on_signal(signal(b, "long", "fresh")).of(RiskDecision)[0].approved
