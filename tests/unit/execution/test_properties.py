"""Properties: no approved order breaks a position limit; a long-only account never holds a short, whatever
order several strategies' signals arrive in; once HALTED nothing is approved until resume."""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from shared.contracts.envelope import Event
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
        before = c.working_quantity(symbol)
        out = c.on_signal(signal(b, target, strategy))  # type: ignore[arg-type]
        working = c.working_quantity(symbol)  # position once every working order fills
        assert abs(working) <= max_qty
        if abs(working) > abs(before):  # an order grew the position: judged at the price it was placed at
            assert any(o.status == "accepted" for o in out.of(OrderEvent))
            assert abs(working) * price <= max_notional
        for pos in c.state.portfolio.positions.values():
            assert abs(pos.quantity) <= max_qty
        if not short:
            assert all(p.quantity >= 0 for p in c.state.portfolio.positions.values())


late_steps = st.lists(
    st.tuples(
        st.sampled_from(["A", "B"]),
        st.integers(min_value=50, max_value=150),  # the bar's close and open
        st.booleans(),  # a new bar (True) or a signal for a bar already seen (False)
        st.integers(min_value=0, max_value=6),  # how many bars back that signal's bar is
        st.sampled_from(["long", "flat", "short"]),
        st.sampled_from(["s1", "s2", "s3"]),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(steps=late_steps, qty=st.integers(min_value=1, max_value=20))
@example(  # s1's buy for the newest bar is working when s2's flat for an older bar comes in
    steps=[
        ("A", 100, True, 0, "long", "s1"),
        ("A", 101, True, 0, "long", "s1"),
        ("A", 0, False, 0, "long", "s1"),
        ("A", 0, False, 1, "flat", "s2"),
    ],
    qty=1,
)
def test_a_long_only_account_never_holds_a_short_whatever_order_signals_arrive_in(
    steps: list[tuple[str, int, bool, int, str, str]], qty: int
) -> None:
    c = core(qty=qty)
    seen: dict[str, list[object]] = {s: [] for s in ("A", "B")}
    minute = 0
    for symbol, price, new_bar, back, target, strategy in steps:
        if new_bar or not seen[symbol]:
            minute += 1
            b = bar(minute, float(price), symbol, open_=float(price + 1))
            seen[symbol].append(b)
            c.on_bar(b)
        else:  # a late signal, sized against the position and working orders of now
            bars = seen[symbol]
            c.on_signal(signal(bars[max(len(bars) - 1 - back, 0)], target, strategy))  # type: ignore[arg-type]
        assert all(p.quantity >= 0 for p in c.state.portfolio.positions.values()), c.state.portfolio
        for sym in seen:  # and no working sell is for more than is held
            held = c.state.portfolio.quantity(sym)
            assert sum(o.quantity for o in c.state.pending if o.symbol == sym and o.side == "sell") <= held


@settings(max_examples=80, deadline=None)
@given(
    plan=st.lists(
        st.tuples(
            st.sampled_from(["s1", "s2", "s3"]),
            st.integers(min_value=0, max_value=24),  # the bar the signal is for
            st.sampled_from(["long", "flat", "short"]),
        ),
        max_size=40,
    ),
    arrivals=st.randoms(use_true_random=False),
    short=st.booleans(),
)
def test_the_same_signals_give_the_same_orders_and_trades_whatever_order_they_arrive_in(
    plan: list[tuple[str, int, str]], arrivals: random.Random, short: bool
) -> None:
    """Each strategy sends its signals in bar order, at most one a bar; how the strategies' streams and
    the bars interleave on the way to execution (a price-only strategy runs ahead of one that waits for
    insights) must not change a single order or trade."""
    bars = [bar(i, 100 + i % 7 - i % 3, "A", open_=100 + i % 5) for i in range(25)]
    streams: dict[str, list[object]] = {}
    for strategy in ("s1", "s2", "s3"):
        targets = {i: target for s, i, target in plan if s == strategy}  # the last one for a bar
        streams[strategy] = [signal(bars[i], targets[i], strategy) for i in sorted(targets)]  # type: ignore[arg-type]
    streams["bars"] = list(bars)

    def run(rng: random.Random | None) -> list[str]:
        c = core(qty=7, allow_short=short)
        queues = {k: list(v) for k, v in streams.items()}
        events: list[Event] = []
        while any(queues.values()):  # one stream's next item at a time, each stream in its own order
            names = sorted(k for k, q in queues.items() if q)
            name = rng.choice(names) if rng else ("bars" if queues["bars"] else names[0])
            item = queues[name].pop(0)
            events += c.on_bar(item) if name == "bars" else c.on_signal(item)  # type: ignore[arg-type]
        events += c.on_bar(bar(25, 100))  # fills what is still working
        return sorted(e.model_dump_json() for e in events if not isinstance(e, RiskDecision))

    assert run(arrivals) == run(None)


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
