"""Moving averages, the building blocks of every other indicator.

Conventions (TA-Lib's): a value is NaN (batch) / ``None`` (streaming) until the window is full; the EMA is
seeded with the simple average of its first ``n`` inputs. Window sums use ``math.fsum`` (exactly rounded),
so a value depends only on the window, never on summation order or on history before it.

Every recursive average (EMA, Wilder's) steps as ``y_t = y_{t-1} * beta + alpha * x_t`` (``step``). Its
batch form (``smooth``, under ``ema_series`` and ``wilder_series``) runs that very recurrence as a compiled
loop (``kernels.smooth_kernel``): the same two products and one sum per sample, so batch and streaming forms
agree bit for bit.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np

from services.analytics.domain.indicators.kernels import smooth_kernel

NAN = float("nan")


def check_period(n: int, minimum: int = 1) -> int:
    if n < minimum:
        raise ValueError(f"period must be >= {minimum}, not {n}")
    return n


def as_list(values: np.ndarray | Sequence[float]) -> list[float]:
    """The input series as a list of Python floats (fast to loop over)."""
    out: list[float] = np.asarray(values, dtype=np.float64).tolist()
    return out


def place(length: int, start: int, values: Sequence[float] | np.ndarray) -> np.ndarray:
    """A NaN array of ``length`` holding ``values`` from index ``start`` on."""
    out = np.full(length, NAN)
    if len(values):
        out[start : start + len(values)] = values
    return out


# -- recursive averages ---------------------------------------------------------------------------
def ema_weights(n: int) -> tuple[float, float]:
    """(alpha, beta) of EMA(n): alpha = 2 / (n + 1), beta = 1 - alpha."""
    alpha = 2.0 / (n + 1)
    return alpha, 1.0 - alpha


def wilder_weights(n: int) -> tuple[float, float]:
    """(alpha, beta) of Wilder's average over n: alpha = 1 / n, beta = (n - 1) / n."""
    return 1.0 / n, (n - 1) / n


def step(prev: float, x: float, alpha: float, beta: float) -> float:
    """One step of a recursive average; ``smooth`` is its batch form (same operations, same order)."""
    return prev * beta + alpha * x


def smooth(xs: np.ndarray, at: int, seed: float, alpha: float, beta: float) -> np.ndarray:
    """Aligned with ``xs``: NaN before ``at``, ``seed`` at ``at``, then ``step`` over ``xs[at + 1:]``."""
    length = len(xs)
    if at >= length:
        return np.full(length, NAN)
    out = np.empty(length)
    smooth_kernel(np.ascontiguousarray(xs, dtype=np.float64), at, seed, alpha, beta, out)
    return out


def _mean(xs: np.ndarray) -> float:
    return math.fsum(xs.tolist()) / len(xs)


def ema_series(xs: np.ndarray, n: int, first: int = 0) -> np.ndarray:
    """EMA(n) of ``xs[first:]`` aligned with ``xs``: seeded at ``first + n - 1`` with the mean of the n
    values ending there, NaN before; the batch kernel of every EMA."""
    check_period(n)
    at = first + n - 1
    seed = _mean(xs[first : at + 1]) if at < len(xs) else NAN
    return smooth(xs, at, seed, *ema_weights(n))


def wilder_series(xs: np.ndarray, n: int, first: int = 0) -> np.ndarray:
    """Wilder's average over n of ``xs[first:]`` aligned with ``xs``, seeded like ``ema_series``."""
    check_period(n)
    at = first + n - 1
    seed = _mean(xs[first : at + 1]) if at < len(xs) else NAN
    return smooth(xs, at, seed, *wilder_weights(n))


def as_array(values: np.ndarray | Sequence[float]) -> np.ndarray:
    """The input series as a float64 array (no copy when it is one)."""
    return np.asarray(values, dtype=np.float64)


# -- SMA ----------------------------------------------------------------------------------------
class Sma:
    """SMA(n)_t = (x_{t-n+1} + ... + x_t) / n. Warm-up: n - 1 bars (first value at index n - 1)."""

    __slots__ = ("n", "window")

    def __init__(self, n: int) -> None:
        self.n = check_period(n)
        self.window: deque[float] = deque(maxlen=n)

    def update(self, x: float) -> float | None:
        self.window.append(x)
        if len(self.window) < self.n:
            return None
        return math.fsum(self.window) / self.n


def sma(values: np.ndarray | Sequence[float], n: int) -> np.ndarray:
    """Batch SMA(n); see ``Sma``."""
    check_period(n)
    xs = as_list(values)
    out = [math.fsum(xs[i - n + 1 : i + 1]) / n for i in range(n - 1, len(xs))]
    return place(len(xs), n - 1, out)


# -- EMA ----------------------------------------------------------------------------------------
class Ema:
    """EMA(n) with k = 2 / (n + 1): seed = SMA of the first n inputs (at index n - 1), then
    EMA_t = EMA_{t-1} * (1 - k) + k * x_t (``step``). Warm-up: n - 1 bars."""

    __slots__ = ("k", "n", "seed", "value")

    def __init__(self, n: int) -> None:
        self.n = check_period(n)
        self.k = 2.0 / (n + 1)
        self.seed: list[float] = []
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        if self.value is None:
            self.seed.append(x)
            if len(self.seed) < self.n:
                return None
            self.value = math.fsum(self.seed) / self.n
            self.seed = []
            return self.value
        self.value = step(self.value, x, self.k, 1.0 - self.k)
        return self.value


def ema(values: np.ndarray | Sequence[float], n: int) -> np.ndarray:
    """Batch EMA(n); see ``Ema``."""
    return ema_series(as_array(values), n)
