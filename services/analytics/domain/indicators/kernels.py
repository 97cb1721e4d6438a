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
def macd_warmup_kernel(
    xs: np.ndarray,
    at: int,
    first: int,
    slow_seed: float,
    fast_seed: float,
    slow_w: np.ndarray,
    fast_w: np.ndarray,
    line: np.ndarray,
) -> tuple[float, float]:
    """``line[at:first + 1]`` (fast EMA - slow EMA, both seeded at ``at``); the two EMAs at ``first``."""
    slow, fast = slow_seed, fast_seed
    line[at] = fast - slow
    sa, sb, fa, fb = slow_w[0], slow_w[1], fast_w[0], fast_w[1]
    for t in range(at + 1, first + 1):
        x = xs[t]
        slow = slow * sb + sa * x
        fast = fast * fb + fa * x
        line[t] = fast - slow
    return slow, fast


@njit(cache=True, nogil=True)
def macd_kernel(
    xs: np.ndarray,
    first: int,
    slow: float,
    fast: float,
    sig: float,
    weights: np.ndarray,
    line: np.ndarray,
    signal: np.ndarray,
    hist: np.ndarray,
) -> None:
    """From ``first`` on, in one pass: both EMAs, the line, the signal EMA (seeded ``sig`` at ``first``)
    and the histogram; NaN before ``first``. ``weights``: slow, fast, signal (alpha, beta) in a row."""
    line[:first] = NAN
    signal[:first] = NAN
    hist[:first] = NAN
    signal[first] = sig
    hist[first] = line[first] - sig
    sa, sb, fa, fb, ga, gb = weights[0], weights[1], weights[2], weights[3], weights[4], weights[5]
    for t in range(first + 1, len(xs)):
        x = xs[t]
        slow = slow * sb + sa * x
        fast = fast * fb + fa * x
        value = fast - slow
        sig = sig * gb + ga * value
        line[t] = value
        signal[t] = sig
        hist[t] = value - sig
