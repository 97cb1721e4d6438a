"""Signals that arrive after later bars (a fast replay: the bars run ahead of the strategies) fill at the bar
after their own, from the kept bars or the history. The equity curve then shows what it would have shown had
each signal come in time: every point from the fill on is valued with the position, at that time's close,
less what the fill cost. Before, the late fills' P&L all landed on the newest point, so the dashboard's curve
stayed flat through a replay and then jumped."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from services.execution.domain.config import CostModel
from services.execution.domain.engine import ExecutionCore
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import SignalEvent, Target
from tests.unit.execution.helpers import FREE, bar, core, signal

D = Decimal
COSTS = CostModel(slippage_bps=D(5), commission_pct=D("0.1"), flat_fee=D(0))
SYMBOLS = ("INFY", "TCS")


def plan() -> tuple[list[OHLCVBar], list[SignalEvent]]:
    """Bars of two symbols at the same minutes, and signals that go long, flat and short on some of them."""
    bars, signals = [], []
    targets: list[Target] = ["long", "flat", "short", "long", "flat"]
    for i in range(40):
        for n, symbol in enumerate(SYMBOLS):
            close = 100 + 10 * n + 3 * math.sin(i / 4 + n)
            b = bar(i, round(close, 2), symbol, open_=round(close - 0.5 * math.cos(i + n), 2))
            bars.append(b)
            if i % 6 == 2 + n:
                signals.append(signal(b, targets[(i // 6) % len(targets)], f"s{n}"))
    return bars, signals


def in_time(c: ExecutionCore, bars: list[OHLCVBar], signals: list[SignalEvent]) -> None:
    by_bar = {s.bar_event_id: s for s in signals}
    for b in bars:
        c.on_bar(b)
        if b.event_id in by_bar:
            c.on_signal(by_bar[b.event_id])


def late(c: ExecutionCore, bars: list[OHLCVBar], signals: list[SignalEvent], ahead: int) -> None:
    """Each signal only once the bars ran ``ahead`` minutes past its bar (all of them at the end)."""
    waiting = list(signals)
    for b in bars:
        c.on_bar(b)
        while waiting and (b.timestamp - waiting[0].bar_timestamp).total_seconds() >= ahead * 60:
            c.on_signal(waiting.pop(0))
    for s in waiting:
        c.on_signal(s)


@pytest.mark.parametrize("costs", [FREE, COSTS], ids=["free", "commission and slippage"])
@pytest.mark.parametrize("ahead", [3, 10_000], ids=["a few bars late", "after every bar"])
def test_the_curve_after_late_signals_is_the_curve_of_signals_in_time(costs: CostModel, ahead: int) -> None:
    bars, signals = plan()
    straight, behind = core(qty=3, costs=costs, allow_short=True), core(qty=3, costs=costs, allow_short=True)
    in_time(straight, bars, signals)
    late(behind, bars, signals, ahead)
    open_positions = [p for p in straight.state.portfolio.positions.values() if p.quantity != 0]
    assert open_positions, "the plan must leave positions open"
    assert behind.state.portfolio.equity == straight.state.portfolio.equity
    assert behind.state.portfolio.equity_curve == straight.state.portfolio.equity_curve
    values = {e for _, e in straight.state.portfolio.equity_curve}
    assert len(values) > 20  # the curve moves: the comparison above is not of flat lines


def test_a_late_fill_leaves_the_points_before_it_alone() -> None:
    c = core(qty=10)
    bars = [bar(i, 100.0 + i) for i in range(8)]
    for b in bars:
        c.on_bar(b)
    before = list(c.state.portfolio.equity_curve)
    c.on_signal(signal(bars[3]))  # fills at bar 4's open (104), after bars up to 7 (close 107)
    curve = c.state.portfolio.equity_curve
    assert curve[:4] == before[:4]
    assert [e for _, e in curve[4:]] == [D(100_000), D(100_010), D(100_020), D(100_030)]
