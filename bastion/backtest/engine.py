"""The backtester: the services' own code in one process, without NATS.

Every bar, in time order across symbols (ties by symbol), meets exactly what the running platform does:

1. analytics (services.analytics): the streaming ``IndicatorSet`` and ``build_insight`` give the bar's
   ``InsightEvent`` (only computed when the strategy asks for insights, as a worker would wait for it);
2. the strategy (services.strategy): ``on_bars``, the worker's call, with the same context and state, and
   ``build_signal`` for each decision;
3. ``ExecutionCore.on_bar`` (services.execution): pending market orders fill at this bar's open, positions are
   marked to its close, breakers are checked;
4. ``ExecutionCore.on_signal``: the pre-trade risk checks, sizing and the order, filled on the next bar.

Data flows one way, so the engine runs the stages in that order rather than bar by bar: the strategy decides
over each symbol's whole history first (in batches of ``CHUNK`` bars; a strategy decides the same over any
batches), then the execution core takes every bar. Only a bar with a decision and the next bar of its symbol
(the order's fill) go through ``on_bar``/``on_signal`` one by one; the bars between them, where nothing can
happen, go through ``on_quiet_bars`` as one run (which leaves the state ``on_bar`` would). Bars are kept as
columns (``BarSeries``): a bar's event is built only for the bars that go through ``on_bar``, the kept bars
and the signals, and the ids are those ``bastion feed replay`` gives, so the ids of insights, signals, orders
and trades equal those of the services in paper mode.

The equity curve is the portfolio's equity, as a float, after the last bar of each time: read from the
portfolio after a bar that went through ``on_bar``, and over a quiet run the equities ``on_quiet_bars``
gives (the portfolio's own, after each bar of a held symbol). tests/unit/backtest/test_fast_paths.py pins
the events, curve, exposure and portfolio to the plain loop that runs every stage bar by bar and reads the
portfolio after every bar.
"""

from __future__ import annotations

import itertools
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import ValidationError

from services.analytics.config import load_config as load_analytics_config
from services.analytics.domain.indicators.bundle import IndicatorSet
from services.analytics.domain.insight import BarRow, build_insight
from services.execution.domain.config import CostModel, ExecutionConfig, RiskLimits, SizingConfig
from services.execution.domain.engine import ExecutionCore, QuietBars
from services.marketdata.domain.bars import BarSeries, file_source
from services.strategy.domain import BaseStrategy, SignalDecision, StrategyContext
from services.strategy.domain.base import BarBatch
from services.strategy.domain.registry import create_strategy
from services.strategy.domain.signals import build_signal
from shared.barfiles import InputError, input_symbols, load_bar_file
from shared.collector import collector_paused
from shared.contracts.analytics import InsightEvent
from shared.contracts.envelope import Event
from shared.contracts.market_data import OHLCVBar
from shared.contracts.orders import OrderEvent, TradeEvent
from shared.contracts.risk import RiskDecision
from shared.contracts.signals import SignalEvent, Target
from shared.contracts.subjects import InvalidSymbolError
from shared.intervals import BadIntervalError, files_interval
from shared.validation import readable

NO_LIMITS = RiskLimits.off()


class BacktestError(ValueError):
    """Bad backtest input: a clear message for the user, never a traceback."""


class StrategyRaised(RuntimeError):
    """The strategy's own code raised on a bar: which strategy, which bar, what, and where in its code.
    Holds only its message, so it crosses process boundaries (``--optimize --jobs``) as it is."""

    @classmethod
    def of(cls, strategy: BaseStrategy[Any], bar: OHLCVBar, exc: Exception) -> StrategyRaised:
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        return cls(
            f"strategy {strategy.name!r} (id {strategy.instance_id}) raised {type(exc).__name__}: {exc}"
            f"{where}, on the {bar.symbol} bar of {bar.timestamp.isoformat()}"
        )


