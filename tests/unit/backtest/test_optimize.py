"""`bastion backtest --optimize`: grid syntax, each point a real backtest, best first, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from bastion.backtest import engine, optimize
from bastion.backtest.engine import (
    Backtest,
    BacktestError,
    SharedInsights,
    as_series,
    execution_config,
    load_bars,
    parse_sizing,
)
from bastion.backtest.optimize import GridPoint, combinations, parse_grid, run_grid, sort_key
from bastion.backtest.stats import compute
from bastion.backtest.trips import round_trips
from services.analytics.domain.indicators.bundle import IndicatorSet
from services.marketdata.domain.bars import BarSeries
from shared.contracts.analytics import InsightEvent
from tests.unit.backtest.test_fast_paths import crafted_bars
from tests.unit.backtest.test_semantics import CLOSES, write_csv

QTY_10 = execution_config(Decimal(100_000), Decimal(0), Decimal(0), parse_sizing("qty:10", False), None)


def test_ranges_steps_and_lists_parse_to_values() -> None:
    grid = parse_grid(["fast=2..4", "slow=10..20:5 ratio=0.5..1.0:0.25", "mode=a,b"])
    assert grid == {
        "fast": [2, 3, 4],
        "slow": [10, 15, 20],
        "ratio": [0.5, 0.75, 1.0],
        "mode": ["a", "b"],
    }
    assert len(combinations(grid)) == 3 * 3 * 3 * 2
    assert combinations({"a": [1, 2], "b": [3]}) == [{"a": 1, "b": 3}, {"a": 2, "b": 3}]


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["fast"], "expected name=LO..HI"),
        (["fast=x..3"], "'x' is not a number"),
        (["fast=5..2"], "is below"),
        (["fast=1..5:0"], "step must be > 0"),
        (["fast=1..3", "fast=4..5"], "given twice"),
        (["a=1..200", "b=1..200"], "narrow the grid"),
        ([], "no parameters"),
    ],
)
def test_bad_grids_are_clear_errors(specs: list[str], message: str) -> None:
    with pytest.raises(BacktestError, match=message):
        combinations(parse_grid(specs))


def test_missing_figures_sort_last_and_drawdown_closest_to_zero_wins() -> None:
    points = [
        GridPoint({"i": i}, {"sharpe": s, "max_drawdown_pct": d})
        for i, (s, d) in enumerate([(None, -5.0), (0.5, -20.0), (1.5, -1.0)])
    ]
    assert [p.params["i"] for p in sorted(points, key=sort_key("sharpe"))] == [2, 1, 0]
    assert [p.params["i"] for p in sorted(points, key=sort_key("max_drawdown_pct"))] == [2, 0, 1]
    with pytest.raises(BacktestError, match="choose one of"):
        sort_key("luck")


def test_every_point_equals_a_single_backtest_and_rejected_combinations_are_skipped(tmp_path: Path) -> None:
    bars = load_bars([write_csv(tmp_path / "infy.csv")], ["INFY"], "1d", None, None)
    config = execution_config(Decimal(100_000), Decimal(0), Decimal(0), parse_sizing("qty:10", False), None)
    result = run_grid("sma_cross", {}, {"fast": [1, 2, 3], "slow": [3, 4]}, config, bars, "total_return_pct")
    assert sorted((c["fast"], c["slow"]) for c, _ in result.skipped) == [(3, 3)]
    assert "fast (3) must be smaller than slow (3)" in result.skipped[0][1]
    assert len(result.points) == 5
    returns = [p.figures["total_return_pct"] for p in result.points]
    assert returns == sorted(returns, reverse=True)
    for point in result.points:
        single = Backtest.create("sma_cross", "sma_cross", point.params, config).run(bars)
        figures = compute(single.equity, 100_000.0, round_trips(single.fills), single.exposed, single.fills)
        assert point.figures == figures


def test_worker_processes_give_the_same_grid_in_the_same_order(tmp_path: Path) -> None:
    bars = load_bars([write_csv(tmp_path / "infy.csv")], ["INFY"], "1d", None, None)
    config = execution_config(Decimal(100_000), Decimal(0), Decimal(0), parse_sizing("qty:10", False), None)
    grid = {"fast": [1, 2, 3, 4], "slow": [3, 4, 5]}
    alone = run_grid("sma_cross", {}, grid, config, bars, "trades")
    ticks: list[int] = []
    pooled = run_grid("sma_cross", {}, grid, config, bars, "trades", progress=lambda: ticks.append(1), jobs=2)
    assert pooled == alone
    assert len(ticks) == 12
    trades = [p.figures["trades"] for p in alone.points]
    assert len(set(trades)) < len(trades)  # ties, kept in grid order either way


def test_cli_prints_the_best_writes_every_point_and_the_best_report(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "infy.csv")
    out, html = tmp_path / "grid.json", tmp_path / "best.html"
    base = [sys.executable, "-m", "bastion", "backtest", "--strategy", "sma_cross", "--input", str(csv)]
    args = [*base, "--symbol", "INFY", "--sizing", "qty:10", "--optimize", "fast=1..3 slow=3..4"]
    done = subprocess.run(
        [*args, "--maximize", "total_return_pct", "--json", str(out), "--report", str(html)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert len(doc["results"]) == 5
    assert len(doc["skipped"]) == 1
    assert doc["settings"] == {
        "strategy": "sma_cross",
        "id": "sma_cross",
        "params": {},
        "inputs": [str(csv)],
        "symbols": ["INFY"],
        "from": None,
        "to": None,
        "tz": "UTC",
        "interval": "1d",  # the file's daily bars' spacing
        "bars": len(CLOSES),
        "cash": "100000",
        "commission": "0.0",
        "slippage_bps": "0",
        "sizing": "qty:10",
        "close_at_end": False,
    }  # what the grid ran on: its inputs, range and costs
    best = doc["results"][0]["params"]
    assert f"best: --set fast={best['fast']} --set slow={best['slow']}" in done.stdout
    assert "INFY" in html.read_text()
    pooled = subprocess.run(
        [*args, "--maximize", "total_return_pct", "--json", str(out), "--jobs", "0"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert pooled.returncode == 0, pooled.stderr
    assert json.loads(out.read_text()) == doc
    bad = subprocess.run(
        [*base, "--optimize", "fast=9..1"], capture_output=True, text=True, check=False, timeout=120
    )
    assert bad.returncode == 2
    assert "is below" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_backtests_that_share_insights_give_exactly_the_events_of_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "INSIGHT_CHUNK", 37)  # many batches: the shared slices meet batch edges
    series = as_series(crafted_bars())  # two symbols
    shared = SharedInsights()
    for name, params in [
        ("confluence_consumer", {"min_confidence": 0.2, "exit_confidence": 0.1}),
        ("confluence_consumer", {"min_confidence": 0.6, "exit_confidence": 0.2}),
        ("regime_adaptive", {}),
    ]:
        own = Backtest.create(name, name, params, QTY_10).run(series)
        taken = Backtest.create(name, name, params, QTY_10, shared).run(series)
        assert own.fills, name  # the bars make these strategies trade
        for kind in ("insights", "signals", "decisions", "orders", "fills"):
            assert getattr(taken, kind) == getattr(own, kind), (name, kind)
        assert taken.equity.equals(own.equity)
        assert taken.exposed == own.exposed


def test_shared_insights_are_built_once_per_series_object() -> None:
    series = as_series(crafted_bars())
    built: list[BarSeries] = []

    def build(s: BarSeries) -> list[InsightEvent]:
        built.append(s)
        return []

    shared = SharedInsights()
    first = shared.of(series[0], build)
    assert shared.of(series[0], build) is first
    shared.of(series[1], build)
    again = BarSeries.of_events([series[0].bar(i) for i in range(len(series[0]))])  # same symbol, new object
    shared.of(again, build)
    assert built == [series[0], series[1], again]


def test_a_grid_of_an_insight_strategy_builds_the_insights_once_unless_the_history_is_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, int, int]] = []
    build = Backtest._insights

    def counted(self: Backtest, series: BarSeries, lo: int, hi: int, ind: IndicatorSet) -> list[InsightEvent]:
        calls.append((series.symbol, lo, hi))
        return build(self, series, lo, hi, ind)

    monkeypatch.setattr(Backtest, "_insights", counted)
    bars = crafted_bars()
    grid = {"min_confidence": [0.2, 0.4, 0.6], "exit_confidence": [0.1, 0.2]}
    shared = run_grid("confluence_consumer", {}, grid, QTY_10, bars, "trades")
    counts = {s: sum(b.symbol == s for b in bars) for s in ("INFY", "TCS")}
    assert sorted(calls) == [("INFY", 0, counts["INFY"]), ("TCS", 0, counts["TCS"])]  # every bar, once
    for point in shared.points:
        single = Backtest.create("confluence_consumer", "confluence_consumer", point.params, QTY_10).run(bars)
        assert point.figures == compute(
            single.equity, 100_000.0, round_trips(single.fills), single.exposed, single.fills
        )
    calls.clear()
    monkeypatch.setattr(engine, "SHARED_INSIGHT_BARS", len(bars) - 1)  # too long to keep: point by point
    assert run_grid("confluence_consumer", {}, grid, QTY_10, bars, "trades") == shared
    assert len(calls) == 6 * 2


def test_a_worker_process_builds_the_insights_once_for_all_its_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What each process of ``--jobs N`` runs (``_start_worker``, then ``_worker_point`` per point), here in
    this process: its points share the insights of the bars it was started with."""
    calls: list[str] = []
    build = Backtest._insights

    def counted(self: Backtest, series: BarSeries, lo: int, hi: int, ind: IndicatorSet) -> list[InsightEvent]:
        calls.append(series.symbol)
        return build(self, series, lo, hi, ind)

    monkeypatch.setattr(Backtest, "_insights", counted)
    monkeypatch.setattr(optimize.signal, "signal", lambda *_: None)  # the worker's SIGINT setting, not ours
    monkeypatch.setattr(optimize, "_WORKER", {})
    bars = as_series(crafted_bars())
    optimize._start_worker("confluence_consumer", QTY_10, bars, False)
    points = [{"min_confidence": c, "exit_confidence": 0.1} for c in (0.2, 0.4, 0.6)]
    outcomes = [optimize._worker_point(p) for p in points]
    assert sorted(calls) == ["INFY", "TCS"]  # once for the three points
    for params, (figures, _) in zip(points, outcomes, strict=True):
        single = Backtest.create("confluence_consumer", "confluence_consumer", params, QTY_10).run(bars)
        assert figures == compute(
            single.equity, 100_000.0, round_trips(single.fills), single.exposed, single.fills
        )
