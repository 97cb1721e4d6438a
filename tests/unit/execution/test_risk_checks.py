"""Every pre-trade check rejects with its reason; the trading state machine gates everything."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from services.execution.domain import risk
from services.execution.domain.broker import PendingOrder
from services.execution.domain.config import RiskLimits
from services.execution.domain.engine import ExecutionCore
from services.execution.domain.positions import Portfolio
from shared.contracts.orders import OrderEvent
from shared.contracts.risk import RiskDecision, RiskStateChanged
from tests.unit.execution.helpers import bar, command, core, limits, signal

D = Decimal


def decide(
    c: ExecutionCore,
    i: int = 0,
    close: float = 100,
    target: str = "long",
    symbol: str = "INFY",
    strategy: str = "s1",
) -> RiskDecision:
    b = bar(i, close, symbol)
    c.on_bar(b)
    out = c.on_signal(signal(b, target, strategy))  # type: ignore[arg-type]
    (decision,) = out.of(RiskDecision)
    assert isinstance(decision, RiskDecision)
    return decision


def failed(decision: RiskDecision) -> dict[str, str]:
    return {c.name: c.reason for c in decision.checks if not c.passed}


def intent(qty: int, current: int = 0, price: int = 100) -> risk.OrderIntent:
    side = "buy" if qty > 0 else "sell"
    return risk.OrderIntent("INFY", side, D(abs(qty)), D(price), D(current))


def run_checks(lim: RiskLimits, order: risk.OrderIntent, pf: Portfolio | None = None) -> dict[str, str]:
    view = risk.MarketView(bar(0, 100).timestamp, D(100), D(100), 0, 0.0)
    checks = risk.pre_trade_checks(
        lim, risk.RiskState(), pf or Portfolio.starting(D(10**6)), view, "k", order
    )
    return {c.name: c.reason for c in checks if not c.passed}


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        ({"max_order_qty": D(5)}, "max_order_qty"),
        ({"max_order_notional": D(500)}, "max_order_notional"),
        ({"max_position_qty": D(5)}, "max_position_qty"),
        ({"max_position_notional": D(500)}, "max_position_notional"),
        ({"max_gross_exposure": D(500)}, "max_gross_exposure"),
    ],
)
def test_order_is_rejected_when_a_size_limit_would_be_exceeded(overrides: dict[str, D], check: str) -> None:
    assert set(run_checks(limits(**overrides), intent(10))) == {check}
    assert run_checks(limits(**overrides), intent(4)) == {}


def test_checks_reject_a_flip_past_the_position_limit() -> None:
    failures = run_checks(limits(max_position_qty=D(10)), intent(25, current=-10))
    assert "max_position_qty" in failures
    assert "would be 15" in failures["max_position_qty"]


def test_sized_order_stays_within_limits_and_is_approved() -> None:
    c = core(limits(max_position_qty=D(5), max_order_notional=D(300)), qty=50)
    d = decide(c)
    assert d.approved
    (order,) = c.state.pending
    assert order.quantity == 3


def test_position_limit_rejects_adding_but_allows_reducing() -> None:
    c = core(limits(max_position_qty=D(10)), qty=10)
    assert decide(c, 0).approved
    c.on_bar(bar(1, 100))
    c.state.portfolio.positions["INFY"].quantity = D(15)  # over the limit (limit lowered, say)
    assert decide(c, 2, target="flat").approved


LIVE = "broker:kite"


def test_stale_signal_is_rejected_by_bar_age() -> None:
    c = core(limits(max_signal_age_bars=1))
    b0 = bar(0, 100, source=LIVE)
    for b in (b0, bar(1, 100, source=LIVE), bar(2, 100, source=LIVE)):
        c.on_bar(b)
    (decision,) = c.on_signal(signal(b0)).of(RiskDecision)
    assert "stale_data" in failed(decision)
    assert "2 bars old" in failed(decision)["stale_data"]


def test_stale_signal_is_rejected_by_data_time_age() -> None:
    c = core(limits(max_signal_age_seconds=90))
    b0 = bar(0, 100, source=LIVE)
    for b in (b0, bar(2, 100, source=LIVE)):
        c.on_bar(b)
    (decision,) = c.on_signal(signal(b0)).of(RiskDecision)
    assert "120s old" in failed(decision)["stale_data"]


@pytest.mark.parametrize("source", ["synthetic", "file:bars.csv"])
def test_replayed_bars_decide_the_same_however_late_the_signal_arrives(source: str) -> None:
    """Staleness is judged on live feeds only: a replay's signal may reach execution after any number of
    newer bars (that is the machine's pace), and must be decided as if it arrived at once."""
    decisions: list[RiskDecision] = []
    for late in (0, 1, 5):
        c = core(limits(max_signal_age_bars=1, max_signal_age_seconds=30))
        b0 = bar(0, 100, source=source)
        for b in (b0, *(bar(i, 100, source=source) for i in range(1, late + 1))):
            c.on_bar(b)
        (decision,) = c.on_signal(signal(b0)).of(RiskDecision)
        assert isinstance(decision, RiskDecision)
        decisions.append(decision)
    assert all(d.approved for d in decisions)
    assert len({d.event_id for d in decisions}) == 1
    assert {c.reason for d in decisions for c in d.checks if c.name == "stale_data"} == {
        "ok: not judged: replayed or synthetic bars"
    }


def test_duplicate_signal_for_same_strategy_and_bar_is_suppressed() -> None:
    c = core(limits(suppress_duplicates=True))
    b0 = bar(0, 100)
    c.on_bar(b0)
    assert c.on_signal(signal(b0, "long")).of(RiskDecision)[0].approved
    (second,) = c.on_signal(signal(b0, "flat")).of(RiskDecision)
    assert "duplicate_signal" in failed(second)
    (other,) = c.on_signal(signal(b0, "flat", "s2")).of(RiskDecision)
    assert other.approved


def test_rate_throttle_per_second_in_data_time() -> None:
    c = core(limits(max_orders_per_second=2))
    results = [decide(c, 0, symbol=s).approved for s in ("A", "B", "C")]
    assert results == [True, True, False]
    assert decide(c, 1, symbol="D").approved  # a minute later in data time


def test_rate_throttle_per_minute() -> None:
    c = core(limits(max_orders_per_minute=2))
    c.state.risk.remember_order(bar(0, 1).timestamp - timedelta(seconds=50))
    c.state.risk.remember_order(bar(0, 1).timestamp - timedelta(seconds=10))
    d = decide(c, 0)
    assert "rate_per_minute" in failed(d)


def test_price_band_rejects_a_jump_from_the_previous_bar() -> None:
    c = core(limits(price_band_pct=D(5)))
    c.on_bar(bar(0, 100))
    d = decide(c, 1, close=120)
    assert "price_band" in failed(d)
    assert "20.00%" in failed(d)["price_band"]
    c2 = core(limits(price_band_pct=D(5)))
    c2.on_bar(bar(0, 100))
    assert decide(c2, 1, close=104).approved


def test_max_open_positions_blocks_a_new_symbol_only() -> None:
    c = core(limits(max_open_positions=1))
    assert decide(c, 0, symbol="A").approved
    c.on_bar(bar(1, 100, "A"))
    d = decide(c, 1, symbol="B")
    assert "max_open_positions" in failed(d)


def test_no_price_known_is_rejected() -> None:
    c = core()
    b0 = bar(0, 100)
    c.on_bar(b0)
    c.state.bars.clear()
    c.state.bars["INFY"] = []
    c.state.parked.clear()
    # a signal whose bar was evicted: decided with no reference price
    out = c._decide(signal(b0))
    (decision,) = out.of(RiskDecision)
    assert "price_known" in failed(decision)


def test_halted_rejects_everything_until_resume() -> None:
    c = core()
    out = c.on_command(command("halt"), "admin")
    (changed,) = out.of(RiskStateChanged)
    assert changed.state == "HALTED"
    assert changed.changed_by == "admin"
    d = decide(c, 0)
    assert not d.approved
    assert d.state == "HALTED"
    assert "trading_state" in failed(d)
    c.on_command(command("resume"), "admin")
    assert decide(c, 1).approved


def test_unauthorised_command_changes_nothing() -> None:
    c = core()
    assert not c.on_command(command("halt"), None).events
    assert c.state.risk.state == "ACTIVE"


def test_halt_cancels_working_orders_so_none_fill() -> None:
    c = core()
    decide(c, 0)
    assert c.state.pending
    out = c.on_command(command("halt"), "admin")
    assert [o.status for o in out.of(OrderEvent)] == ["cancelled"]
    assert not c.on_bar(bar(1, 100)).of(OrderEvent)
    assert c.state.portfolio.quantity("INFY") == 0


def test_reducing_allows_only_orders_that_shrink_a_position() -> None:
    c = core()
    decide(c, 0)
    c.on_bar(bar(1, 100))
    c.on_command(command("reduce"), "admin")
    assert not decide(c, 2, symbol="TCS").approved
    assert decide(c, 3, target="flat").approved


def test_reducing_cancels_the_working_orders_that_would_grow_a_position() -> None:
    c = core()
    decide(c, 0)
    c.on_bar(bar(1, 100))  # long 10 INFY
    assert decide(c, 2, strategy="s2").approved  # buy 10 more: grows
    assert decide(c, 2, target="flat").approved  # sell 10, fills after that buy: shrinks 10 -> 0
    c.on_bar(bar(2, 50, "TCS"))
    assert c.on_signal(signal(bar(2, 50, "TCS"))).of(OrderEvent)  # opens TCS
    assert len(c.state.pending) == 3
    out = c.on_command(command("reduce"), "admin")
    cancelled = out.of(OrderEvent)
    assert [(o.status, o.symbol, o.side, o.strategy_id) for o in cancelled] == [
        ("cancelled", "INFY", "buy", "s2"),
        ("cancelled", "TCS", "buy", "s1"),
    ]
    assert all(o.reason == "reducing: test" for o in cancelled)
    c.on_bar(bar(3, 100))
    c.on_bar(bar(3, 50, "TCS"))
    assert c.state.portfolio.quantity("INFY") == 0
    assert c.state.portfolio.quantity("TCS") == 0
    assert not c.state.pending


def test_reducing_cancels_a_working_order_that_would_flip_a_position() -> None:
    c = core()
    decide(c, 0)
    c.on_bar(bar(1, 100))  # long 10 INFY
    assert not c.state.pending
    ids = [uuid.uuid4() for _ in range(3)]
    c.state.pending.append(
        PendingOrder(
            order_id=ids[0],
            signal_id=ids[1],
            decision_id=ids[2],
            correlation_id=ids[2],
            symbol="INFY",
            side="sell",
            quantity=D(15),  # 10 -> -5: smaller, but short
            strategy_id="s1",
            after=bar(1, 100).timestamp,
        )
    )
    out = c.on_command(command("reduce"), "admin")
    assert [(o.status, o.order_id) for o in out.of(OrderEvent)] == [("cancelled", ids[0])]


def test_reducing_keeps_working_orders_without_cancel_orders() -> None:
    c = core()
    decide(c, 0)
    out = c.on_command(command("reduce", cancel=False), "admin")
    assert not out.of(OrderEvent)
    c.on_bar(bar(1, 100))
    assert c.state.portfolio.quantity("INFY") == 10


def test_seen_signals_answer_like_the_list_while_keys_come_and_go() -> None:
    state = risk.RiskState()
    keys = [f"s|INFY|{i % 7}" for i in range(risk.SEEN_SIGNALS_KEPT + 50)]  # repeats, and past the cap
    for n, key in enumerate(keys, 1):
        state.remember_signal(key)
        if n % 997 == 0 or n > risk.SEEN_SIGNALS_KEPT:
            probe = {key, f"s|INFY|{(n + 3) % 7}", "never"}
            assert {k for k in probe if state.has_seen(k)} == {k for k in probe if k in state.seen_signals}
    assert len(state.seen_signals) == risk.SEEN_SIGNALS_KEPT
    reloaded = risk.RiskState.model_validate_json(state.model_dump_json())
    assert reloaded.has_seen(keys[-1])
    assert not reloaded.has_seen("never")
    assert "_seen" not in state.model_dump_json()
