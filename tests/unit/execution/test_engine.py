"""The execution core: signals become decisions, approved ones orders, orders fill at the next bar's open."""

from __future__ import annotations

from decimal import Decimal

from services.execution.domain.config import CostModel
from services.execution.domain.engine import CoreState, ExecutionCore, order_id_for
from shared.contracts.orders import OrderEvent, TradeEvent
from shared.contracts.risk import RiskDecision
from tests.unit.execution.helpers import bar, core, signal

D = Decimal


def test_approved_long_signal_fills_at_next_bar_open() -> None:
    c = core(qty=10)
    b0 = bar(0, 100)
    c.on_bar(b0)
    out = c.on_signal(signal(b0))
    (decision,) = out.of(RiskDecision)
    assert decision.approved
    (order,) = out.of(OrderEvent)
    assert order.status == "accepted"
    assert order.order_id == order_id_for(signal(b0).event_id)
    assert not out.of(TradeEvent)
    fills = c.on_bar(bar(1, 105, open_=102))
    (trade,) = fills.of(TradeEvent)
    assert trade.price == 102
    assert c.state.portfolio.quantity("INFY") == 10
    assert [o.status for o in fills.of(OrderEvent)] == ["filled"]


def test_signal_before_its_bar_is_parked_until_the_bar_arrives() -> None:
    c = core()
    b0 = bar(0, 100)
    assert not c.on_signal(signal(b0)).events
    out = c.on_bar(b0)
    assert len(out.of(RiskDecision)) == 1


def test_signal_after_later_bars_fills_at_the_bar_after_its_own() -> None:
    c = core()
    b0, b1, b2 = bar(0, 100), bar(1, 101, open_=100.5), bar(2, 102, open_=101.5)
    for b in (b0, b1, b2):
        c.on_bar(b)
    out = c.on_signal(signal(b0))
    (trade,) = out.of(TradeEvent)
    assert trade.price == D("100.5")


def test_flat_signal_closes_the_position_and_realises_pnl() -> None:
    c = core(qty=10)
    b0 = bar(0, 100)
    c.on_bar(b0)
    c.on_signal(signal(b0))
    b1 = bar(1, 110)
    c.on_bar(b1)
    c.on_signal(signal(b1, "flat"))
    c.on_bar(bar(2, 120))
    assert c.state.portfolio.quantity("INFY") == 0
    assert c.state.portfolio.realised_pnl == 100  # bought at bar 1's open 110, sold at bar 2's open 120


def test_signal_already_at_target_is_approved_without_an_order() -> None:
    c = core()
    b0 = bar(0, 100)
    c.on_bar(b0)
    out = c.on_signal(signal(b0, "flat"))
    assert out.of(RiskDecision)[0].approved
    assert not out.of(OrderEvent)


def test_each_strategy_trades_its_own_book_and_the_position_is_their_sum() -> None:
    c = core(qty=10)  # long-only
    b0, b1 = bar(0, 100), bar(1, 101, open_=100.5)
    c.on_bar(b0)
    c.on_bar(b1)
    c.on_signal(signal(b0, "long", "s1"))  # filled at bar 1's open
    c.on_signal(signal(b1, "long", "s2"))  # working until the next bar
    late = c.on_signal(signal(b0, "flat", "s3"))  # a third strategy's signal for an older bar, arriving later
    assert late.of(RiskDecision)[0].approved
    assert not late.of(OrderEvent)  # s3 holds nothing: it neither sells s1's units nor cancels s2's buy
    assert c.state.books == {"s1|INFY": 10}
    assert c.working_quantity("INFY") == 20
    c.on_bar(bar(2, 102, open_=101.5))
    assert c.state.books == {"s1|INFY": 10, "s2|INFY": 10}
    assert c.state.portfolio.quantity("INFY") == 20
    out = c.on_signal(signal(bar(2, 102, open_=101.5), "flat", "s1"))  # s1 exits its own 10 only
    assert [(o.status, o.side, o.quantity) for o in out.of(OrderEvent)] == [("accepted", "sell", 10)]


