"""``Backtest.run`` decides per symbol over batches of bars, then executes bar by bar only where something
happens (a decision, the fill after it) and takes the bars between as quiet runs. It must give exactly the
events, equity curve, exposure and final portfolio of the plain loop: every bar, in (time, symbol) order,
through the core, the strategy's ``on_bar`` and the core again, with the service's own config (64 kept
bars, an equity curve) and the equity read after every bar. ``push`` builds one list instead of two; it must
keep what the two-list version kept."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.backtest.engine import Backtest, Cursor, _bar_row, execution_config, parse_sizing
from services.analytics.config import load_config as load_analytics_config
from services.analytics.domain.indicators.bundle import IndicatorSet
from services.analytics.domain.insight import BarRow, build_insight
from services.execution.domain.config import ExecutionConfig, RiskLimits
from services.execution.domain.engine import ExecutionCore
from services.marketdata.domain.bars import BarSeries
from services.strategy.domain import BaseStrategy, StrategyContext
from services.strategy.domain.base import push
from services.strategy.domain.registry import create_strategy
from services.strategy.domain.signals import build_signal
from shared.contracts.envelope import Event
from shared.contracts.market_data import OHLCVBar
from tests.unit.execution.helpers import bar


def crafted_bars() -> list[OHLCVBar]:
    """Two symbols over three days: swings that cross the SMAs, long flat stretches, and INFY missing on
    some minutes, so bars of one time are sometimes one and sometimes two."""
    bars = []
    for day in range(3):
        for i in range(90):
            wave = (i // 6) % 4
            infy = 100 + (3 * wave if wave < 3 else -4) + (i % 2) * 0.25 + day
            tcs = 200 - (5 * wave if (i // 15) % 2 else 0) + (i % 3) * 0.5
            if i % 7:
                bars.append(bar(i, infy, symbol="INFY", open_=infy - 0.5, day=day))
            bars.append(bar(i, tcs, symbol="TCS", open_=tcs + 0.25, day=day))
    bars.sort(key=lambda b: (b.timestamp, b.symbol))
    return bars


def plain_run(
    strategy: BaseStrategy[Any], config: ExecutionConfig, bars: list[OHLCVBar], close_at_end: bool
) -> dict[str, Any]:
    """The reference: every bar through the core, the insight (if asked for), ``on_bar`` and the core."""
    core, analytics = ExecutionCore(config), load_analytics_config()
    indicators: dict[str, IndicatorSet] = {}
    cursors: dict[str, Cursor] = {}
    events: list[Event] = []
    stamps: list[datetime] = []
    values: list[float] = []
    exposed: list[bool] = []
    last: dict[str, OHLCVBar] = {}
    for b in bars:
        events.extend(core.on_bar(b).events)
        insight = None
        if strategy.requires_insights:
            values_now = indicators.setdefault(b.symbol, IndicatorSet()).update(b.high, b.low, b.close)
            insight = build_insight(BarRow.of(b), values_now, analytics)
        cursor = cursors.setdefault(b.symbol, Cursor())
        ctx = StrategyContext(b.symbol, strategy.instance_id, cursor.target, cursor.state)
        decision, cursor.state = strategy.on_bar(b, insight, ctx)
        if decision is not None:
            signal = build_signal(strategy, b, insight, decision)
            cursor.target = decision.target
            events.append(signal)
            events.extend(core.on_signal(signal).events)
        last[b.symbol] = b
        pf = core.state.portfolio
        if stamps and stamps[-1] == b.timestamp:
            values[-1], exposed[-1] = float(pf.equity), pf.open_positions > 0
        else:
            stamps.append(b.timestamp)
            values.append(float(pf.equity))
            exposed.append(pf.open_positions > 0)
    if close_at_end:
        closer = Backtest(strategy, config)
        closer.core = core
        closer.close_at_end(last)
        events += closer.events
        values[-1] = float(core.state.portfolio.equity)
        exposed[-1] = core.state.portfolio.open_positions > 0
    return outputs(events, stamps, values, exposed, core)


def outputs(
    events: list[Event], stamps: list[datetime], values: list[float], exposed: list[bool], core: ExecutionCore
) -> dict[str, Any]:
    pf = core.state.portfolio
    return {
        "events": [e.to_json() for e in events],
        "equity": [(t.isoformat(), repr(v)) for t, v in zip(stamps, values, strict=True)],
        "exposed": exposed,
        "portfolio": pf.model_dump_json(exclude={"equity_curve"}),
        "pending": [o.model_dump_json() for o in core.state.pending],
    }


def fast_run(
    strategy: BaseStrategy[Any], config: ExecutionConfig, bars: list[OHLCVBar], close_at_end: bool
) -> dict[str, Any]:
    backtest = Backtest(strategy, config)
    result = backtest.run(bars, close_at_end)
    stamps = [t.to_pydatetime() for t in result.equity.index]
    return outputs(backtest.events, stamps, list(result.equity), result.exposed, backtest.core)


CASES = [
    ("sma_cross", {"fast": 2, "slow": 4}, "all", "0", False),
    ("sma_cross", {"fast": 2, "slow": 4, "allow_short": True}, "percent:40", "0.001", False),
    ("sma_cross", {"fast": 3, "slow": 5, "allow_short": True}, "qty:7", "0.002", False),
    ("sma_cross", {"fast": 2, "slow": 4, "allow_short": True}, "qty:7", "0.002", True),  # breakers armed
    ("ehma_pivot", {"period": 6, "pivot": 1, "allow_short": True}, "qty:5", "0.001", False),
    ("confluence_consumer", {"allow_short": True}, "percent:30", "0", False),
    ("regime_adaptive", {"allow_short": True}, "all", "0.001", False),
]


@pytest.mark.parametrize("close_at_end", [False, True])
@pytest.mark.parametrize(("name", "params", "sizing", "commission", "breakers"), CASES)
def test_run_gives_the_outputs_of_the_plain_loop(
    name: str, params: dict[str, Any], sizing: str, commission: str, breakers: bool, close_at_end: bool
) -> None:
    bars = crafted_bars()
    short = bool(params.get("allow_short"))
    base = None
    if breakers:  # the per-bar path throughout: the core refuses quiet runs while a breaker is armed
        limits = RiskLimits.off().model_copy(update={"max_drawdown_pct": Decimal(50)})
        base = ExecutionConfig(limits=limits)
    config = execution_config(
        Decimal(100_000), Decimal(commission), Decimal(3), parse_sizing(sizing, short), base
    )
    plain = plain_run(create_strategy(name, name, params), config, bars, close_at_end)
    fast = fast_run(create_strategy(name, name, params), config, bars, close_at_end)
    if name == "sma_cross":
        assert len(plain["events"]) > 40
        assert True in plain["exposed"]
        assert False in plain["exposed"]
        assert len({v for _, v in plain["equity"]}) > 20  # the curve moves while holding
    assert fast == plain


def test_one_symbol_of_many_bars_gives_the_outputs_of_the_plain_loop() -> None:
    """Long quiet runs of one symbol, holding and flat, across sessions."""
    bars = [
        bar(i % 300, 100 + ((i * 37) % 23) * 0.35 - (i // 50 % 3), open_=100 + (i % 5) * 0.1, day=i // 300)
        for i in range(1500)
    ]
    config = execution_config(
        Decimal(50_000), Decimal("0.0005"), Decimal(2), parse_sizing("all", False), None
    )
    params = {"fast": 5, "slow": 40}
    plain = plain_run(create_strategy("sma_cross", "s", params), config, bars, False)
    fast = fast_run(create_strategy("sma_cross", "s", params), config, bars, False)
    assert len(plain["events"]) > 20
    assert fast == plain


@given(
    st.lists(st.floats(allow_nan=False), max_size=12),
    st.floats(allow_nan=False),
    st.integers(min_value=-3, max_value=15),
)
def test_push_keeps_what_the_two_list_version_kept(window: list[float], value: float, size: int) -> None:
    before = list(window)
    assert push(window, value, size) == [*window, value][-size:]
    assert push(tuple(window), value, size) == [*window, value][-size:]
    assert window == before  # the state's list is never changed
    assert push(window, value, size) is not window


def test_an_insights_bar_row_is_the_one_of_the_bars_event() -> None:
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01 03:45", periods=50, freq="1min", tz="UTC"),
            "open": np.linspace(100, 110, 50),
            "high": np.linspace(101, 111, 50),
            "low": np.linspace(99, 109, 50),
            "close": np.linspace(100.5, 110.5, 50),
            "volume": 10.0,
        }
    )
    columns = BarSeries.of_frame(frame, "INFY", "1m", "file:infy.csv")
    events = BarSeries.of_events(columns.events())
    assert not columns.wraps_events
    assert events.wraps_events
    for series in (columns, events):
        for i in (0, 17, 49):
            assert _bar_row(series, i) == BarRow.of(series.bar(i))
