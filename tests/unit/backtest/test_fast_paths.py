"""``Backtest.run`` skips reading the portfolio after a bar that left every position flat and produced no
event; it must give the equity curve, exposure and events of the plain loop that reads it after every bar.
``push`` builds one list instead of two; it must keep what the two-list version kept."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.backtest.engine import Backtest, execution_config, parse_sizing
from services.strategy.domain.base import push
from shared.contracts.market_data import OHLCVBar
from tests.unit.execution.helpers import bar

PARAMS = {"fast": 2, "slow": 4}


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


def plain_run(backtest: Backtest, bars: list[OHLCVBar], close_at_end: bool) -> dict[str, Any]:
    """The loop before the fast path: the portfolio's equity and exposure read after every bar."""
    stamps: list[datetime] = []
    values: list[float] = []
    exposed: list[bool] = []
    last: dict[str, OHLCVBar] = {}
    for b in bars:
        backtest.step(b)
        last[b.symbol] = b
        pf = backtest.core.state.portfolio
        equity, holding = float(pf.equity), pf.open_positions > 0
        if stamps and stamps[-1] == b.timestamp:
            values[-1], exposed[-1] = equity, holding
        else:
            stamps.append(b.timestamp)
            values.append(equity)
            exposed.append(holding)
    if close_at_end:
        backtest.close_at_end(last)
        values[-1] = float(backtest.core.state.portfolio.equity)
        exposed[-1] = backtest.core.state.portfolio.open_positions > 0
    return {
        "events": [e.to_json() for e in backtest.events],
        "equity": [(t.isoformat(), repr(v)) for t, v in zip(stamps, values, strict=True)],
        "exposed": exposed,
        "state": backtest.core.state.model_dump_json(),
    }


def fast_run(backtest: Backtest, bars: list[OHLCVBar], close_at_end: bool) -> dict[str, Any]:
    result = backtest.run(bars, close_at_end)
    stamps = [t.to_pydatetime() for t in result.equity.index]
    return {
        "events": [e.to_json() for e in backtest.events],
        "equity": [(t.isoformat(), repr(v)) for t, v in zip(stamps, result.equity, strict=True)],
        "exposed": result.exposed,
        "state": backtest.core.state.model_dump_json(),
    }


@pytest.mark.parametrize("close_at_end", [False, True])
@pytest.mark.parametrize(
    ("sizing", "commission", "short"),
    [("all", "0", False), ("percent:40", "0.001", True), ("qty:7", "0.002", True)],
)
def test_run_gives_the_equity_and_events_of_the_plain_loop(
    sizing: str, commission: str, short: bool, close_at_end: bool
) -> None:
    bars = crafted_bars()

    def fresh() -> Backtest:
        config = execution_config(
            Decimal(100_000), Decimal(commission), Decimal(3), parse_sizing(sizing, short), None
        )
        return Backtest.create("sma_cross", "sma_cross", {**PARAMS, "allow_short": short}, config)

    plain, fast = plain_run(fresh(), bars, close_at_end), fast_run(fresh(), bars, close_at_end)
    assert len(plain["events"]) > 40
    assert True in plain["exposed"]
    assert False in plain["exposed"]
    assert len({v for _, v in plain["equity"]}) > 20  # the curve moves while holding
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