def test_a_new_target_cancels_the_working_order_it_reverses_instead_of_trading_against_it() -> None:
    c = core(qty=10)  # long-only
    b0, b1 = bar(0, 100), bar(1, 101, open_=100.5)
    c.on_bar(b0)
    c.on_bar(b1)
    c.on_signal(signal(b1, "long", "s1"))  # working until the next bar
    late = signal(b0, "flat", "s1")  # the same strategy's signal for an older bar, delivered again later
    out = c.on_signal(late)
    (decision,) = out.of(RiskDecision)
    assert decision.approved
    (cancelled,) = out.of(OrderEvent)
    assert (cancelled.status, cancelled.side, cancelled.quantity) == ("cancelled", "buy", 10)
    assert cancelled.order_id == order_id_for(signal(b1, "long", "s1").event_id)
    assert cancelled.causation_id == decision.event_id  # the audit trail names the decision that cancelled it
    assert str(late.event_id) in cancelled.reason
    assert not out.of(TradeEvent)  # not a sell of 10 at bar 1's open: short in a long-only account
    assert c.state.pending == []
    assert c.state.portfolio.quantity("INFY") == 0
    assert not c.on_bar(bar(2, 102)).of(TradeEvent)


def test_a_target_back_at_the_book_cancels_the_working_order_away_from_it() -> None:
    c = core(qty=10, policy="fixed_notional", notional=D(1000))
    b0, b1, b2 = bar(0, 100), bar(1, 100), bar(2, 200)
    for b in (b0, b1, b2):
        c.on_bar(b)
    c.on_signal(signal(b0, "long", "s1"))  # 10 units at 100: filled at bar 1's open (100)
    c.on_signal(signal(b2, "long", "s1"))  # target 5 at 200: a sell of 5 is working
    out = c.on_signal(signal(b1, "long", "s1"))  # late: target 10 at bar 1's 100 again
    assert [(o.status, o.side, o.quantity) for o in out.of(OrderEvent)] == [("cancelled", "sell", 5)]
    assert c.working_quantity("INFY") == 10
    assert not c.state.pending


def test_dry_run_records_orders_but_never_fills() -> None:
    c = core(mode="dry_run")
    b0 = bar(0, 100)
    c.on_bar(b0)
    assert len(c.on_signal(signal(b0)).of(OrderEvent)) == 1
    assert not c.on_bar(bar(1, 100)).of(TradeEvent)
    assert c.state.portfolio.quantity("INFY") == 0


def test_signal_close_fill_model_fills_immediately_at_the_close() -> None:
    c = core(costs=CostModel(slippage_bps=D(0), commission_pct=D(0), flat_fee=D(0), fill_at="signal_close"))
    b0 = bar(0, 100, open_=90)
    c.on_bar(b0)
    (trade,) = c.on_signal(signal(b0)).of(TradeEvent)
    assert trade.price == 100


def test_commission_and_slippage_reduce_equity() -> None:
    c = core(costs=CostModel(slippage_bps=D(100), commission_pct=D(1), flat_fee=D(1)))
    b0 = bar(0, 100)
    c.on_bar(b0)
    c.on_signal(signal(b0))
    (trade,) = c.on_bar(bar(1, 100)).of(TradeEvent)
    assert trade.price == 101
    assert trade.commission == D("11.10")
    assert c.state.portfolio.equity == D(100_000) - 10 - D("11.10")


def test_same_inputs_give_identical_outputs() -> None:
    def run() -> list[bytes]:
        c = core()
        out = []
        for i, close in enumerate([100, 101, 99, 98, 103]):
            b = bar(i, close)
            out += [e.to_json() for e in c.on_bar(b)]
            out += [e.to_json() for e in c.on_signal(signal(b, "long" if i % 2 == 0 else "flat"))]
        return out

    assert run() == run()


def test_state_round_trips_through_json() -> None:
    c = core()
    b0 = bar(0, 100)
    c.on_bar(b0)
    c.on_signal(signal(b0))
    restored = ExecutionCore(c.config, CoreState.model_validate_json(c.state.model_dump_json()))
    assert restored.state == c.state
    (trade,) = restored.on_bar(bar(1, 100)).of(TradeEvent)
    assert trade.quantity == 10


def test_repeated_bar_changes_nothing() -> None:
    c = core()
    b0 = bar(0, 100)
    c.on_bar(b0)
    c.on_signal(signal(b0))
    assert c.on_bar(bar(1, 100)).events
    assert not c.on_bar(bar(1, 100)).events


def test_snapshots_describe_positions_and_risk() -> None:
    c = core()
    b0 = bar(0, 100)
    c.on_bar(b0)
    c.on_signal(signal(b0))
    c.on_bar(bar(1, 110, open_=100))
    snap = c.positions_snapshot(bar(1, 110).timestamp)
    assert snap.positions[0].unrealised_pnl == 100
    assert snap.equity == 100_100
    view = c.risk_view()
    assert view["state"] == "ACTIVE"
    assert view["usage"]["open_positions"] == 1  # type: ignore[index]
