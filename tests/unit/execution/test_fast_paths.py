"""The core's fast paths give what the plain versions gave: kept bars, session days, equity, limits."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.execution.domain import risk
from services.execution.domain.engine import BARS_KEPT, BarRef, ExecutionCore, Outcome
from services.execution.domain.positions import ZERO, Portfolio, PositionState
from services.execution.domain.risk import SessionCalendar, session_day
from shared.contracts.market_data import OHLCVBar
from shared.contracts.risk import RiskDecision
from tests.unit.execution.helpers import NO_LIMITS, T0, bar, core, limits, signal

MINUTE = timedelta(minutes=1)


def kept_model(kept: list[datetime], at: datetime) -> bool:
    """The original rule: a repeated time is refused; else insert, sort, keep the newest BARS_KEPT."""
    if at in kept:
        return False
    kept.append(at)
    kept.sort()
    del kept[:-BARS_KEPT]
    return True


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=120), min_size=1, max_size=160))
def test_kept_bars_match_the_scan_and_sort_rule_for_any_arrival_order(minutes: list[int]) -> None:
    c, model = core(), list[datetime]()
    for i in minutes:
        b = bar(i, 100 + i % 7)
        accepted = c._remember_bar(b) is not None
        assert accepted == kept_model(model, b.timestamp)
        assert [r.timestamp for r in c.state.bars["INFY"]] == model


def test_in_order_bars_keep_only_the_newest_window_in_time_order() -> None:
    c = core()
    for i in range(BARS_KEPT + 10):
        c.on_bar(bar(i, 100))
    kept = [r.timestamp for r in c.state.bars["INFY"]]
    assert kept == [T0 + MINUTE * i for i in range(10, BARS_KEPT + 10)]


def test_a_repeated_bar_after_newer_ones_is_still_refused() -> None:
    c = core()
    for i in (0, 1, 2):
        c.on_bar(bar(i, 100))
    assert c._remember_bar(bar(1, 100)) is None
    assert c._remember_bar(bar(2, 100)) is None
    assert len(c.state.bars["INFY"]) == 3


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)), min_size=1, max_size=40
    ),
    st.times(),
)
def test_session_calendar_gives_the_same_day_as_session_day(moments: list[datetime], start: time) -> None:
    rules, calendar = limits(session_start=start.replace(second=0, microsecond=0)), SessionCalendar()
    stamps = sorted(m.replace(tzinfo=UTC) for m in moments) + [m.replace(tzinfo=UTC) for m in moments]
    for at in stamps:
        assert calendar.day(at, rules) == session_day(at, rules)


def test_session_calendar_follows_a_new_session_start() -> None:
    calendar, at = SessionCalendar(), T0.replace(hour=3, minute=50)
    assert calendar.day(at, NO_LIMITS) == session_day(at, NO_LIMITS)
    late = limits(session_start=time(4, 0))
    assert calendar.day(at, late) == session_day(at, late) == "2026-01-04"


money = st.decimals(min_value=-(10**6), max_value=10**6, places=4, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(money, st.lists(st.tuples(money, money), max_size=5))
def test_equity_is_the_same_decimal_as_summing_market_values(
    cash: Decimal, holdings: list[tuple[Decimal, Decimal]]
) -> None:
    positions = {
        f"S{i}": PositionState(symbol=f"S{i}", quantity=q, last_price=p) for i, (q, p) in enumerate(holdings)
    }
    pf = Portfolio(cash=cash, positions=positions)
    expected = cash + sum((p.market_value for p in positions.values()), ZERO)
    assert str(pf.equity) == str(expected)


def test_peak_equity_keeps_the_old_peak_on_a_tie_and_moves_on_a_new_high() -> None:
    pf = Portfolio.starting(Decimal("100000"))
    pf.cash = Decimal("100000.00")
    pf.record_equity(T0, 10)
    assert str(pf.peak_equity) == "100000"  # max(peak, equity) kept the first of two equal values
    pf.cash = Decimal("100000.01")
    pf.record_equity(T0 + MINUTE, 10)
    assert pf.peak_equity == Decimal("100000.01")
    assert [t for t, _ in pf.equity_curve] == [T0, T0 + MINUTE]


def test_decisions_state_the_limits_in_force_after_the_config_is_replaced() -> None:
    c = core()
    b0, b1 = bar(0, 100), bar(1, 100)
    c.on_bar(b0)
    (first,) = c.on_signal(signal(b0)).of(RiskDecision)
    assert first.limits == NO_LIMITS.as_strings()
    tighter = limits(max_order_qty=Decimal(5))
    c.config = c.config.model_copy(update={"limits": tighter})
    c.on_bar(b1)
    (second,) = c.on_signal(signal(b1, "flat")).of(RiskDecision)
    assert second.limits == tighter.as_strings()
    assert second.limits["max_order_qty"] == "5"


class ScanParked(ExecutionCore):
    """``on_bar`` as it was before the parked-signal index (the reference): every bar scans all parked
    signals and decides its symbol's ready ones in (bar time, id) order, each removed just before."""

    def on_bar(self, bar: OHLCVBar) -> Outcome:
        out = Outcome()
        kept = self.state.bars.get(bar.symbol)
        newest = kept[-1].timestamp if kept else None
        ref = self._remember_bar(bar)
        if ref is None:
            return out
        state, at = self.state, bar.timestamp
        if newest is not None and at < newest:
            return out  # an older bar is only kept
        pf, limits = state.portfolio, self.config.limits
        pf.roll_session(self._sessions.day(at, limits))
        if state.pending:
            for order in [o for o in state.pending if o.symbol == bar.symbol and o.after < at]:
                out.extend(self._fill(order, ref.open, at, bar.event_id))
        pf.mark(bar.symbol, ref.close)
        pf.record_equity(at, self.config.equity_points_kept)
        if risk.breakers_armed(limits):
            out.extend(self._breakers(bar.event_id, at))
        if state.parked:
            ready = [s for s in self.state.parked if s.symbol == bar.symbol and s.bar_timestamp <= at]
            for sig in sorted(ready, key=lambda s: (s.bar_timestamp, str(s.event_id))):
                self.state.parked.remove(sig)
                out.extend(self._decide(sig))
        return out


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["AAA", "BBB", "CCC"]), st.integers(0, 12), st.booleans(), st.booleans()),
        min_size=1,
        max_size=60,
    )
)
def test_parked_signals_are_decided_as_by_a_scan_of_all_of_them(
    steps: list[tuple[str, int, bool, bool]],
) -> None:
    """Signals arriving before their bar (any symbols, any order, duplicates too) give the same events and
    state as the plain scan of every parked signal on every bar."""
    fast, plain = core(allow_short=True), core(allow_short=True)
    plain.__class__ = ScanParked
    for symbol, minute, is_signal, long in steps:
        b = bar(minute, 100 + minute % 5, symbol)
        if is_signal:
            s = signal(b, "long" if long else "short")
            got, want = fast.on_signal(s), plain.on_signal(s)
        else:
            got, want = fast.on_bar(b), plain.on_bar(b)
        assert [e.to_json() for e in got] == [e.to_json() for e in want]
        assert fast.state.model_dump_json() == plain.state.model_dump_json()


