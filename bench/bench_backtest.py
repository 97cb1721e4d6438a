"""`bastion backtest` engine throughput (bars/s), next to backtesting.py on the same bars in the same run.

* data: a seeded random walk of 1-minute bars of one symbol (1,000,000 by default; ``BASTION_BENCH_BARS``
  or the first argument changes it), the same frame for both engines;
* to_bars: building the ``OHLCVBar`` events from the frame (what ``bastion backtest`` does after reading
  the file), reported separately and not counted in the engine's bars/s;
* engine: ``Backtest.create("sma_cross", ...).run(bars)`` with fast=10, slow=30, ``--sizing all``, no
  commission or slippage, no risk limits: the indicator-free strategy, risk checks, sizing and paper fills
  of the services, with every event built;
* the reference: backtesting.py (PyPI ``backtesting``) running the same rule (long when SMA10 crosses above
  SMA30, flat when it crosses below; buy with all cash at the next open) on the same bars, ``Backtest.run``
  including its stats. If our engine would take more than ~90 s for all bars, both engines run on fewer bars
  (measured from a pilot run) and the figure says so;
* the floor (printed, not a RESULT row): ``sma_cross``'s ``on_bar`` alone over the same bars, with the
  context and state the engine keeps and no execution or events. It is the per-bar Python any engine that
  runs the services' strategy code bar by bar must pay, so ``floor / backtesting.py`` bounds the ratio.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from bastion.backtest.engine import Backtest, execution_config, parse_sizing
from services.marketdata.domain.bars import to_bars
from services.strategy.domain import StrategyContext, StrategyState
from services.strategy.domain.registry import create_strategy
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import Target

BARS = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("BASTION_BENCH_BARS", "1000000"))
PILOT = 20_000
BUDGET_S = 90.0
FAST, SLOW = 10, 30


def frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(8)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    opens = np.r_[100.0, close[:-1]] * (1 + rng.normal(0, 0.0002, n))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2020-01-01", periods=n, freq="1min", tz="UTC"),
            "open": opens.round(2),
            "high": (np.maximum(opens, close) * 1.0005).round(2) + 0.01,
            "low": (np.minimum(opens, close) * 0.9995).round(2) - 0.01,
            "close": close.round(2),
            "volume": 1000.0,
        }
    )


def ours(bars: list[OHLCVBar]) -> tuple[float, int]:
    """Seconds for the backtest of ``bars``, and its number of fills."""
    config = execution_config(Decimal(100_000), Decimal(0), Decimal(0), parse_sizing("all", False), None)
    backtest = Backtest.create("sma_cross", "sma_cross", {"fast": FAST, "slow": SLOW}, config)
    start = time.perf_counter()
    result = backtest.run(bars)
    return time.perf_counter() - start, len(result.fills)


def strategy_floor(bars: list[OHLCVBar]) -> float:
    """Seconds for the strategy's ``on_bar`` alone over ``bars``, fed as ``Backtest.step`` feeds it."""
    strategy = create_strategy("sma_cross", "sma_cross", {"fast": FAST, "slow": SLOW})
    state: StrategyState = {}
    target: Target = "flat"
    start = time.perf_counter()
    for bar in bars:
        decision, state = strategy.on_bar(bar, None, StrategyContext(bar.symbol, "sma_cross", target, state))
        if decision is not None:
            target = decision.target
    return time.perf_counter() - start


def reference(data: pd.DataFrame) -> tuple[float, int]:
    """Seconds for backtesting.py on the same bars, and its number of trades (round trips)."""
    from backtesting import Backtest as BtBacktest
    from backtesting import Strategy

    def sma(values: Any, length: int) -> Any:
        return pd.Series(values).rolling(length).mean().to_numpy()

    class SmaCross(Strategy):
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, FAST)
            self.slow = self.I(sma, self.data.Close, SLOW)

        def next(self) -> None:
            if len(self.data) < SLOW + 1:
                return
            above, before = self.fast[-1] > self.slow[-1], self.fast[-2] > self.slow[-2]
            if above and not before:
                self.buy()
            elif before and not above:
                self.position.close()

    ohlcv = data.set_index(data["timestamp"].dt.tz_localize(None)).drop(columns="timestamp")
    ohlcv.columns = ["Open", "High", "Low", "Close", "Volume"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        stats = BtBacktest(ohlcv, SmaCross, cash=100_000, commission=0.0, finalize_trades=False).run()
        return time.perf_counter() - start, int(stats["# Trades"])


def main() -> int:
    pilot_frame = frame(PILOT)
    pilot_s, _ = ours(to_bars(pilot_frame, "BENCH", "1m", "synthetic"))
    projected = pilot_s / PILOT * BARS
    n = BARS if projected <= BUDGET_S else int(PILOT * BUDGET_S / pilot_s) // 1000 * 1000
    label = (
        f"{BARS:,} bars"
        if n == BARS
        else f"{n:,} bars (1M would take ~{projected:.0f} s; rate measured on {n:,})"
    )
    data = frame(n)
    start = time.perf_counter()
    bars = to_bars(data, "BENCH", "1m", "synthetic")
    build_s = time.perf_counter() - start
    run_s, fills = ours(bars)
    ref_s, trades = reference(data)
    floor_s = strategy_floor(bars)
    rate, ref_rate, build_rate, floor_rate = n / run_s, n / ref_s, n / build_s, n / floor_s
    print(f"data: {label}, sma_cross fast={FAST} slow={SLOW}, sizing all, no costs")
    print(f"to_bars: {build_s:.1f} s, {build_rate:,.0f} bars/s (not counted below)")
    print(f"bastion backtest engine: {run_s:.1f} s, {rate:,.0f} bars/s, {fills} fills")
    print(f"backtesting.py: {ref_s:.1f} s, {ref_rate:,.0f} bars/s, {trades} round trips")
    print(
        f"floor, sma_cross on_bar alone: {floor_s:.1f} s, {floor_rate:,.0f} bars/s "
        f"({floor_rate / ref_rate:.1f}x backtesting.py; no engine calling it per bar can pass this)"
    )
    if n != BARS:
        print(
            f"extrapolated to {BARS:,} bars: engine ~{BARS / rate:.0f} s, to_bars ~{BARS / build_rate:.0f} s"
        )
    rows = [
        {"name": f"backtest sma_cross, {n:,} bars", "value": rate, "unit": "bars/s", "ratio": rate / ref_rate,
         "reference": f"backtesting.py {ref_rate:,.0f} bars/s", "goal": ">= 10x"},
        {"name": f"backtest to_bars, {n:,} bars", "value": build_rate, "unit": "bars/s", "ratio": None,
         "reference": "", "goal": ""},
    ]  # fmt: skip
    for row in rows:
        print("RESULT " + json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
