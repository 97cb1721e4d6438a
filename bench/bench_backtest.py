"""`bastion backtest` engine throughput (bars/s), next to backtesting.py on the same bars in the same run.

* data: a seeded random walk of 1-minute bars of one symbol (1,000,000 by default; ``BASTION_BENCH_BARS``
  or the first argument changes it), the same frame for both engines;
* ours: from the frame to the result, as ``bastion backtest`` does after reading the file: the bars as
  columns (``BarSeries.of_frame``), then ``Backtest.create("sma_cross", ...).run`` with fast=10, slow=30,
  ``--sizing all``, no commission or slippage, no risk limits: the strategy's decisions over the whole
  history, then the risk checks, sizing and paper fills of the services, with every event built;
* the reference: backtesting.py (PyPI ``backtesting``) running the same rule (long when SMA10 crosses above
  SMA30, flat when it crosses below; buy with all cash at the next open) on the same bars, ``Backtest.run``
  including its stats;
* the command as a user runs it: the same bars as a CSV file, ``bastion backtest ... --json --report`` in a
  process of its own (reading and checking the file, the run, the summary and both files), next to the run
  alone measured above;
* where our time goes (printed, not RESULT rows): the strategy's decisions alone (``Backtest.decide``), and
  the rest per decision. Each decision is a signal, a risk decision, an order, a fill and the order's fill
  event, every one with its derived id, as the services publish them; ``bars / (decisions x that cost)`` is
  the rate the engine could not pass even if the bars between decisions cost nothing; and the floor under
  that cost: only building each decision's events as they are (trusted, from values made beforehand, with
  their ids), no risk check, sizing or fill at all. Against the 10x goal's budget per decision, it shows
  whether any engine that builds the events the services publish could reach the goal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from bastion.backtest.engine import Backtest, execution_config, parse_sizing
from services.marketdata.domain.bars import BarSeries
from shared.collector import collector_paused
from shared.contracts.envelope import Event, derive_event_id, trusted
from shared.contracts.risk import RiskCheck, RiskDecision

BARS = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("BASTION_BENCH_BARS", "1000000"))
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


def ours(data: pd.DataFrame) -> tuple[float, float, int, int, list[Event]]:
    """Seconds from the frame to the result, of which seconds deciding; fills, decisions and the events."""
    config = execution_config(Decimal(100_000), Decimal(0), Decimal(0), parse_sizing("all", False), None)
    start = time.perf_counter()
    series = BarSeries.of_frame(data, "BENCH", "1m", "synthetic")
    backtest = Backtest.create("sma_cross", "sma_cross", {"fast": FAST, "slow": SLOW}, config)
    result = backtest.run([series])
    total = time.perf_counter() - start
    probe = Backtest.create("sma_cross", "sma_cross", {"fast": FAST, "slow": SLOW}, config)
    with collector_paused():  # as inside run
        start = time.perf_counter()
        decisions = probe.decide(series)
        deciding = time.perf_counter() - start
    return total, deciding, len(result.fills), len(decisions), backtest.events


def events_floor(events: list[Event]) -> float:
    """Seconds to build ``events`` again and nothing else: each one's id derived (from its own id's text as
    the key, about as long as the engine's keys) and the event made from its values, unvalidated, a risk
    decision's checks too."""
    made = []
    for event in events:
        values = dict(event.__dict__)
        checks = [dict(c.__dict__) for c in event.checks] if isinstance(event, RiskDecision) else []
        made.append((type(event), event.SCHEMA, event.producer, str(event.event_id), values, checks))
    with collector_paused():
        start = time.perf_counter()
        for model, schema, producer, key, values, checks in made:
            derive_event_id(schema, producer, key)
            for check in checks:
                trusted(RiskCheck, check)
            trusted(model, values)
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


def command(data: pd.DataFrame) -> float:
    """Seconds of ``bastion backtest`` from the CSV file to the summary, the JSON and the report."""
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "bench.csv"
        data.to_csv(csv, index=False)
        args = [sys.executable, "-m", "bastion", "backtest", "--strategy", "sma_cross", "--input", str(csv)]
        args += ["--set", f"fast={FAST}", "--set", f"slow={SLOW}", "--interval", "1m"]
        args += ["--json", str(Path(tmp) / "out.json"), "--report", str(Path(tmp) / "out.html")]
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True, cwd=Path(__file__).resolve().parents[1])
        return time.perf_counter() - start


def main() -> int:
    data = frame(BARS)
    run_s, decide_s, fills, decisions, events = ours(data)
    floor_s, built = events_floor(events), len(events)
    del events
    ref_s, trades = reference(data)
    rate, ref_rate = BARS / run_s, BARS / ref_s
    per_decision = (run_s - decide_s) / max(decisions, 1)
    ceiling = BARS / (decisions * per_decision) if decisions else float("inf")
    print(f"data: {BARS:,} bars, sma_cross fast={FAST} slow={SLOW}, sizing all, no costs")
    print(f"bastion backtest: {run_s:.2f} s, {rate:,.0f} bars/s, {decisions} decisions, {fills} fills")
    print(f"backtesting.py: {ref_s:.2f} s, {ref_rate:,.0f} bars/s, {trades} round trips")
    print(f"  the strategy's decisions alone: {decide_s:.3f} s ({BARS / decide_s:,.0f} bars/s)")
    print(
        f"  the rest: {per_decision * 1e6:.0f} us per decision (signal, risk decision, order, fill, ids);"
        f" at {decisions / BARS * 100:.1f} decisions per 100 bars that alone caps the engine at"
        f" {ceiling:,.0f} bars/s ({ceiling / ref_rate:.1f}x backtesting.py)"
    )
    budget = (ref_s / 10 - decide_s) / max(decisions, 1)
    floor = floor_s / max(decisions, 1)
    print(
        f"  the floor: building a decision's {built / max(decisions, 1):.1f} events alone (ids and check"
        f" records; no check run, no sizing, no fill) takes {floor * 1e6:.1f} us, against"
        f" {budget * 1e6:.1f} us per decision for 10x backtesting.py; an engine doing nothing else"
        f" would reach {BARS / (decide_s + decisions * floor) / ref_rate:.1f}x"
    )
    row = {
        "name": f"backtest sma_cross, {BARS:,} bars",
        "value": rate,
        "unit": "bars/s",
        "ratio": rate / ref_rate,
        "reference": f"backtesting.py {ref_rate:,.0f} bars/s",
        "goal": ">= 10x",
    }
    print("RESULT " + json.dumps(row))
    command_s = command(data)
    print(
        f"bastion backtest command, CSV file to summary, JSON and report: {command_s:.2f} s"
        f" ({command_s - run_s:.2f} s beside the run)"
    )
    row = {
        "name": f"backtest command, {BARS:,}-bar CSV to JSON + report",
        "value": command_s,
        "unit": "s",
        "ratio": command_s / run_s,
        "reference": f"the run alone {run_s:.2f} s",
        "goal": "",
    }
    print("RESULT " + json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
