"""``all_cash`` sizing (`bastion backtest --sizing all`) invests the cash that is left, not the equity again
for each book: a portfolio of several symbols or strategies never buys on credit."""

from __future__ import annotations

from decimal import Decimal

from services.execution.domain.engine import ExecutionCore
from shared.contracts.orders import OrderEvent
from tests.unit.execution.helpers import bar, core, signal

D = Decimal


def cash_core() -> ExecutionCore:
    return core(policy="all_cash")  # 100,000 of cash, no costs, no limits


def bought(c: ExecutionCore, *signals: tuple[str, str, float]) -> list[tuple[str, str, Decimal]]:
    """Each (symbol, strategy, close) signal on bar 0, in order; the accepted orders' symbol, strategy and
    quantity."""
    out = []
    for symbol, strategy, close in signals:
        b = bar(0, close, symbol)
        c.on_bar(b)
        out += [
            (o.symbol, o.strategy_id, o.quantity)
            for o in c.on_signal(signal(b, "long", strategy)).of(OrderEvent)
            if o.status == "accepted"
        ]
    return out


def test_one_book_takes_all_the_cash_and_a_second_symbol_only_what_is_left() -> None:
    c = cash_core()
    assert bought(c, ("AAA", "s1", 300.0)) == [("AAA", "s1", 333)]  # 99,900 of 100,000
    c.on_bar(bar(1, 300.0, "AAA"))
    assert c.state.portfolio.cash == 100
    assert bought(c, ("BBB", "s1", 30.0)) == [("BBB", "s1", 3)]  # the 100 left: 3 units, not 3,333
    c.on_bar(bar(1, 30.0, "BBB"))
    assert c.state.portfolio.cash == 10


def test_working_orders_of_other_books_hold_their_cash_until_they_fill() -> None:
    c = cash_core()
    orders = bought(c, ("AAA", "s1", 100.0), ("BBB", "s1", 50.0), ("AAA", "s2", 100.0))
    assert orders == [("AAA", "s1", 1000)]  # the working buy holds all of it, valued at AAA's close
    c.on_bar(bar(1, 100.0, "AAA"))
    c.on_bar(bar(1, 50.0, "BBB"))
    assert c.state.portfolio.cash >= 0


def test_a_book_at_its_target_does_not_count_against_itself() -> None:
    c = cash_core()
    bought(c, ("AAA", "s1", 100.0))
    c.on_bar(bar(1, 110.0, "AAA", open_=100.0))  # 1,000 held, worth 110,000 now, no cash left
    b = bar(2, 110.0, "AAA")
    c.on_bar(b)
    assert c.on_signal(signal(b, "long", "s1")).of(OrderEvent) == []  # at its target already
    b = bar(3, 110.0, "AAA")
    c.on_bar(b)
    out = c.on_signal(signal(b, "flat", "s1"))
    assert [(o.side, o.quantity) for o in out.of(OrderEvent)] == [("sell", 1000)]


def test_the_cash_of_a_working_sale_goes_to_a_book_whose_buy_fills_at_the_same_open() -> None:
    c = cash_core()
    bought(c, ("AAA", "s1", 100.0))
    c.on_bar(bar(1, 100.0, "AAA"))
    b = bar(2, 100.0, "AAA")
    c.on_bar(b)
    c.on_signal(signal(b, "flat", "s1"))  # the sale fills at the next open, as the buy below does
    orders = []
    for symbol, close in (("BBB", 50.0), ("CCC", 50.0)):
        sb = bar(2, close, symbol)
        c.on_bar(sb)
        orders += [(o.symbol, o.quantity) for o in c.on_signal(signal(sb, "long", "s2")).of(OrderEvent)]
    assert orders == [("BBB", 2000)]  # all of the sale's 100,000, once: nothing left for CCC
    for symbol in ("AAA", "BBB"):
        c.on_bar(bar(3, 100.0 if symbol == "AAA" else 50.0, symbol))
    assert c.state.portfolio.cash == 0
