"""``ExecutionCore.on_quiet_bars`` takes a run of bars at once when none of them can produce anything; it must
leave exactly the state ``on_bar`` leaves bar by bar (kept bars, marks, session, peak), and refuse, having
changed nothing, every run it cannot take that way."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.execution.domain.engine import ExecutionCore, QuietBars
from shared.contracts.market_data import OHLCVBar
from tests.unit.execution.helpers import T0, bar, core, limits, signal

SYMBOLS = ("AAA", "BBB")
#: a step: bars of the symbols (minutes after the last, close, open), then perhaps a signal on one of them
STEP = st.tuples(
    st.lists(
        st.tuples(
            st.sampled_from(SYMBOLS),
            st.sampled_from([0, 1, 1, 1, 7, 600, 1440]),  # same minute, next, later, next session, next day
            st.integers(9_000, 11_000).map(lambda k: k / 100),
            st.integers(9_000, 11_000).map(lambda k: k / 100),
        ),
        max_size=25,
    ),
    st.one_of(st.none(), st.tuples(st.sampled_from(SYMBOLS), st.sampled_from(["long", "flat", "short"]))),
)


def quiet_core(**overrides: object) -> ExecutionCore:
    c = core(allow_short=True)
    c.config = c.config.model_copy(update={"equity_points_kept": 0, "bars_kept": 3, **overrides})
    return c


def as_run(bars: list[OHLCVBar]) -> QuietBars:
    return QuietBars(
        symbols=[b.symbol for b in bars],
        times=[b.timestamp for b in bars],
        opens=[b.open for b in bars],
        closes=[b.close for b in bars],
        event_id=lambda i: bars[i].event_id,
    )


def steps_to_bars(
    steps: Sequence[tuple[list[tuple[str, int, float, float]], object]],
) -> list[list[OHLCVBar]]:
    """Each step's bars, in time order (ties by symbol), a symbol's repeat of a minute dropped."""
    at, out = 0, []
    for rows, _ in steps:
        made: dict[tuple[int, str], OHLCVBar] = {}
        for symbol, gap, close, open_ in rows:
            at += gap
            made.setdefault((at, symbol), bar(at, close, symbol, open_=min(open_, close * 1.05)))
        out.append([made[k] for k in sorted(made)])
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(STEP, min_size=1, max_size=12))
def test_a_quiet_run_leaves_the_state_bar_by_bar_leaves(
    steps: list[tuple[list[tuple[str, int, float, float]], tuple[str, str] | None]],
) -> None:
    fast, plain = quiet_core(), quiet_core()
    for (_, wants), bars in zip(steps, steps_to_bars(steps), strict=True):
        before = fast.state.model_dump_json()
        equities = fast.on_quiet_bars(as_run(bars))
        want, after_each = [], []
        for b in bars:
            want += [e.to_json() for e in plain.on_bar(b)]
            after_each.append(str(plain.state.portfolio.equity))
        if equities is not None:
            assert not want  # the bars it took produced nothing bar by bar either
            assert [str(e) for e in equities] == after_each  # the equity after each bar, to the digit
        else:
            assert fast.state.model_dump_json() == before  # refused: nothing changed
            assert [e.to_json() for b in bars for e in fast.on_bar(b)] == want
        assert fast.state.model_dump_json() == plain.state.model_dump_json()
        if wants is not None and bars:
            symbol, target = wants
            last = [b for b in bars if b.symbol == symbol]
            if last:
                s = signal(last[-1], target)  # type: ignore[arg-type]
                assert [e.to_json() for e in fast.on_signal(s)] == [e.to_json() for e in plain.on_signal(s)]
    assert fast.state.model_dump_json() == plain.state.model_dump_json()


def test_a_run_with_a_pending_order_of_its_symbol_is_refused() -> None:
    c = quiet_core()
    b0 = bar(0, 100.0, "AAA")
    c.on_bar(b0)
    c.on_signal(signal(b0, "long"))
    assert c.state.pending
    assert c.on_quiet_bars(as_run([bar(1, 101.0, "AAA")])) is None
    assert c.on_quiet_bars(as_run([bar(1, 50.0, "BBB")])) is not None  # another symbol's bars are quiet


def test_a_run_is_refused_with_breakers_armed_or_an_equity_curve_to_keep() -> None:
    run = as_run([bar(5, 100.0, "AAA")])
    assert quiet_core(limits=limits(max_drawdown_pct=Decimal(5))).on_quiet_bars(run) is None
    assert quiet_core(equity_points_kept=500).on_quiet_bars(run) is None
    assert quiet_core().on_quiet_bars(run) == [Decimal(100_000)]


def test_two_open_positions_are_marked_in_turn() -> None:
    c, plain = quiet_core(), quiet_core()
    for x in (c, plain):
        for i, symbol in enumerate(SYMBOLS):
            b = bar(i, 100.0, symbol)
            x.on_bar(b)
            x.on_signal(signal(b, "long" if symbol == "AAA" else "short"))
            x.on_bar(bar(i + 2, 100.0, symbol))  # fills: 10 long AAA, 10 short BBB
    assert c.state.portfolio.open_positions == 2
    run = [bar(9, 105.0, "AAA"), bar(9, 97.5, "BBB"), bar(10, 99.0, "AAA"), bar(10, 90.0, "BBB")]
    equities = c.on_quiet_bars(as_run(run))
    assert equities is not None
    for b in run:
        plain.on_bar(b)
    assert equities == [Decimal(100_000) + d for d in (50, 75, 15, 90)]
    assert c.state.portfolio.peak_equity == Decimal(100_090)
    assert c.state.model_dump_json() == plain.state.model_dump_json()


def test_a_repeated_or_older_bar_is_refused() -> None:
    c = quiet_core()
    c.on_bar(bar(3, 100.0, "AAA"))
    assert c.on_quiet_bars(as_run([bar(3, 100.0, "AAA")])) is None
    assert c.on_quiet_bars(as_run([bar(4, 100.0, "AAA"), bar(2, 100.0, "AAA")])) is None
    assert c.on_quiet_bars(as_run([bar(4, 100.0, "AAA")])) is not None


def test_the_peak_is_the_held_symbols_best_close_and_the_session_opens_before_its_first_bar() -> None:
    c, plain = quiet_core(), quiet_core()
    b0 = bar(0, 100.0, "AAA")
    for x in (c, plain):
        x.on_bar(b0)
        x.on_signal(signal(b0, "long"))
        x.on_bar(bar(1, 100.0, "AAA"))  # 10 units bought at 100
    day = 24 * 60
    closes = [(2, 120.0), (3, 90.0), (day, 95.0), (day + 1, 110.0)]  # up, down, next day: down then up
    run = [bar(m, cl, "AAA") for m, cl in closes]
    assert c.on_quiet_bars(as_run(run)) is not None
    for b in run:
        plain.on_bar(b)
    pf = c.state.portfolio
    assert pf.peak_equity == Decimal(100_000) + 10 * 20  # at the 120 close
    assert pf.session_start_equity == Decimal(100_000) - 10 * 10  # before the first bar of the next day (90)
    assert pf.session_day == (T0 + timedelta(days=1)).date().isoformat()
    assert c.state.model_dump_json() == plain.state.model_dump_json()


def test_the_bars_before_the_held_symbols_first_count_at_its_mark_for_the_peak() -> None:
    """A state whose peak is below its equity (a zero peak, as a portfolio built without ``starting``):
    bar by bar, the first bar (another symbol's) raises the peak to the equity at the held mark."""
    c, plain = quiet_core(), quiet_core()
    b0 = bar(0, 100.0, "AAA")
    for x in (c, plain):
        x.on_bar(b0)
        x.on_signal(signal(b0, "long"))
        x.on_bar(bar(1, 100.0, "AAA"))
        x.state.portfolio.peak_equity = Decimal(0)
    run = [bar(2, 50.0, "BBB"), bar(3, 90.0, "AAA")]
    assert c.on_quiet_bars(as_run(run)) is not None
    for b in run:
        plain.on_bar(b)
    assert c.state.portfolio.peak_equity == Decimal(100_000)
    assert c.state.model_dump_json() == plain.state.model_dump_json()


def test_an_equity_equal_to_the_peak_keeps_the_peaks_digits() -> None:
    """A round trip at one price leaves cash 100000.00, equal to the starting peak 100000: bar by bar the
    peak keeps its own digits (``max`` keeps the first of equals), and so must a quiet run."""
    c, plain = quiet_core(), quiet_core()
    b0 = bar(0, 100.0, "AAA")
    for x in (c, plain):
        x.on_bar(b0)
        x.on_signal(signal(b0, "long"))
        b1 = bar(1, 100.0, "AAA")
        x.on_bar(b1)
        x.on_signal(signal(b1, "flat"))
        x.on_bar(bar(2, 100.0, "AAA"))  # sold at 100: flat again
    assert str(c.state.portfolio.cash) == "100000.00"
    run = [bar(3, 100.5, "AAA"), bar(4, 100.0, "BBB")]
    assert c.on_quiet_bars(as_run(run)) is not None
    for b in run:
        plain.on_bar(b)
    assert str(c.state.portfolio.peak_equity) == "100000"
    assert c.state.model_dump_json() == plain.state.model_dump_json()
