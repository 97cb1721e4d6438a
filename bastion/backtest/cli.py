"""``bastion backtest``: a strategy over bar files with the services' own code; stats, JSON, HTML report."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from bastion.backtest import optimize, output, report, stats
from bastion.backtest.engine import (
    Backtest,
    BacktestError,
    BacktestResult,
    Phase,
    StrategyRaised,
    execution_config,
    load_bars,
    parse_sizing,
)
from bastion.backtest.trips import round_trips
from services.execution.adapters.config_file import ConfigError
from services.execution.adapters.config_file import load_config as load_execution_config
from services.execution.domain.config import ExecutionConfig
from services.marketdata.domain.bars import BarSeries
from services.strategy.domain.registry import StrategyConfigError, strategy_class
from shared.barfiles import BadZoneError, BarFileError, time_zone
from shared.collector import collector_paused
from shared.intervals import INTERVAL_HELP, interval_notice, sparser_than
from shared.validation import readable

console = Console(stderr=True)
out = Console()


def _fail(message: str, code: int = 2) -> typer.Exit:
    """The message on stderr and the exit: 2 for bad input, 1 for a strategy that failed on a bar."""
    console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True, emoji=False)
    return typer.Exit(code)


def _param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise _fail(f"--set {text!r}: expected key=value")
    return key.strip(), yaml.safe_load(value)


def _date(text: str | None, flag: str, zone: tzinfo = UTC, whole_day: bool = False) -> datetime | None:
    """``--from``/``--to``: a date (a day in ``zone``) or a time (in ``zone`` unless it has an offset). With
    ``whole_day`` (``--to``), a date means the last instant of that day, so every bar of the day is in."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(
            f"{flag} {text!r}: expected a date such as 2024-01-31 or a time 2024-01-31T10:30"
        ) from None
    if whole_day and _is_date(text):
        midnight = datetime.combine(value.date() + timedelta(days=1), datetime.min.time(), zone)
        return pd.Timestamp(midnight.astimezone(UTC)) - pd.Timedelta(1, "ns")
    return value if value.tzinfo else value.replace(tzinfo=zone)


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _range(start: str | None, end: str | None, zone: tzinfo = UTC) -> tuple[datetime | None, datetime | None]:
    first, last = _date(start, "--from", zone), _date(end, "--to", zone, whole_day=True)
    if first is not None and last is not None and first > last:
        raise _fail(f"--from {start} is after --to {end}")
    return first, last


def _decimal(
    text: str, flag: str, below: Decimal | None = None, hint: str = "", positive: bool = False
) -> Decimal:
    """``text`` as a finite Decimal >= 0 (> 0 with ``positive``; < ``below``), else a clear error naming
    ``flag``."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _fail(f"{flag} {text!r}: expected a number") from None
    if not value.is_finite():
        raise _fail(f"{flag} {text!r}: expected a finite number")
    if positive and value <= 0:
        raise _fail(f"{flag} must be > 0")
    if value < 0:
        raise _fail(f"{flag} must be >= 0")
    if below is not None and value >= below:
        raise _fail(f"{flag} {text}: must be below {below}{hint}")
    return value


def _base_config(path: Path | None) -> ExecutionConfig | None:
    """Limits and breakers from an execution service config file, read by the service's own loader."""
    if path is None:
        return None
    try:
        return load_execution_config(path)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


RATIOS = {"sharpe", "sortino", "profit_factor"}


