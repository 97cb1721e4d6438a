"""Indicators: batch RSI(14) + MACD(12, 26, 9) on 1M bars next to a reference measured in the same run
(TA-Lib's C implementation when ``talib`` is importable, else pandas' ewm), and the streaming cost per bar
of the whole indicator set the service keeps per symbol.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.analytics.domain.indicators import IndicatorSet, macd, rsi

N = 1_000_000
STREAM_N = 50_000


def _best(fn: Callable[[], object], repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _pandas_reference(close: np.ndarray) -> None:
    s = pd.Series(close)
    d = s.diff()
    gain = d.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    loss = (-d).clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    _ = 100 * gain / (gain + loss)
    line = s.ewm(span=12, adjust=False).mean() - s.ewm(span=26, adjust=False).mean()
    _ = line - line.ewm(span=9, adjust=False).mean()


def _reference(close: np.ndarray) -> tuple[str, Callable[[], object]]:
    try:
        import talib
    except ImportError:
        print("note: TA-Lib (`talib`) is not installed; the reference is pandas' ewm (Cython) instead")
        return "pandas ewm", lambda: _pandas_reference(close)
    return "TA-Lib", lambda: (talib.RSI(close, 14), talib.MACD(close, 12, 26, 9))


def main() -> None:
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, N)))
    ours = _best(lambda: (rsi(close, 14), macd(close, 12, 26, 9)))
    ref_name, ref_fn = _reference(close)
    ref = _best(ref_fn)
    print(f"batch RSI+MACD, {N:,} bars: bastion {ours * 1e3:.0f} ms, {ref_name} {ref * 1e3:.0f} ms")
    result = {
        "name": "indicators batch RSI+MACD 1M bars",
        "value": ours * 1e3,
        "unit": "ms",
        "reference": f"{ref_name} {ref * 1e3:.0f} ms",
        "ratio": ours / ref,
        "goal": "<= 2x TA-Lib",
    }
    print("RESULT " + json.dumps(result))

    high, low = close * 1.001, close * 0.999
    rows = list(
        zip(high[:STREAM_N].tolist(), low[:STREAM_N].tolist(), close[:STREAM_N].tolist(), strict=True)
    )
    state = IndicatorSet()
    started = time.perf_counter()
    for h, lo, c in rows:
        state.update(h, lo, c)
    per_bar = (time.perf_counter() - started) / STREAM_N
    print(f"streaming, all 14 indicator values per bar: {per_bar * 1e6:.1f} us/bar")
    result = {
        "name": "indicators streaming (full set) per bar",
        "value": per_bar * 1e6,
        "unit": "us/bar",
        "reference": "",
        "ratio": None,
        "goal": "O(1) per bar",
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