def parse_sizing(text: str, allow_short: bool) -> SizingConfig:
    """``all`` | ``qty:N`` | ``notional:X`` | ``percent:P`` -> the execution service's sizing policy."""
    kind, _, value = text.partition(":")
    try:
        if kind == "all" and not value:
            return SizingConfig(policy="all_cash", allow_short=allow_short)
        number = Decimal(value)
        if kind == "qty":
            return SizingConfig(policy="fixed_qty", quantity=number, allow_short=allow_short)
        if kind == "notional":
            return SizingConfig(policy="fixed_notional", notional=number, allow_short=allow_short)
        if kind == "percent":
            return SizingConfig(policy="percent_equity", percent=number, allow_short=allow_short)
    except ValidationError as exc:
        raise BacktestError(f"--sizing {text}: {readable(exc)}") from None
    except (ArithmeticError, ValueError):
        raise BacktestError(f"--sizing {text}: {value!r} is not a number") from None
    raise BacktestError(f"--sizing {text}: expected all, qty:N, notional:X or percent:P")


def execution_config(
    cash: Decimal,
    commission: Decimal,
    slippage_bps: Decimal,
    sizing: SizingConfig,
    base: ExecutionConfig | None,
) -> ExecutionConfig:
    """The execution config of a backtest: ``base`` (a service config file) or no risk limits, with the
    backtest's cash, sizing and costs (commission as a fraction of notional, no cap, no flat fee)."""
    costs = CostModel(
        slippage_bps=slippage_bps, commission_pct=commission * 100, commission_cap=None, flat_fee=Decimal(0)
    )
    if base is None:
        return ExecutionConfig(mode="paper", initial_cash=cash, limits=NO_LIMITS, sizing=sizing, costs=costs)
    return base.model_copy(update={"mode": "paper", "initial_cash": cash, "sizing": sizing, "costs": costs})


def load_bars(
    inputs: Sequence[Path],
    symbols: Sequence[str] | None,
    interval: str | None,
    start: datetime | None,
    end: datetime | None,
    zone: tzinfo = UTC,
) -> list[BarSeries]:
    """Bars of every input (one symbol per file: ``--symbol`` in order, else the file's Symbol column or name,
    as in replay), filtered to [start, end]: one series per symbol, as columns (``BarSeries``; events built
    when used).
    ``interval`` None: the files' bar spacing (``files_interval``, as ``bastion feed replay`` finds it).
    A timestamp without an offset is a wall time in ``zone``, as ``bastion feed replay --tz`` reads it."""
    try:
        names = input_symbols(inputs, symbols)  # as ``bastion feed replay`` names them
    except (InputError, InvalidSymbolError) as exc:
        raise BacktestError(str(exc)) from None
    # a BarFileError names the file; the CLI prints it
    frames = [load_bar_file(path, zone) for path in inputs]
    try:  # as replay finds it: of the whole files, before --from/--to
        interval = files_interval(
            [(str(p), f["timestamp"]) for p, f in zip(inputs, frames, strict=True)], interval
        )
    except BadIntervalError as exc:
        raise BacktestError(str(exc)) from None
    out: dict[str, BarSeries] = {}
    for path, symbol, frame in zip(inputs, names, frames, strict=True):
        if start is not None:
            frame = frame[frame["timestamp"] >= pd.Timestamp(start)]
        if end is not None:
            frame = frame[frame["timestamp"] <= pd.Timestamp(end)]
        series = BarSeries.of_frame(frame, symbol, interval, file_source(path.name))
        if len(series):
            out[symbol] = series
    if not out:
        raise BacktestError("no bars in the selected range")
    return [out[s] for s in sorted(out)]


@dataclass
class Cursor:
    target: Target = "flat"
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class BacktestResult:
    config: ExecutionConfig
    strategy_id: str
    series: list[BarSeries]
    insights: list[InsightEvent]  # those behind the signals (each symbol in time order), not every bar's
    signals: list[SignalEvent]
    decisions: list[RiskDecision]
    orders: list[OrderEvent]
    fills: list[TradeEvent]
    equity: pd.Series
    exposed: list[bool]
    final_positions: dict[str, Decimal]


