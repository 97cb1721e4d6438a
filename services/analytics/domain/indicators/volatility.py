"""ATR (Wilder) and Bollinger Bands, TA-Lib conventions.

True range TR_t = max(h_t - l_t, |h_t - c_{t-1}|, |l_t - c_{t-1}|); it needs a previous close, so the first
bar has none (TA-Lib's TRANGE). ATR(n): seed at index n = the mean of the first n true ranges (bars 1..n),
then Wilder's smoothing ATR_t = ATR_{t-1} * ((n - 1) / n) + TR_t / n (``core.step``). Warm-up: n bars.

Bollinger(n, k): middle = SMA(n) of the close; sd = population standard deviation of the same n closes
(divide by n, as TA-Lib's STDDEV); upper = middle + k * sd, lower = middle - k * sd. Warm-up: n - 1 bars.
The deviation is computed in two passes over the window (exact sums), not from running sums of squares.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np

from services.analytics.domain.indicators.core import (
    NAN,
    as_array,
    as_list,
    check_period,
    place,
    step,
    wilder_series,
    wilder_weights,
)


def true_range(high: float, low: float, prev_close: float) -> float:
    return max(high - low, abs(high - prev_close), abs(low - prev_close))


class Atr:
    """Streaming Wilder ATR(n); see the module docstring."""

    __slots__ = ("n", "prev_close", "seed", "value")

    def __init__(self, n: int = 14) -> None:
        self.n = check_period(n)
        self.prev_close: float | None = None
        self.seed: list[float] = []
        self.value: float | None = None

    def update(self, high: float, low: float, close: float) -> float | None:
        if self.prev_close is None:
            self.prev_close = close
            return None
        tr = true_range(high, low, self.prev_close)
        self.prev_close = close
        if self.value is None:
            self.seed.append(tr)
            if len(self.seed) < self.n:
                return None
            self.value = math.fsum(self.seed) / self.n
            self.seed = []
        else:
            self.value = step(self.value, tr, *wilder_weights(self.n))
        return self.value


def true_ranges(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """``true_range`` of every bar, aligned with the bars (NaN for bar 0, which has no previous close)."""
    out = np.empty(len(close))
    out[:1] = NAN
    h, lo, pc = high[1:], low[1:], close[:-1]
    np.maximum(np.maximum(h - lo, np.abs(h - pc)), np.abs(lo - pc), out=out[1:])
    return out


def atr(
    high: np.ndarray | Sequence[float],
    low: np.ndarray | Sequence[float],
    close: np.ndarray | Sequence[float],
    n: int = 14,
) -> np.ndarray:
    """Batch Wilder ATR(n); see the module docstring."""
    check_period(n)
    return wilder_series(true_ranges(as_array(high), as_array(low), as_array(close)), n, first=1)


def _bands(window: Sequence[float], n: int, k: float) -> tuple[float, float, float]:
    mid = math.fsum(window) / n
    sd = math.sqrt(math.fsum((x - mid) * (x - mid) for x in window) / n)
    return mid + k * sd, mid, mid - k * sd


class Bollinger:
    """Streaming Bollinger(n, k): (upper, middle, lower) once warm, else None."""

    __slots__ = ("k", "n", "window")

    def __init__(self, n: int = 20, k: float = 2.0) -> None:
        self.n = check_period(n)
        self.k = k
        self.window: deque[float] = deque(maxlen=n)

    def update(self, close: float) -> tuple[float, float, float] | None:
        self.window.append(close)
        if len(self.window) < self.n:
            return None
        return _bands(self.window, self.n, self.k)


def bollinger(
    close: np.ndarray | Sequence[float], n: int = 20, k: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch Bollinger(n, k): (upper, middle, lower) arrays; see the module docstring."""
    check_period(n)
    xs = as_list(close)
    rows = [_bands(xs[i - n + 1 : i + 1], n, k) for i in range(n - 1, len(xs))]
    cols = [place(len(xs), n - 1, [r[j] for r in rows]) for j in range(3)]
    return cols[0], cols[1], cols[2]