def shown(key: str, value: Any) -> str:
    """A statistic as the tables print it: money and percentages to 2 places with thousands separators
    (100,000.00, not 1e+05), ratios to 3, days to 1, counts whole; ``-`` for one that cannot be computed."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if key in RATIOS:
        return f"{value:,.3f}"
    return f"{value:,.1f}" if key.endswith("_days") else f"{value:,.2f}"


def _summary(figures: dict[str, Any], result: BacktestResult, zone: tzinfo) -> None:
    table = Table(title=f"backtest {result.strategy_id}", show_header=False)
    for key, value in report.in_zone(figures, zone).items():
        table.add_row(key, shown(key, value))
    if result.final_positions:
        table.add_row("open positions", ", ".join(f"{s} {q}" for s, q in result.final_positions.items()))
    out.print(table)


def backtest(
    strategy: Annotated[str, typer.Option(help="Strategy name (see `bastion strategies list`)")],
    inputs: Annotated[
        list[Path], typer.Option("--input", help="CSV or Parquet bar file; repeat for a portfolio")
    ],
    settings_: Annotated[
        list[str] | None, typer.Option("--set", help="Strategy param key=value; repeatable")
    ] = None,
    symbol: Annotated[
        list[str] | None,
        typer.Option(help="Symbol of each --input (default: the file's Symbol column, else its name)"),
    ] = None,
    interval: Annotated[str | None, typer.Option(help=f"Bar interval of the files {INTERVAL_HELP}")] = None,
    cash: Annotated[str, typer.Option(help="Starting cash")] = "100000",
    commission: Annotated[str, typer.Option(help="Commission as a fraction of each fill's notional")] = "0.0",
    slippage_bps: Annotated[str, typer.Option(help="Slippage against the taker, in basis points")] = "0",
    sizing: Annotated[str, typer.Option(help="all | qty:N | notional:X | percent:P")] = "all",
    start: Annotated[
        str | None, typer.Option("--from", help="First bar date (a day in --tz) or time, inclusive")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last bar date (its whole day in --tz) or time, inclusive")
    ] = None,
    tz: Annotated[
        str,
        typer.Option(
            "--tz",
            help="Time zone of --from/--to dates and of every time without an offset, in them and in the "
            "files, e.g. Asia/Kolkata",
        ),
    ] = "UTC",
    close_at_end: Annotated[bool, typer.Option(help="Close open positions at the last close")] = False,
    instance_id: Annotated[
        str | None, typer.Option("--id", help="Strategy instance id (default: name)")
    ] = None,
    execution_config_file: Annotated[
        Path | None, typer.Option("--execution-config", help="Risk limits from an execution config file")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write stats, trades, equity as JSON")
    ] = None,
    report_out: Annotated[
        Path | None, typer.Option("--report", help="Write a self-contained HTML report")
    ] = None,
    grid_specs: Annotated[
        list[str] | None,
        typer.Option(
            "--optimize",
            help="Grid search: name=LO..HI[:STEP] or name=A,B,C; repeatable. --json gets every point, "
            "--report the best one's report",
        ),
    ] = None,
    maximize: Annotated[
        str, typer.Option(help=f"Statistic to sort --optimize results by: {', '.join(optimize.SORTABLE)}")
    ] = "sharpe",
    top: Annotated[int, typer.Option(min=1, help="Rows of the --optimize table")] = 10,
    jobs: Annotated[
        int,
        typer.Option(
            min=0,
            help="--optimize points run at once, each in a process of its own holding the bars; "
            "0: one per CPU",
        ),
    ] = 1,
) -> None:
    """Backtest a strategy with the live code: signals on a bar's close, market orders at the next open."""
    params = dict(_param(p) for p in settings_ or [])
    _writable(json_out, "--json")
    _writable(report_out, "--report")
    try:
        cls = strategy_class(strategy)
    except StrategyConfigError as exc:
        raise _fail(str(exc)) from None
    if grid_specs:
        _known_params(cls.name, set(cls.params_model.model_fields), grid_specs)
    allow_short = bool(params.get("allow_short", False))
    try:
        sizing_cfg = parse_sizing(sizing, allow_short)
        config = execution_config(
            _decimal(cash, "--cash", positive=True),
            _decimal(commission, "--commission", Decimal(1), " (a fraction of notional: 0.001 is 0.1%)"),
            _decimal(slippage_bps, "--slippage-bps", Decimal(10_000), " (basis points: 5 is 0.05%)"),
            sizing_cfg,
            _base_config(execution_config_file),
        )
        engine = Backtest.create(cls.name, instance_id or cls.name, params, config)
        zone = time_zone(tz)
        bars = load_bars(inputs, symbol, interval, *_range(start, end, zone), zone)
    except ValidationError as exc:
        raise _fail(readable(exc)) from None
    except (BacktestError, BadZoneError, BarFileError, StrategyConfigError) as exc:
        raise _fail(str(exc)) from None
    count = sum(len(s) for s in bars)
    if interval is None:
        console.print(interval_notice(bars[0].interval, spaced=any(len(s) > 1 for s in bars)))
    elif warning := sparser_than([(s.symbol, s.ns) for s in bars], bars[0].interval):
        console.print(warning, style="yellow")
    settings: dict[str, Any] = {
        "strategy": cls.name,
        "id": instance_id or cls.name,
        "params": params,
        "inputs": [str(p) for p in inputs],
        "symbols": [s.symbol for s in bars],
        "from": start,
        "to": end,
        "tz": tz,
        "interval": bars[0].interval,
        "bars": count,
        "cash": str(config.initial_cash),
        "commission": commission,
        "slippage_bps": slippage_bps,
        "sizing": sizing,
        "close_at_end": close_at_end,
    }
    if grid_specs:
        try:
            grid = (grid_specs, maximize, top)
            workers = jobs or os.cpu_count() or 1
            params = _optimize(
                cls.name, params, *grid, config, bars, close_at_end, settings, json_out, workers
            )
        except StrategyRaised as exc:
            raise _fail(str(exc), 1) from None
        if report_out is None:
            return
        json_out = None  # the grid's JSON is written; the report is the best point's
        engine = Backtest.create(cls.name, instance_id or cls.name, params, config)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=count < 50_000,
        transient=True,
    ) as progress:
        try:
            result = engine.run(bars, close_at_end=close_at_end, progress=_phases(progress, count))
        except StrategyRaised as exc:
            raise _fail(str(exc), 1) from None
    with collector_paused():  # the result lives to the end: no collector scans of it (shared.collector)
        trips = round_trips(result.fills)
        figures = stats.compute(
            result.equity, float(config.initial_cash), trips, result.exposed, result.fills
        )
        settings["params"] = params
        _summary(figures, result, zone)
        if json_out is not None:
            _write(json_out, lambda path: output.write_result(path, result, trips, figures, settings))
        if report_out is not None:
            title = f"Backtest: {result.strategy_id}"
            page = report.render(
                title, figures, result.equity, trips, _frames(result), result.fills, settings, zone
            )
            _write(report_out, lambda path: output.write_text(path, page))


