"""``bastion backtest --optimize``: a grid search over strategy params, each point a full backtest.

A grid is written as ``name=LO..HI`` (every integer, or ``LO..HI:STEP`` for another step, floats allowed),
or ``name=A,B,C`` (a list of values, read as YAML scalars). Every combination runs the same engine as a
single backtest; a combination the strategy rejects (say ``fast >= slow``) is skipped and counted, not fatal.
Results are sorted by one statistic of ``stats.compute``, best first; a missing figure (no trades, say)
sorts last. For a strategy that uses insights, the points of a grid (of each worker process) share the
insights, built once (``SharedInsights``), when the history is small enough to keep them all.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import signal
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from bastion.backtest import stats
from bastion.backtest.engine import Backtest, BacktestError, Bars, SharedInsights, as_series
from bastion.backtest.trips import round_trips
from services.execution.domain.config import ExecutionConfig
from services.strategy.domain.registry import StrategyConfigError

#: The statistics a grid can be sorted by, and whether bigger is better.
SORTABLE: dict[str, bool] = {
    "total_return_pct": True,
    "cagr_pct": True,
    "sharpe": True,
    "sortino": True,
    "max_drawdown_pct": True,  # a drawdown is negative: closer to 0 is better
    "max_drawdown_days": False,
    "volatility_ann_pct": False,
    "win_rate_pct": True,
    "profit_factor": True,
    "avg_trade": True,
    "trades": True,
    "final_equity": True,
    "exposure_pct": True,
    "lowest_cash": True,  # below 0: bought on credit
}
#: Beyond this many combinations the user is asked to narrow the grid instead of waiting for hours.
MAX_POINTS = 10_000


@dataclass(frozen=True)
class GridPoint:
    params: dict[str, Any]
    figures: dict[str, Any]


@dataclass(frozen=True)
class GridResult:
    points: list[GridPoint]
    skipped: list[tuple[dict[str, Any], str]]


def _number(text: str, spec: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise BacktestError(f"--optimize {spec!r}: {text.strip()!r} is not a number") from None
    if not value.is_finite():
        raise BacktestError(f"--optimize {spec!r}: {text.strip()!r} is not a finite number")
    return value


def _range(spec: str, text: str) -> list[Any]:
    bounds, _, step_text = text.partition(":")
    lo_text, _, hi_text = bounds.partition("..")
    lo, hi = _number(lo_text, spec), _number(hi_text, spec)
    step = _number(step_text, spec) if step_text else Decimal(1)
    if step <= 0:
        raise BacktestError(f"--optimize {spec!r}: the step must be > 0")
    if hi < lo:
        raise BacktestError(f"--optimize {spec!r}: {hi} is below {lo}")
    count = int((hi - lo) / step) + 1
    if count > MAX_POINTS:
        raise BacktestError(f"--optimize {spec!r}: {count:,} values; narrow the range or raise the step")
    values = [lo + i * step for i in range(count)]
    integral = all(v == v.to_integral_value() for v in (lo, step))
    return [int(v) if integral else float(v) for v in values]


def parse_grid(specs: Iterable[str]) -> dict[str, list[Any]]:
    """``["fast=5..30", "slow=20..100:10", "mode=a,b"]`` -> ``{name: [values]}``; a spec string may also hold
    several space-separated specs. Raises ``BacktestError`` with the offending spec named."""
    grid: dict[str, list[Any]] = {}
    for spec in (part for text in specs for part in text.split()):
        name, sep, text = spec.partition("=")
        name = name.strip()
        if not sep or not name or not text.strip():
            raise BacktestError(f"--optimize {spec!r}: expected name=LO..HI[:STEP] or name=A,B,C")
        if name in grid:
            raise BacktestError(f"--optimize: {name!r} is given twice")
        if ".." in text:
            grid[name] = _range(spec, text)
        else:
            grid[name] = [yaml.safe_load(v) for v in text.split(",") if v.strip()]
            if not grid[name]:
                raise BacktestError(f"--optimize {spec!r}: no values")
    if not grid:
        raise BacktestError("--optimize: no parameters given")
    return grid


def combinations(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in the order the grid lists them."""
    total = math.prod(len(v) for v in grid.values())
    if total > MAX_POINTS:
        raise BacktestError(f"--optimize: {total:,} combinations (at most {MAX_POINTS:,}); narrow the grid")
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]


