"""Moving averages, the building blocks of every other indicator.

Conventions (TA-Lib's): a value is NaN (batch) / ``None`` (streaming) until the window is full; the EMA is
seeded with the simple average of its first ``n`` inputs. Window sums use ``math.fsum`` (exactly rounded),
so a value depends only on the window, never on summation order or on history before it.

Batch and streaming forms run the same arithmetic in the same order, so they agree bit for bit.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np

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
    EMA_t = (x_t - EMA_{t-1}) * k + EMA_{t-1}. Warm-up: n - 1 bars."""

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
        self.value = (x - self.value) * self.k + self.value
        return self.value


def ema_tail(xs: Sequence[float], n: int) -> list[float]:
    """EMA(n) of ``xs`` from index n - 1 on (empty when ``len(xs) < n``); the batch kernel."""
    check_period(n)
    if len(xs) < n:
        return []
    k = 2.0 / (n + 1)
    prev = math.fsum(xs[:n]) / n
    out = [prev]
    append = out.append
    for x in xs[n:]:
        prev = (x - prev) * k + prev
        append(prev)
    return out


def ema(values: np.ndarray | Sequence[float], n: int) -> np.ndarray:
    """Batch EMA(n); see ``Ema``."""
    xs = as_list(values)
    return place(len(xs), n - 1, ema_tail(xs, n))