Bars = Sequence[OHLCVBar] | Sequence[BarSeries]
Decisions = dict[int, SignalDecision]  # by row of a symbol's series


def as_series(bars: Bars) -> list[BarSeries]:
    """Series as they are, or bar events grouped by symbol (each in time order): sorted by symbol."""
    if bars and isinstance(bars[0], BarSeries):
        return sorted((s for s in bars if isinstance(s, BarSeries)), key=lambda s: s.symbol)
    grouped: dict[str, list[OHLCVBar]] = {}
    for bar in bars:
        if isinstance(bar, OHLCVBar):
            grouped.setdefault(bar.symbol, []).append(bar)
    out = []
    for symbol in sorted(grouped):
        events = sorted(grouped[symbol], key=lambda b: b.timestamp)
        if any(a.timestamp == b.timestamp for a, b in itertools.pairwise(events)):
            raise BacktestError(f"{symbol}: two bars with the same time")
        out.append(BarSeries.of_events(events))
    return out


class SharedInsights:
    """Each symbol's insights, built once for the backtests of the same bars (the points of a grid): the
    analytics service's insight of a bar follows from the bars up to it and the analytics config alone, never
    from a strategy's params, so every point would build the very same events. An insight holds ~3.7 KB, so
    ``fits`` says whether a history is small enough to keep all of its insights (``SHARED_INSIGHT_BARS``)."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[BarSeries, list[InsightEvent]]] = {}

    @staticmethod
    def fits(series: Sequence[BarSeries]) -> bool:
        return sum(len(s) for s in series) <= SHARED_INSIGHT_BARS

    def of(self, series: BarSeries, build: Callable[[BarSeries], list[InsightEvent]]) -> list[InsightEvent]:
        """The insights of every bar of ``series`` (this very series object), built by ``build`` once."""
        kept = self._kept.get(series.symbol)
        if kept is None or kept[0] is not series:
            kept = (series, build(series))
            self._kept[series.symbol] = kept
        return kept[1]


class Backtest:
    """One strategy instance over bars, through the services' code (see the module docstring). With
    ``shared``, a strategy that uses insights takes them from there (built once for several backtests of the
    same bars) instead of building them batch by batch."""

    def __init__(
        self, strategy: BaseStrategy[Any], config: ExecutionConfig, shared: SharedInsights | None = None
    ) -> None:
        self.strategy = strategy
        self.shared = shared
        # A backtest decides each signal right after its bar, so the core reads only that bar and the one
        # before (the price band's previous close): 2 kept bars decide as 64 do. It records its own curve.
        self.core = ExecutionCore(config.model_copy(update={"bars_kept": 2, "equity_points_kept": 0}))
        self.analytics = load_analytics_config()
        self.events: list[Event] = []
        #: each symbol's insights of the bars with a decision (the causes of its signals), by row
        self.causes: dict[str, dict[int, InsightEvent]] = {}

    @classmethod
    def create(
        cls,
        name: str,
        instance_id: str,
        params: dict[str, Any],
        config: ExecutionConfig,
        shared: SharedInsights | None = None,
    ) -> Backtest:
        return cls(create_strategy(name, instance_id, params), config, shared)

    # -- 1. analytics and the strategy, per symbol ----------------------------------------------------
    def _insights(self, series: BarSeries, lo: int, hi: int, indicators: IndicatorSet) -> list[InsightEvent]:
        """The insights of rows ``lo:hi``, as the analytics service builds them (``indicators`` goes on)."""
        out = []
        for i in range(lo, hi):
            row = _bar_row(series, i)
            values = indicators.update(row.high, row.low, row.close)
            out.append(build_insight(row, values, self.analytics))
        return out

    def _every_insight(self, series: BarSeries) -> list[InsightEvent]:
        return self._insights(series, 0, len(series), IndicatorSet())

    def decide(self, series: BarSeries, progress: Progress | None = None) -> Decisions:
        """The strategy over every bar of ``series``, in batches of ``CHUNK`` bars (the same decisions as
        one batch or one bar at a time: tests/unit/strategy/test_batches.py). For a strategy that uses
        insights, each batch's insights are built just before it (``INSIGHT_CHUNK`` bars, ~3.7 KB each) and
        only those of the bars with a decision are kept (``causes``), so memory does not grow with the
        history; with ``shared`` insights, the batches are slices of those."""
        strategy, decisions = self.strategy, {}
        cursor = Cursor()
        uses = strategy.requires_insights
        shared = self.shared.of(series, self._every_insight) if uses and self.shared is not None else None
        indicators = IndicatorSet() if uses and shared is None else None
        causes = self.causes.setdefault(series.symbol, {})
        size = INSIGHT_CHUNK if uses else CHUNK
        for lo in range(0, len(series), size):
            hi = min(lo + size, len(series))
            batch = _batch(series, lo, hi)
            chunk = shared[lo:hi] if shared is not None else None
            if indicators is not None:
                chunk = self._insights(series, lo, hi, indicators)
            ctx = StrategyContext(series.symbol, strategy.instance_id, cursor.target, cursor.state)
            try:
                found, cursor.state = strategy.on_bars(batch, chunk, ctx)
            except Exception as exc:  # a bug in the strategy: say where, not a traceback of the engine
                raise self._raised(series, lo, hi, chunk, ctx, exc) from exc
            for index, decision in found:
                decisions[lo + index] = decision
                cursor.target = decision.target
                if chunk is not None:
                    causes[lo + index] = chunk[index]
            if progress is not None:
                progress("decide", hi - lo)
        return decisions

    def _raised(
        self,
        series: BarSeries,
        lo: int,
        hi: int,
        insights: list[InsightEvent] | None,
        ctx: StrategyContext,
        exc: Exception,
    ) -> StrategyRaised:
        """Which bar of the failed batch raised: the batch again, one bar at a time (strategies are pure)."""
        target, state = ctx.target, ctx.state
        for i in range(lo, hi):
            one = insights[i - lo : i - lo + 1] if insights is not None else None
            view = StrategyContext(series.symbol, self.strategy.instance_id, target, state)
            try:
                found, state = self.strategy.on_bars(_batch(series, i, i + 1), one, view)
            except Exception as again:
                return StrategyRaised.of(self.strategy, series.bar(i), again)
            target = found[-1][1].target if found else target
        return StrategyRaised.of(self.strategy, series.bar(lo), exc)

    # -- 2. execution over every symbol's bars in (time, symbol) order --------------------------------
    def run(self, bars: Bars, close_at_end: bool = False, progress: Progress | None = None) -> BacktestResult:
        """``progress`` is told of every bar twice: ``("decide", n)`` as the strategy has decided on n more
        (every symbol's, first), then ``("execute", n)`` as n more have gone through the execution core."""
        series = as_series(bars)
        if not series:
            raise BacktestError("no bars in the selected range")
        with collector_paused():  # what is built here is kept and holds no cycles (shared.collector)
            decisions = [self.decide(s, progress) for s in series]
            merged = Merged.of(series)
            values, exposed = self._execute(series, merged, decisions, progress)
        last = {s.symbol: s.bar(len(s) - 1) for s in series}
        ends = merged.last_of_each_time()
        curve, holding = [values[i] for i in ends], [exposed[i] for i in ends]
        if close_at_end:
            self.close_at_end(last)
            curve[-1] = float(self.core.state.portfolio.equity)
            holding[-1] = self.core.state.portfolio.open_positions > 0
        pf = self.core.state.portfolio
        stamps = pd.DatetimeIndex(merged.ns[ends], tz="UTC")
        return BacktestResult(
            config=self.core.config,
            strategy_id=self.strategy.instance_id,
            series=series,
            insights=[i for s in series for _, i in sorted(self.causes.get(s.symbol, {}).items())],
            signals=[e for e in self.events if isinstance(e, SignalEvent)],
            decisions=[e for e in self.events if isinstance(e, RiskDecision)],
            orders=[e for e in self.events if isinstance(e, OrderEvent)],
            fills=[e for e in self.events if isinstance(e, TradeEvent)],
            equity=pd.Series(curve, index=stamps, dtype=float),
            exposed=holding,
            final_positions={s: p.quantity for s, p in sorted(pf.positions.items()) if p.quantity != 0},
        )

    def _execute(
        self,
        series: list[BarSeries],
        merged: Merged,
        decisions: list[Decisions],
        progress: Progress | None,
    ) -> tuple[list[float], list[bool]]:
        """Every bar through the execution core: a bar with a decision, or the next bar of its symbol (its
        order's fill), bar by bar with ``on_bar``/``on_signal``; the bars between them as quiet runs
        (``on_quiet_bars``), bar by bar when the core refuses one. The equity and exposure after each bar."""
        core, pf = self.core, self.core.state.portfolio
        busy = merged.positions_of(
            [
                sorted({r for d in found for r in (d, d + 1) if r < len(s)})
                for s, found in zip(series, decisions, strict=True)
            ]
        )
        values: list[float] = []
        exposed: list[bool] = []
        done = reported = 0
        for stop in [*busy, len(merged)]:
            if done < stop:  # the quiet bars before the next busy one
                equities = core.on_quiet_bars(merged.run(series, done, stop))
                if equities is not None:
                    values += _floats(equities)
                    exposed += [pf.open_positions > 0] * (stop - done)
                else:
                    for k in range(done, stop):
                        self.events.extend(core.on_bar(merged.bar(series, k)).events)
                        values.append(float(pf.equity))
                        exposed.append(pf.open_positions > 0)
            if stop == len(merged):
                break
            j, row = merged.source(stop)
            bar = series[j].bar(row)
            self.events.extend(core.on_bar(bar).events)
            decision = decisions[j].get(row)
            if decision is not None:
                insight = self.causes.get(series[j].symbol, {}).get(row)
                signal = build_signal(self.strategy, bar, insight, decision)
                self.events.append(signal)
                self.events.extend(core.on_signal(signal).events)
            values.append(float(pf.equity))
            exposed.append(pf.open_positions > 0)
            done = stop + 1
            if progress is not None and done - reported >= PROGRESS_STEP:
                progress("execute", done - reported)
                reported = done
        if progress is not None:
            progress("execute", len(merged) - reported)
        return values, exposed

    def close_at_end(self, last: dict[str, OHLCVBar]) -> None:
        """Close every open position at its symbol's last close (a flat signal filled at that close)."""
        closing = self.core.config.model_copy(
            update={"costs": self.core.costs.model_copy(update={"fill_at": "signal_close"})}
        )
        self.core.config, self.core.costs = closing, closing.costs
        for symbol, bar in sorted(last.items()):
            if self.core.state.portfolio.quantity(symbol) == 0:
                continue
            signal = SignalEvent.build(
                producer="backtest",
                key=f"{bar.event_id}|close-at-end",
                occurred_at=bar.timestamp,
                correlation_id=bar.correlation_id,
                causation_id=bar.event_id,
                symbol=symbol,
                interval=bar.interval,
                strategy=self.strategy.name,
                strategy_id=self.strategy.instance_id,
                target="flat",
                strength=1.0,
                reason="close at end of backtest",
                bar_timestamp=bar.timestamp,
                bar_event_id=bar.event_id,
            )
            self.events.append(signal)
            self.events.extend(self.core.on_signal(signal))


CHUNK = 100_000  # bars per on_bars call of a backtest (bounded memory for an array strategy's temporaries)
INSIGHT_CHUNK = 10_000  # bars per on_bars call of a strategy that uses insights (their events are ~3.7 KB)
SHARED_INSIGHT_BARS = 50_000  # the most bars whose insights a grid keeps for all its points (~185 MB)
PROGRESS_STEP = 10_000
Phase = Literal["decide", "execute"]
Progress = Callable[[Phase, int], None]  # (phase, bars done since the last call)


def _floats(values: list[Decimal]) -> list[float]:
    """``[float(v) for v in values]``, converting each run of the same Decimal object once."""
    out: list[float] = []
    previous: Decimal | None = None
    number = 0.0
    for value in values:
        if value is not previous:
            previous, number = value, float(value)
        out.append(number)
    return out


def _bar_row(series: BarSeries, i: int) -> BarRow:
    """``BarRow.of(series.bar(i))`` from the columns and the derived id, without building the bar's event
    (a bar is its own correlation id)."""
    if series.wraps_events:  # their correlation ids are their own
        return BarRow.of(series.bar(i))
    event_id = series.event_id(i)
    columns = (series.open, series.high, series.low, series.close, series.volume)
    o, h, low, c, v = (float(a[i]) for a in columns)
    return BarRow(series.symbol, series.interval, series.times()[i], o, h, low, c, v, event_id, event_id)


def _batch(series: BarSeries, lo: int, hi: int) -> BarBatch:
    columns = (series.open, series.high, series.low, series.close, series.volume)
    o, h, low, c, v = (a[lo:hi] for a in columns)
    return BarBatch(series.symbol, o, h, low, c, v, lambda i: series.bar(lo + i))


@dataclass
class Merged:
    """Every bar of every series in (time, symbol) order: bar k is row ``rows[k]`` of series ``which[k]``."""

    which: np.ndarray
    rows: np.ndarray
    ns: np.ndarray
    symbols: list[str]
    times: list[datetime]
    opens: np.ndarray
    closes: np.ndarray
    #: the merged position of row r of series j is ``position[starts[j] + r]``
    starts: np.ndarray
    position: np.ndarray

    @classmethod
    def of(cls, series: list[BarSeries]) -> Merged:
        which = np.concatenate([np.full(len(s), j, np.int64) for j, s in enumerate(series)])
        rows = np.concatenate([np.arange(len(s), dtype=np.int64) for s in series])
        ns = np.concatenate([s.ns for s in series])
        order = np.lexsort((which, ns)) if len(series) > 1 else np.arange(len(ns))
        names = [s.symbol for s in series]
        times = [t for s in series for t in s.times()]
        return cls(
            which=which[order],
            rows=rows[order],
            ns=ns[order],
            symbols=[names[j] for j in which[order].tolist()],
            times=[times[k] for k in order.tolist()] if len(series) > 1 else times,
            opens=np.concatenate([s.open for s in series])[order],
            closes=np.concatenate([s.close for s in series])[order],
            starts=np.cumsum([0, *(len(s) for s in series)])[:-1],
            position=np.argsort(order),
        )

    def __len__(self) -> int:
        return len(self.ns)

    def source(self, k: int) -> tuple[int, int]:
        return int(self.which[k]), int(self.rows[k])

    def bar(self, series: list[BarSeries], k: int) -> OHLCVBar:
        j, row = self.source(k)
        return series[j].bar(row)

    def positions_of(self, rows_by_series: list[list[int]]) -> list[int]:
        """The merged positions of the given rows of each series, in order."""
        if len(rows_by_series) == 1:
            return rows_by_series[0]
        flat = [int(self.starts[j]) + r for j, rows in enumerate(rows_by_series) for r in rows]
        return sorted(self.position[flat].tolist()) if flat else []

    def run(self, series: list[BarSeries], lo: int, hi: int) -> QuietBars:
        which, rows = self.which, self.rows

        def event_id(i: int) -> uuid.UUID:
            return series[int(which[lo + i])].event_id(int(rows[lo + i]))

        live = any(series[j].live for j in set(which[lo:hi].tolist()))
        return QuietBars(
            self.symbols[lo:hi],
            self.times[lo:hi],
            self.opens[lo:hi].tolist(),
            self.closes[lo:hi].tolist(),
            event_id,
            live,
        )

    def last_of_each_time(self) -> list[int]:
        """The position of the last bar of each distinct time."""
        ns = self.ns
        return np.flatnonzero(np.r_[ns[1:] != ns[:-1], True]).tolist()