def history_of(log: list[tuple[str, BarRef]], symbol: str, at: datetime, until: datetime) -> list[BarRef]:
    """What ``ExecutionStore.bars_before`` gives from a log of every bar taken in (the service's history)."""
    refs = sorted((r for s, r in log if s == symbol), key=lambda r: r.timestamp)
    before = [r for r in refs if r.timestamp <= at][-2:]
    return before + [r for r in refs if at < r.timestamp < until]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["AAA", "BBB"]), st.integers(0, 40), st.booleans()), max_size=40),
    st.integers(2, 6),
)
def test_a_late_signal_with_the_bar_history_is_decided_as_if_every_bar_were_kept(
    signals: list[tuple[str, int, bool]], kept: int
) -> None:
    """Bars run far ahead of the signals (a replay at full speed): a signal whose bar left the kept
    window is decided and filled on the history exactly as a core that keeps every bar decides it."""
    small, full = core(allow_short=True), core(allow_short=True)
    small.config = small.config.model_copy(update={"bars_kept": kept})
    full.config = full.config.model_copy(update={"bars_kept": 10_000})
    small.new_bars = []
    late = 0
    bars = {
        s: [bar(i, 100 + (i * 7) % 11, s, open_=100 + (i * 3) % 5) for i in range(45)] for s in ("AAA", "BBB")
    }
    for minute in range(45):
        for symbol in ("AAA", "BBB"):
            assert [e.to_json() for e in small.on_bar(bars[symbol][minute])] == [
                e.to_json() for e in full.on_bar(bars[symbol][minute])
            ]
    for symbol, minute, long in signals:
        s = signal(bars[symbol][minute], "long" if long else "short", f"s{minute % 3}")
        until = small.history_from(s)
        history = history_of(small.new_bars, symbol, s.bar_timestamp, until) if until else []
        late += bool(history)
        got, want = small.on_signal(s, history), full.on_signal(s)
        assert [e.to_json() for e in got] == [e.to_json() for e in want]
        assert small.state.portfolio.model_dump_json() == full.state.portfolio.model_dump_json()
    if any(m < 45 - 6 for _, m, _ in signals):
        assert late  # the case was exercised