def sort_key(stat: str) -> Callable[[GridPoint], tuple[int, float]]:
    """Best first: missing figures last, then by value in the statistic's better direction."""
    if stat not in SORTABLE:
        raise BacktestError(f"--maximize {stat!r}: choose one of {', '.join(sorted(SORTABLE))}")
    sign = -1.0 if SORTABLE[stat] else 1.0

    def key(point: GridPoint) -> tuple[int, float]:
        value = point.figures.get(stat)
        return (1, 0.0) if value is None else (0, sign * float(value))

    return key


#: What one grid point gives: its figures, or why the strategy rejected its params.
Outcome = tuple[dict[str, Any] | None, str | None]


def _point(
    strategy: str,
    params: dict[str, Any],
    config: ExecutionConfig,
    bars: Bars,
    close_at_end: bool,
    shared: SharedInsights | None = None,
) -> Outcome:
    try:
        engine = Backtest.create(strategy, strategy, params, config, shared)
    except StrategyConfigError as exc:
        return None, str(exc)
    result = engine.run(bars, close_at_end=close_at_end)
    trips = round_trips(result.fills)
    return stats.compute(result.equity, float(config.initial_cash), trips, result.exposed, result.fills), None


#: A worker process's share of the grid's inputs, set once by ``_start_worker`` (not sent with each point).
_WORKER: dict[str, Any] = {}


def _start_worker(strategy: str, config: ExecutionConfig, bars: Bars, close_at_end: bool) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
    _WORKER.update(strategy=strategy, config=config, bars=bars, close_at_end=close_at_end)
    _WORKER["shared"] = _shared(bars)


def _worker_point(params: dict[str, Any]) -> Outcome:
    w = _WORKER
    return _point(w["strategy"], params, w["config"], w["bars"], w["close_at_end"], w["shared"])


def _shared(series: Bars) -> SharedInsights | None:
    """Insights to share between the points of a grid over ``series``, if the history is small enough."""
    return SharedInsights() if SharedInsights.fits(as_series(series)) else None


def run_grid(
    strategy: str,
    base_params: dict[str, Any],
    grid: dict[str, list[Any]],
    config: ExecutionConfig,
    bars: Bars,
    maximize: str,
    close_at_end: bool = False,
    progress: Callable[[], None] | None = None,
    jobs: int = 1,
) -> GridResult:
    """Backtest every combination of ``grid`` over ``base_params``; points sorted by ``maximize`` (ties in
    grid order). ``jobs`` > 1 runs the points in that many worker processes (each holding the bars and one
    backtest at a time); the result is the same. A ``StrategyRaised`` stops the whole grid."""
    key = sort_key(maximize)
    combos = combinations(grid)
    bars = as_series(bars)  # once, so every point runs over the same series objects (and shares insights)
    outcomes: list[Outcome | None] = [None] * len(combos)
    workers = min(jobs, len(combos))
    if workers <= 1:
        shared = _shared(bars)
        for n, combo in enumerate(combos):
            outcomes[n] = _point(strategy, base_params | combo, config, bars, close_at_end, shared)
            if progress is not None:
                progress()
    else:
        context = multiprocessing.get_context("spawn")  # no fork of a process with threads (the progress bar)
        start = (strategy, config, bars, close_at_end)
        with ProcessPoolExecutor(workers, context, initializer=_start_worker, initargs=start) as pool:
            futures = {pool.submit(_worker_point, base_params | c): n for n, c in enumerate(combos)}
            failed: dict[int, BaseException] = {}
            try:
                for future in as_completed(futures):
                    n = futures[future]
                    error = None if future.cancelled() else future.exception()
                    if error is not None:  # the later points are dropped; the earlier ones finish
                        failed[n] = error
                        for other, m in futures.items():
                            if m > n:
                                other.cancel()
                    elif not future.cancelled():
                        outcomes[n] = future.result()
                        if progress is not None:
                            progress()
            except BaseException:  # Ctrl-C: the points not started are not waited for
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            if failed:  # the first failure in grid order, as one process would have met it
                raise failed[min(failed)]
    points: list[GridPoint] = []
    skipped: list[tuple[dict[str, Any], str]] = []
    for combo, outcome in zip(combos, outcomes, strict=True):
        assert outcome is not None  # every point ran, or the grid raised above
        figures, rejected = outcome
        if figures is not None:
            points.append(GridPoint(combo, figures))
        else:
            skipped.append((combo, rejected or ""))
    return GridResult(sorted(points, key=key), skipped)