def _phases(progress: Progress, bars: int) -> Callable[[Phase, int], None]:
    """One bar per phase, each timed from its own start: the strategy deciding over every bar, then the
    execution core taking them (their costs per bar differ by strategy: one bar for both would mislead)."""
    tasks = {
        "decide": progress.add_task("deciding ", total=bars),
        "execute": progress.add_task("executing", total=bars, start=False),
    }

    started = {"decide"}

    def advance(phase: Phase, n: int) -> None:
        if phase not in started:
            started.add(phase)
            progress.start_task(tasks[phase])
        progress.advance(tasks[phase], n)

    return advance


def _frames(result: BacktestResult) -> dict[str, pd.DataFrame]:
    return {
        s.symbol: pd.DataFrame(
            {
                "timestamp": pd.DatetimeIndex(s.ns, tz="UTC"),
                "open": s.open,
                "high": s.high,
                "low": s.low,
                "close": s.close,
            }
        )
        for s in result.series
    }


def _writable(path: Path | None, flag: str) -> None:
    """Refuse an output path that cannot be written before the run, not after it."""
    if path is None:
        return
    if path.is_dir():
        raise _fail(f"{flag} {path}: is a directory; give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise _fail(f"{flag} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise _fail(f"{flag} {path}: directory {parent} is not writable")


def _write(path: Path, write: Callable[[Path], None]) -> None:
    try:
        write(path)
    except OSError as exc:
        raise _fail(f"cannot write {path}: {exc.strerror or exc}") from None
    console.print(f"wrote {path}")


def _known_params(strategy: str, known: set[str], specs: list[str]) -> None:
    """Refuse a grid over a name the strategy has no parameter for before any bar is read: every point
    would be rejected, after reading the whole file."""
    try:
        names = optimize.parse_grid(specs)
    except BacktestError as exc:
        raise _fail(str(exc)) from None
    unknown = sorted(set(names) - known)
    if unknown:
        raise _fail(
            f"--optimize: {strategy} has no parameter {', '.join(map(repr, unknown))}; its parameters:"
            f" {', '.join(sorted(known))} (`bastion strategies list` shows them with their defaults)"
        )


def _optimize(
    strategy: str,
    params: dict[str, Any],
    specs: list[str],
    maximize: str,
    top: int,
    config: ExecutionConfig,
    bars: list[BarSeries],
    close_at_end: bool,
    settings: dict[str, Any],
    json_out: Path | None,
    jobs: int = 1,
) -> dict[str, Any]:
    """Run the grid, print the best ``top`` points, write ``json_out`` (with the run's ``settings``: inputs,
    range, costs); return the best point's params."""
    try:
        grid = optimize.parse_grid(specs)
        combos = optimize.combinations(grid)
        optimize.sort_key(maximize)
    except BacktestError as exc:
        raise _fail(str(exc)) from None
    clash = sorted(set(grid) & set(params))
    if clash:
        raise _fail(f"--optimize and --set both give {', '.join(clash)}; keep one")
    with Progress(
        TextColumn("optimize"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    ) as progress:
        task = progress.add_task("grid", total=len(combos))
        result = optimize.run_grid(
            strategy,
            params,
            grid,
            config,
            bars,
            maximize,
            close_at_end,
            lambda: progress.advance(task),
            jobs=jobs,
        )
    if result.skipped:
        console.print(f"skipped {len(result.skipped)} combination(s) the strategy rejects, e.g.")
        console.print(f"  {result.skipped[0][0]}: {result.skipped[0][1]}")
    if not result.points:
        raise _fail("every combination was rejected by the strategy; see the reason above")
    columns = ["total_return_pct", "sharpe", "max_drawdown_pct", "trades", "win_rate_pct"]
    columns = [maximize, *(c for c in columns if c != maximize)]
    table = Table(
        title=f"{strategy}: best {min(top, len(result.points))} of {len(result.points)} by {maximize}"
    )
    for name in [*grid, *columns]:
        table.add_column(name, justify="right")
    for point in result.points[:top]:
        cells = [str(point.params[n]) for n in grid]
        cells += [shown(c, point.figures[c]) for c in columns]
        table.add_row(*cells)
    out.print(table)
    best = result.points[0].params
    out.print("best: " + " ".join(f"--set {k}={v}" for k, v in best.items()))
    if json_out is not None:
        doc = {
            "strategy": strategy,
            "params": params,
            "grid": grid,
            "maximize": maximize,
            "bars": sum(len(s) for s in bars),
            "settings": settings,
            "results": [{"params": p.params, "stats": p.figures} for p in result.points],
            "skipped": [{"params": c, "reason": r} for c, r in result.skipped],
        }
        text = json.dumps(doc, indent=2, default=str) + "\n"
        _write(json_out, lambda path: output.write_text(path, text))
    return params | best
