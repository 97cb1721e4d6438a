"""Backtest statistics from an equity curve and a list of round-trip trades. Pure, no I/O.

Conventions (documented in docs/backtesting.md):

- returns are simple returns of equity between consecutive **daily closes** (the last equity of each UTC
  calendar day), so intraday and daily bars give comparable figures;
- annualisation uses ``TRADING_DAYS`` = 252 sessions a year; the risk-free rate is 0;
- Sharpe = mean(daily return) / std(daily return, ddof=1) * sqrt(252);
- Sortino = mean(daily return) / downside deviation * sqrt(252), where the downside deviation is
  sqrt(mean(min(r, 0)^2)) over all days;
- CAGR = (final / initial) ** (365.25 / calendar days) - 1;
- max drawdown is the largest fall from a running equity peak, in percent; its duration is the longest time
  spent below a previous peak (from the peak to the recovery, or to the end if never recovered);
- profit factor = gross profit / gross loss of closed trades (None when there is no losing trade);
- exposure = share of bars at whose close some position was open;
- lowest cash = the least cash the account held after any fill (the starting cash if it never fell below):
  below 0, positions were bought on credit (percents of equity that add up to more than 100, or a fill
  above the close it was sized on).

A figure that cannot be computed (e.g. volatility of a one-day run) is ``None``, never NaN, so the JSON
output stays valid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd

from services.execution.domain.positions import Portfolio
from shared.contracts.orders import TradeEvent

TRADING_DAYS = 252


@dataclass(frozen=True)
class RoundTrip:
    """One closed (or still open) trade: from a fill that opens a position to the fill that closes it."""

    symbol: str
    direction: str  # "long" or "short"
    quantity: Decimal
    entry_time: datetime
    entry_price: Decimal
    exit_time: datetime | None
    exit_price: Decimal | None
    commission: Decimal
    pnl: Decimal | None  # net of commission; None while open

    @property
    def is_open(self) -> bool:
        return self.exit_time is None


def _clean(value: float) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else round(float(value), 10)


def daily_returns(equity: pd.Series) -> pd.Series:
    """Simple returns between the last equity of consecutive UTC days (the first day against the start)."""
    if equity.empty:
        return pd.Series(dtype=float)
    closes = equity.groupby(pd.DatetimeIndex(equity.index).normalize()).last()
    return closes.pct_change().dropna()


def drawdown(equity: pd.Series) -> pd.Series:
    """Fraction below the running peak at each point (0 at a new high, negative below it)."""
    peak = equity.cummax()
    return equity / peak - 1.0


def max_drawdown_duration(equity: pd.Series) -> timedelta:
    """Longest time from a peak to the first return to it (or to the end)."""
    longest = timedelta(0)
    peak_value = -math.inf
    peak_time: datetime | None = None
    for at, value in zip(pd.DatetimeIndex(equity.index).to_pydatetime(), equity.to_numpy(), strict=True):
        if value >= peak_value:
            if peak_time is not None:
                longest = max(longest, at - peak_time)
            peak_value, peak_time = value, at
    if peak_time is not None and len(equity):
        last = equity.index[-1]
        if equity.iloc[-1] < peak_value:
            longest = max(longest, last - peak_time)
    return longest


def lowest_cash(initial_cash: Decimal, fills: Sequence[TradeEvent]) -> Decimal:
    """The least cash after any fill, each applied as the execution service's portfolio applies it;
    ``initial_cash`` when it never fell below it."""
    portfolio = Portfolio.starting(initial_cash)
    low = initial_cash
    for fill in fills:
        portfolio.apply_trade(fill)
        low = min(low, portfolio.cash)
    return low


def compute(
    equity: pd.Series,
    initial_cash: float,
    trades: Sequence[RoundTrip],
    exposed: Sequence[bool],
    fills: Sequence[TradeEvent],
) -> dict[str, float | int | str | None]:
    """Every statistic of the report. ``equity`` is indexed by UTC timestamps, one point per bar time."""
    if equity.empty:
        raise ValueError("no equity points: the backtest saw no bars")
    final = float(equity.iloc[-1])
    days = (equity.index[-1] - equity.index[0]).total_seconds() / 86_400
    total_return = final / initial_cash - 1.0
    cagr = (final / initial_cash) ** (365.25 / days) - 1.0 if days > 0 and final > 0 else math.nan
    rets = daily_returns(pd.concat([pd.Series([initial_cash], index=[equity.index[0]]), equity]))
    spread = float(rets.std(ddof=1)) if len(rets) > 1 else math.nan
    vol = spread * math.sqrt(TRADING_DAYS)
    # a flat curve (no trade) has no spread: its Sharpe is undefined (None), not a 0/0 warning
    sharpe = rets.mean() / spread * math.sqrt(TRADING_DAYS) if spread > 0 else math.nan
    downside = math.sqrt(float(np.mean(np.minimum(rets.to_numpy(), 0.0) ** 2))) if len(rets) else math.nan
    sortino = rets.mean() / downside * math.sqrt(TRADING_DAYS) if downside and len(rets) > 1 else math.nan
    dd = drawdown(equity)
    closed = [t for t in trades if t.pnl is not None]
    pnls = [float(t.pnl) for t in closed if t.pnl is not None]
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    return {
        "start": equity.index[0].isoformat(),
        "end": equity.index[-1].isoformat(),
        "initial_equity": _clean(initial_cash),
        "final_equity": _clean(final),
        "total_return_pct": _clean(total_return * 100),
        "cagr_pct": _clean(cagr * 100),
        "volatility_ann_pct": _clean(vol * 100),
        "sharpe": _clean(sharpe),
        "sortino": _clean(sortino),
        "max_drawdown_pct": _clean(float(dd.min()) * 100),
        "max_drawdown_days": _clean(max_drawdown_duration(equity).total_seconds() / 86_400),
        "trades": len(closed),
        "open_trades": sum(1 for t in trades if t.is_open),
        "win_rate_pct": _clean(len(wins) / len(pnls) * 100) if pnls else None,
        "profit_factor": _clean(sum(wins) / -sum(losses)) if losses else None,
        "avg_trade": _clean(sum(pnls) / len(pnls)) if pnls else None,
        "exposure_pct": _clean(sum(exposed) / len(exposed) * 100) if exposed else None,
        "lowest_cash": _clean(float(lowest_cash(Decimal(str(initial_cash)), fills))),
    }
