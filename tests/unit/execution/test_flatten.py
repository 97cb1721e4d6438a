"""`bastion risk halt --flatten`: after the halt, every position is closed at the market, one order per
strategy book, filled at each symbol's next bar's open; nothing else trades."""

from __future__ import annotations

from decimal import Decimal

from services.execution.domain.engine import UNBOOKED, ExecutionCore
from shared.contracts.orders import OrderEvent, TradeEvent
from shared.contracts.risk import RiskDecision, RiskStateChanged
from tests.unit.execution.helpers import bar, command, core, signal

D = Decimal


def holding() -> ExecutionCore:
    """INFY: s1 long 10 and s2 long 10; TCS: s1 short 10; bought/sold at the bars' opens."""
    c = core(allow_short=True)
    infy, tcs = bar(0, 100.0), bar(0, 50.0, "TCS")
    for b in (infy, tcs):
        c.on_bar(b)
    c.on_signal(signal(infy, "long", "s1"))
    c.on_signal(signal(infy, "long", "s2"))
    c.on_signal(signal(tcs, "short", "s1"))
    c.on_bar(bar(1, 101.0, open_=100.5))
    c.on_bar(bar(1, 49.0, "TCS", open_=49.5))
    assert c.state.books == {"s1|INFY": 10, "s2|INFY": 10, "s1|TCS": -10}
    return c


def test_flatten_places_one_closing_order_per_book_and_they_fill_at_the_next_open() -> None:
    c = holding()
    cmd = command("halt", flatten=True)
    out = c.on_command(cmd, "admin1")
    (changed,) = out.of(RiskStateChanged)
    assert changed.state == "HALTED"
    orders = out.of(OrderEvent)
    assert [(o.strategy_id, o.symbol, o.side, o.quantity, o.status) for o in orders] == [
        ("s1", "INFY", "sell", 10, "accepted"),
        ("s1", "TCS", "buy", 10, "accepted"),
        ("s2", "INFY", "sell", 10, "accepted"),
    ]
    for o in orders:  # the command is their cause: the audit trail leads from each order to it
        assert o.signal_id == o.decision_id == o.causation_id == o.correlation_id == cmd.command_id
        assert o.occurred_at == cmd.issued_at
        assert o.reason == "flatten on halt: test"
    assert len({o.order_id for o in orders}) == 3
    assert c.state.portfolio.quantity("INFY") == 20  # nothing fills before the next bar

    infy = c.on_bar(bar(2, 103.0, open_=102.0))
    trades = infy.of(TradeEvent)
    assert [(t.side, t.quantity, t.price) for t in trades] == [("sell", 10, D("102")), ("sell", 10, D("102"))]
    assert [o.status for o in infy.of(OrderEvent)] == ["filled", "filled"]
    assert c.state.portfolio.quantity("INFY") == 0
    (cover,) = c.on_bar(bar(2, 47.0, "TCS", open_=48.0)).of(TradeEvent)
    assert (cover.side, cover.quantity, cover.price) == ("buy", 10, D("48"))
    assert c.state.books == {}
    assert c.state.portfolio.open_positions == 0
    assert c.state.pending == []
    # INFY: 20 bought at 100.5, sold at 102; TCS: 10 sold short at 49.5, bought back at 48
    assert c.state.portfolio.realised_pnl == D("30") + D("15")


def test_flatten_cancels_working_orders_first_even_when_asked_to_keep_them() -> None:
    c = holding()
    b = bar(2, 100.0)
    c.on_bar(b)
    c.on_signal(signal(b, "flat", "s2"))  # s2's sell is working
    c.on_signal(signal(bar(2, 50.0, "TCS"), "long", "s3"))  # parked until its bar: not an order yet
    out = c.on_command(command("halt", cancel=False, flatten=True), "admin1")
    assert [(o.status, o.strategy_id) for o in out.of(OrderEvent)] == [
        ("cancelled", "s2"),
        ("accepted", "s1"),
        ("accepted", "s1"),
        ("accepted", "s2"),
    ]
    c.on_bar(bar(3, 100.0))
    c.on_bar(bar(2, 50.0, "TCS"))  # the parked signal is decided now: rejected, halted
    c.on_bar(bar(3, 50.0, "TCS"))
    assert c.state.portfolio.open_positions == 0
    assert c.state.books == {}


def test_flatten_when_already_halted_still_closes_and_a_repeat_finds_nothing() -> None:
    c = holding()
    c.on_command(command("halt"), "admin1")
    out = c.on_command(command("halt", flatten=True), "admin1")
    assert out.of(RiskStateChanged) == []  # halted already
    assert len(out.of(OrderEvent)) == 3
    c.on_bar(bar(2, 100.0))
    c.on_bar(bar(2, 50.0, "TCS"))
    assert c.on_command(command("halt", flatten=True), "admin1").of(OrderEvent) == []


def test_no_flatten_without_the_flag_or_the_admin_or_on_reduce() -> None:
    for cmd, user in ((command("halt"), "admin1"), (command("halt", flatten=True), None)):
        c = holding()
        c.on_command(cmd, user)
        c.on_bar(bar(2, 100.0))
        assert c.state.portfolio.quantity("INFY") == 20
    c = holding()
    assert c.on_command(command("reduce", flatten=True), "admin1").of(OrderEvent) == []


def test_flatten_closes_a_position_no_book_holds_without_making_a_book() -> None:
    c = holding()
    del c.state.books["s2|INFY"]  # a state from before books: 10 of INFY's 20 in no book
    orders = c.on_command(command("halt", flatten=True), "admin1").of(OrderEvent)
    assert [(o.strategy_id, o.symbol, o.side, o.quantity) for o in orders] == [
        ("s1", "INFY", "sell", 10),
        ("s1", "TCS", "buy", 10),
        (UNBOOKED, "INFY", "sell", 10),
    ]
    c.on_bar(bar(2, 100.0))
    c.on_bar(bar(2, 50.0, "TCS"))
    assert c.state.portfolio.open_positions == 0
    assert c.state.books == {}


def test_flatten_orders_are_the_same_on_a_replay_of_the_same_inputs() -> None:
    cmd = command("halt", flatten=True)
    runs = []
    for _ in range(2):
        c = holding()
        events = [*c.on_command(cmd, "admin1"), *c.on_bar(bar(2, 100.0))]
        runs.append([e.to_json() for e in events])
    assert runs[0] == runs[1]


def test_a_signal_after_the_flatten_is_rejected_and_after_resume_trades_from_a_flat_book() -> None:
    c = holding()
    c.on_command(command("halt", flatten=True), "admin1")
    c.on_bar(bar(2, 100.0))
    b = bar(3, 100.0)
    c.on_bar(b)
    (rejected,) = c.on_signal(signal(b, "long", "s1")).of(RiskDecision)
    assert not rejected.approved
    c.on_command(command("resume"), "admin1")
    b = bar(4, 100.0)
    c.on_bar(b)
    out = c.on_signal(signal(b, "long", "s1"))
    assert [(o.side, o.quantity) for o in out.of(OrderEvent)] == [("buy", 10)]


def test_dry_run_records_the_closing_orders_and_fills_none() -> None:
    c = holding()
    c.config = c.config.model_copy(update={"mode": "dry_run"})
    orders = c.on_command(command("halt", flatten=True), "admin1").of(OrderEvent)
    assert len(orders) == 3
    assert {o.mode for o in orders} == {"dry_run"}
    assert c.on_bar(bar(2, 100.0)).of(TradeEvent) == []
    assert c.state.pending == []
