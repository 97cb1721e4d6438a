"""Compiled loops (numba) behind the batch indicators: the recursive averages and the fused RSI.

Each kernel is the streaming form's arithmetic written as one loop over the series: the same IEEE-754
operations in the same order (numba compiles without ``fastmath``, so no reassociation and no fused
multiply-add), which is why batch and streaming forms agree bit for bit; ``tests/unit/analytics`` checks it
on random walks. Seeds are computed by the callers with ``math.fsum``. Compiled code is cached on disk
(``cache=True``), so only the first use on a machine pays the compile time. Output arrays are allocated by
the callers with numpy (which asks the kernel for huge pages on big arrays) and filled here.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NAN = np.nan


@njit(cache=True, nogil=True)
def smooth_kernel(xs: np.ndarray, at: int, seed: float, alpha: float, beta: float, out: np.ndarray) -> None:
    """``out``: NaN before ``at``, ``seed`` at ``at``, then ``y_t = y_{t-1} * beta + alpha * xs[t]``."""
    out[:at] = NAN
    prev = seed
    out[at] = prev
    for t in range(at + 1, len(xs)):
        prev = prev * beta + alpha * xs[t]
        out[t] = prev


@njit(cache=True, nogil=True)
def rsi_kernel(
    xs: np.ndarray, n: int, avg_gain: float, avg_loss: float, alpha: float, beta: float, out: np.ndarray
) -> None:
    """``out``: Wilder RSI(n) from index n on, given the seed averages of the first n gains and losses."""
    out[:n] = NAN
    total = avg_gain + avg_loss
    out[n] = 50.0 if total == 0.0 else 100.0 * (avg_gain / total)
    for i in range(n + 1, len(xs)):
        d = xs[i] - xs[i - 1]
        gain = d if d > 0 else 0.0
        loss = -d if d < 0 else 0.0
        avg_gain = avg_gain * beta + alpha * gain
        avg_loss = avg_loss * beta + alpha * loss
        total = avg_gain + avg_loss
        out[i] = 50.0 if total == 0.0 else 100.0 * (avg_gain / total)


@njit(cache=True, nogil=True)
def macd_line_kernel(
    xs: np.ndarray,
    at: int,
    slow_seed: float,
    fast_seed: float,
    slow_w: np.ndarray,
    fast_w: np.ndarray,
    out: np.ndarray,
) -> None:
    """``out``: fast EMA - slow EMA, both seeded at ``at`` (``slow - 1``); ``*_w`` are (alpha, beta)."""
    out[:at] = NAN
    slow, fast = slow_seed, fast_seed
    out[at] = fast - slow
    sa, sb, fa, fb = slow_w[0], slow_w[1], fast_w[0], fast_w[1]
    for t in range(at + 1, len(xs)):
        x = xs[t]
        slow = slow * sb + sa * x
        fast = fast * fb + fa * x
        out[t] = fast - slow


@njit(cache=True, nogil=True)
def macd_signal_kernel(
    line: np.ndarray, at: int, seed: float, alpha: float, beta: float, sig: np.ndarray, hist: np.ndarray
) -> None:
    """``sig``, ``hist``: signal EMA (seeded at ``at``) and histogram; ``line`` is blanked before ``at``."""
    line[:at] = NAN
    sig[:at] = NAN
    hist[:at] = NAN
    prev = seed
    sig[at] = prev
    hist[at] = line[at] - prev
    for t in range(at + 1, len(line)):
        prev = prev * beta + alpha * line[t]
        sig[t] = prev
        hist[t] = line[t] - prev
