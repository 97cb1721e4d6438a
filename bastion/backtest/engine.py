"""The backtester: the services' own code in one process, without NATS.

Each bar, in time order across symbols (ties by symbol), goes through exactly what the running platform does:

1. ``ExecutionCore.on_bar`` (services.execution): pending market orders fill at this bar's open, positions are
   marked to its close, breakers are checked;
2. analytics (services.analytics): the streaming ``IndicatorSet`` and ``build_insight`` give the bar's
   ``InsightEvent`` (only computed when the strategy asks for insights, as a worker would wait for it);
3. the strategy (services.strategy): ``on_bar`` with the same context and state a worker keeps, and
   ``build_signal`` for its decision;
4. ``ExecutionCore.on_signal``: the pre-trade risk checks, sizing and the order, filled on the next bar.

Bars come from ``services.marketdata`` (same file reader, same bar events and ids as ``bastion feed replay``),
so the ids of insights, signals, orders and trades equal those of the services in paper mode.

The equity curve is the portfolio's equity, as a float, after the last bar of each time. Only a fill or the
mark of an open position moves it, so after a bar that left every position flat and produced no event the
previous point is repeated instead of summing the portfolio again (tests/unit/backtest/test_fast_paths.py
pins this to the loop that reads the portfolio after every bar).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from services.analytics.config import load_config as load_analytics_config
from services.analytics.domain.indicators.bundle import IndicatorSet
from services.analytics.domain.insight import BarRow, build_insight
from services.execution.domain.config import CostModel, ExecutionConfig, RiskLimits, SizingConfig
from services.execution.domain.engine import ExecutionCore
from services.marketdata.domain.bars import file_source, to_bars
from services.strategy.domain import BaseStrategy, StrategyContext
from services.strategy.domain.registry import create_strategy
from services.strategy.domain.signals import build_signal
from shared.barfiles import load_bar_file
from shared.collector import collector_paused
from shared.contracts.analytics import InsightEvent
from shared.contracts.envelope import Event
from shared.contracts.market_data import OHLCVBar
from shared.contracts.orders import OrderEvent, TradeEvent
from shared.contracts.risk import RiskDecision
from shared.contracts.signals import SignalEvent, Target

NO_LIMITS = RiskLimits.off()


class BacktestError(ValueError):
    """Bad backtest input: a clear message for the user, never a traceback."""


class StrategyRaised(RuntimeError):
    """The strategy's own code raised on a bar: which strategy, which bar, what, and where in its code."""

    def __init__(self, strategy: BaseStrategy[Any], bar: OHLCVBar, exc: Exception) -> None:
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        super().__init__(
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
    except (ArithmeticError, ValueError) as exc:
        raise BacktestError(f"--sizing {text}: {exc}") from None
    raise BacktestError(f"--sizing {text}: expected all, qty:N, notional:X or percent:P")


def execution_config(
    cash: Decimal,
    commission: Decimal,
    slippage_bps: Decimal,
    sizing: SizingConfig,
    base: ExecutionConfig | None,
) -> ExecutionConfig:
    """The execution config of a backtest: ``base`` (a service config file) or no risk limits, with the
    backtest's cash, sizing and costs (commission as a fraction of notional, no flat fee)."""
    costs = CostModel(slippage_bps=slippage_bps, commission_pct=commission * 100, flat_fee=Decimal(0))
    if base is None:
        return ExecutionConfig(mode="paper", initial_cash=cash, limits=NO_LIMITS, sizing=sizing, costs=costs)
    return base.model_copy(update={"mode": "paper", "initial_cash": cash, "sizing": sizing, "costs": costs})


def load_bars(
    inputs: Sequence[Path],
    symbols: Sequence[str] | None,
    interval: str,
    start: datetime | None,
    end: datetime | None,
) -> list[OHLCVBar]:
    """Bars of every input (one symbol per file: ``--symbol`` in order, else the file's stem upper-cased),
    filtered to [start, end], merged in (timestamp, symbol) order."""
    if symbols and len(symbols) != len(inputs):
        raise BacktestError(
            f"{len(inputs)} --input files but {len(symbols)} --symbol values; give one per file"
        )
    bars: list[OHLCVBar] = []
    for index, path in enumerate(inputs):
        symbol = symbols[index] if symbols else path.stem.upper()
        frame = load_bar_file(path)  # a BarFileError names the file; the CLI prints it
        if start is not None:
            frame = frame[frame["timestamp"] >= pd.Timestamp(start)]
        if end is not None:
            frame = frame[frame["timestamp"] <= pd.Timestamp(end)]
        bars.extend(to_bars(frame, symbol, interval, file_source(path.name)))
    if not bars:
        raise BacktestError("no bars in the selected range")
    bars.sort(key=lambda b: (b.timestamp, b.symbol))
    return bars


@dataclass
class Cursor:
    target: Target = "flat"
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class BacktestResult:
    config: ExecutionConfig
    strategy_id: str
    bars: list[OHLCVBar]
    insights: list[InsightEvent]
    signals: list[SignalEvent]
    decisions: list[RiskDecision]
    orders: list[OrderEvent]
    fills: list[TradeEvent]
    equity: pd.Series
    exposed: list[bool]
    final_positions: dict[str, Decimal]


class Backtest:
    def __init__(self, strategy: BaseStrategy[Any], config: ExecutionConfig) -> None:
        self.strategy = strategy
        self.core = ExecutionCore(config)
        self.analytics = load_analytics_config()
        self.indicators: dict[str, IndicatorSet] = {}
        self.cursors: dict[str, Cursor] = {}
        self.events: list[Event] = []
        self.insights: list[InsightEvent] = []

    @classmethod
    def create(cls, name: str, instance_id: str, params: dict[str, Any], config: ExecutionConfig) -> Backtest:
        return cls(create_strategy(name, instance_id, params), config)

    def _insight(self, bar: OHLCVBar) -> InsightEvent:
        values = self.indicators.setdefault(bar.symbol, IndicatorSet()).update(bar.high, bar.low, bar.close)
        insight = build_insight(BarRow.of(bar), values, self.analytics)
        self.insights.append(insight)
        return insight

    def step(self, bar: OHLCVBar) -> None:
        events, strategy = self.events, self.strategy
        events.extend(self.core.on_bar(bar).events)
        insight = self._insight(bar) if strategy.requires_insights else None
        cursor = self.cursors.get(bar.symbol)
        if cursor is None:
            cursor = self.cursors[bar.symbol] = Cursor()
        ctx = StrategyContext(bar.symbol, strategy.instance_id, cursor.target, cursor.state)
        try:
            decision, cursor.state = strategy.on_bar(bar, insight, ctx)
        except Exception as exc:  # a bug in the strategy: say where, not a traceback of the engine
            raise StrategyRaised(strategy, bar, exc) from exc
        if decision is not None:
            signal = build_signal(strategy, bar, insight, decision)
            cursor.target = decision.target
            events.append(signal)
            events.extend(self.core.on_signal(signal).events)

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

    def run(
        self,
        bars: Sequence[OHLCVBar],
        close_at_end: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> BacktestResult:
        stamps: list[datetime] = []
        values: list[float] = []
        exposed: list[bool] = []
        last: dict[str, OHLCVBar] = {}
        equity, holding = 0.0, True  # unknown: computed after the first bar
        with collector_paused():  # what is built here is kept and holds no cycles (shared.collector)
            for index, bar in enumerate(bars):
                seen = len(self.events)
                self.step(bar)
                last[bar.symbol] = bar
                if holding or len(self.events) != seen:
                    # Equity moves only with a fill (an event) or the mark of an open position: after a
                    # bar that found every position flat and produced nothing, the previous values hold.
                    pf = self.core.state.portfolio
                    equity, holding = float(pf.equity), pf.open_positions > 0
                if stamps and stamps[-1] == bar.timestamp:
                    values[-1], exposed[-1] = equity, holding
                else:
                    stamps.append(bar.timestamp)
                    values.append(equity)
                    exposed.append(holding)
                if progress is not None and index % 10_000 == 9_999:
                    progress(10_000)
        if close_at_end:
            self.close_at_end(last)
            values[-1] = float(self.core.state.portfolio.equity)
            exposed[-1] = self.core.state.portfolio.open_positions > 0
        pf = self.core.state.portfolio
        return BacktestResult(
            config=self.core.config,
            strategy_id=self.strategy.instance_id,
            bars=list(bars),
            insights=self.insights,
            signals=[e for e in self.events if isinstance(e, SignalEvent)],
            decisions=[e for e in self.events if isinstance(e, RiskDecision)],
            orders=[e for e in self.events if isinstance(e, OrderEvent)],
            fills=[e for e in self.events if isinstance(e, TradeEvent)],
            equity=pd.Series(values, index=pd.DatetimeIndex(stamps), dtype=float),
            exposed=exposed,
            final_positions={s: p.quantity for s, p in sorted(pf.positions.items()) if p.quantity != 0},
        )
