"""``bastion backtest --optimize``: a grid search over strategy params, each point a full backtest.

A grid is written as ``name=LO..HI`` (every integer, or ``LO..HI:STEP`` for another step, floats allowed),
or ``name=A,B,C`` (a list of values, read as YAML scalars). Every combination runs the same engine as a
single backtest; a combination the strategy rejects (say ``fast >= slow``) is skipped and counted, not fatal.
Results are sorted by one statistic of ``stats.compute``, best first; a missing figure (no trades, say)
sorts last.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from bastion.backtest import stats
from bastion.backtest.engine import Backtest, BacktestError, Bars
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


def run_grid(
    strategy: str,
    base_params: dict[str, Any],
    grid: dict[str, list[Any]],
    config: ExecutionConfig,
    bars: Bars,
    maximize: str,
    close_at_end: bool = False,
    progress: Callable[[], None] | None = None,
) -> GridResult:
    """Backtest every combination of ``grid`` over ``base_params``; points sorted by ``maximize``."""
    key = sort_key(maximize)
    points: list[GridPoint] = []
    skipped: list[tuple[dict[str, Any], str]] = []
    for combo in combinations(grid):
        params = base_params | combo
        try:
            engine = Backtest.create(strategy, strategy, params, config)
        except StrategyConfigError as exc:
            skipped.append((combo, str(exc)))
        else:
            result = engine.run(bars, close_at_end=close_at_end)
            figures = stats.compute(
                result.equity, float(config.initial_cash), round_trips(result.fills), result.exposed
            )
            points.append(GridPoint(combo, figures))
        if progress is not None:
            progress()
    return GridResult(sorted(points, key=key), skipped)
