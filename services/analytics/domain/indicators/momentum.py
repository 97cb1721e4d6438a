"""RSI (Wilder) and MACD (12/26/9), TA-Lib conventions.

RSI(n): d_t = c_t - c_{t-1}; gain = max(d, 0), loss = max(-d, 0). Seed at index n: the simple averages of
the first n gains and losses; then Wilder's smoothing avg_t = avg_{t-1} * ((n - 1) / n) + g_t / n
(``core.step``; it rounds differently from TA-Lib's ``(avg * (n - 1) + g) / n``, so the two agree to
about 1e-13 relative, not bit for bit).
RSI = 100 * avg_gain / (avg_gain + avg_loss). Warm-up: n bars (first value at index n). When both
averages are 0 (a flat run) RSI is 50 (TA-Lib prints 0 there; 50 reads as "no momentum", not "oversold").

MACD(fast, slow, signal): line = EMA(fast) - EMA(slow); signal = EMA(signal) of the line; hist = line -
signal. As in TA-Lib both EMAs start at index slow - 1: the fast EMA is seeded with the SMA of the ``fast``
closes ending there (not the first ``fast`` closes), and the signal EMA is seeded with the SMA of the first
``signal`` line values. All three are NaN until index slow + signal - 2 (33 for 12/26/9).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from services.analytics.domain.indicators.core import (
    NAN,
    Ema,
    as_array,
    check_period,
    ema_weights,
    step,
    wilder_weights,
)
from services.analytics.domain.indicators.kernels import macd_kernel, macd_warmup_kernel, rsi_kernel


def _rsi(avg_gain: float, avg_loss: float) -> float:
    total = avg_gain + avg_loss
    return 50.0 if total == 0.0 else 100.0 * (avg_gain / total)


class Rsi:
    """Streaming Wilder RSI(n); see the module docstring."""

    __slots__ = ("avg_gain", "avg_loss", "gains", "losses", "n", "prev")

    def __init__(self, n: int = 14) -> None:
        self.n = check_period(n, 2)
        self.prev: float | None = None
        self.gains: list[float] = []
        self.losses: list[float] = []
        self.avg_gain: float | None = None
        self.avg_loss = 0.0

    def update(self, close: float) -> float | None:
        if self.prev is None:
            self.prev = close
            return None
        d = close - self.prev
        self.prev = close
        gain = d if d > 0 else 0.0
        loss = -d if d < 0 else 0.0
        n = self.n
        if self.avg_gain is None:
            self.gains.append(gain)
            self.losses.append(loss)
            if len(self.gains) < n:
                return None
            self.avg_gain = math.fsum(self.gains) / n
            self.avg_loss = math.fsum(self.losses) / n
            self.gains, self.losses = [], []
        else:
            alpha, beta = wilder_weights(n)
            self.avg_gain = step(self.avg_gain, gain, alpha, beta)
            self.avg_loss = step(self.avg_loss, loss, alpha, beta)
        return _rsi(self.avg_gain, self.avg_loss)


def rsi(close: np.ndarray | Sequence[float], n: int = 14) -> np.ndarray:
    """Batch Wilder RSI(n); see the module docstring. The seed averages are ``math.fsum`` means of the first
    n gains and losses, as in ``Rsi``; the rest is one compiled loop (``kernels.rsi_kernel``) doing the
    streaming form's arithmetic."""
    check_period(n, 2)
    xs = np.ascontiguousarray(as_array(close))
    if len(xs) <= n:
        return np.full(len(xs), NAN)
    d = np.diff(xs[: n + 1])
    gains, losses = np.where(d > 0, d, 0.0).tolist(), np.where(d < 0, -d, 0.0).tolist()
    alpha, beta = wilder_weights(n)
    out = np.empty(len(xs))
    rsi_kernel(xs, n, math.fsum(gains) / n, math.fsum(losses) / n, alpha, beta, out)
    return out


def _check_macd(fast: int, slow: int, signal: int) -> None:
    check_period(fast, 2)
    check_period(signal)
    if slow <= fast:
        raise ValueError(f"MACD slow period ({slow}) must exceed the fast one ({fast})")


class Macd:
    """Streaming MACD; ``update`` returns (line, signal, hist) once warm, else None."""

    __slots__ = ("count", "fast", "offset", "signal", "slow")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        _check_macd(fast, slow, signal)
        self.fast, self.slow, self.signal = Ema(fast), Ema(slow), Ema(signal)
        self.offset = slow - fast
        self.count = 0

    def update(self, close: float) -> tuple[float, float, float] | None:
        self.count += 1
        slow = self.slow.update(close)
        fast = self.fast.update(close) if self.count > self.offset else None
        if slow is None or fast is None:
            return None
        line = fast - slow
        sig = self.signal.update(line)
        if sig is None:
            return None
        return line, sig, line - sig


def macd(
    close: np.ndarray | Sequence[float], fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch MACD: (line, signal, hist) arrays; see the module docstring."""
    _check_macd(fast, slow, signal)
    xs = np.ascontiguousarray(as_array(close))
    at, first = slow - 1, slow + signal - 2
    if len(xs) <= first:
        return np.full(len(xs), NAN), np.full(len(xs), NAN), np.full(len(xs), NAN)
    slow_seed = math.fsum(xs[:slow].tolist()) / slow
    fast_seed = math.fsum(xs[slow - fast : slow].tolist()) / fast
    line, sig, hist = np.empty(len(xs)), np.empty(len(xs)), np.empty(len(xs))
    slow_w, fast_w, sig_w = ema_weights(slow), ema_weights(fast), ema_weights(signal)
    ema_at_first = macd_warmup_kernel(
        xs, at, first, slow_seed, fast_seed, np.array(slow_w), np.array(fast_w), line
    )
    sig_seed = math.fsum(line[at : first + 1].tolist()) / signal
    macd_kernel(xs, first, *ema_at_first, sig_seed, np.array([*slow_w, *fast_w, *sig_w]), line, sig, hist)
    return line, sig, hist
