"""ADX (Wilder, TA-Lib conventions) and the Hull-style exponential moving average (EHMA).

ADX(n): for each bar after the first, up = h_t - h_{t-1}, down = l_{t-1} - l_t; +DM = up when up > down and
up > 0, else 0; -DM = down when down > up and down > 0, else 0; TR as for ATR. The first n - 1 values of
+DM, -DM and TR are summed; from then on each sum S is smoothed S_t = S_{t-1} - S_{t-1} / n + x_t.
+DI = 100 * S(+DM) / S(TR), -DI = 100 * S(-DM) / S(TR), DX = 100 * |+DI - -DI| / (+DI + -DI).
ADX is seeded with the mean of the first n DX values (an undefined DX, when S(TR) or +DI + -DI is 0,
counts as 0) and then ADX_t = (ADX_{t-1} * (n - 1) + DX_t) / n (kept unchanged on an undefined DX).
Warm-up: 2n - 1 bars (first value at index 27 for n = 14). +DI / -DI are reported from the same bar
(0 when S(TR) is 0).

EHMA(n) = EMA(2 * EMA(c, n // 2) - EMA(c, n), round(sqrt(n))), every EMA seeded as ``core.Ema``.
Warm-up: n - 1 + round(sqrt(n)) - 1 bars (18 for n = 16).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from services.analytics.domain.indicators.core import Ema, as_array, as_list, check_period, ema_series, place
from services.analytics.domain.indicators.volatility import true_range

AdxValue = tuple[float, float, float]


def _directional(h: float, lo: float, ph: float, pl: float) -> tuple[float, float]:
    up, down = h - ph, pl - lo
    plus = up if up > 0 and up > down else 0.0
    minus = down if down > 0 and down > up else 0.0
    return plus, minus


def _di(pdm: float, mdm: float, tr: float) -> tuple[float, float, float | None]:
    """(+DI, -DI, DX or None when undefined)."""
    if tr == 0.0:
        return 0.0, 0.0, None
    pdi, mdi = 100.0 * (pdm / tr), 100.0 * (mdm / tr)
    total = pdi + mdi
    return pdi, mdi, None if total == 0.0 else 100.0 * (abs(mdi - pdi) / total)


class Adx:
    """Streaming ADX(n): (adx, +DI, -DI) once warm, else None."""

    __slots__ = ("adx", "count", "dx_sum", "mdm", "n", "pdm", "prev", "tr")

    def __init__(self, n: int = 14) -> None:
        self.n = check_period(n, 2)
        self.prev: tuple[float, float, float] | None = None
        self.count = 0
        self.pdm = self.mdm = self.tr = self.dx_sum = 0.0
        self.adx: float | None = None

    def update(self, high: float, low: float, close: float) -> AdxValue | None:
        prev, self.prev = self.prev, (high, low, close)
        if prev is None:
            return None
        plus, minus = _directional(high, low, prev[0], prev[1])
        tr = true_range(high, low, prev[2])
        n = self.n
        self.count += 1
        if self.count < n:
            self.pdm, self.mdm, self.tr = self.pdm + plus, self.mdm + minus, self.tr + tr
            return None
        self.pdm = self.pdm - self.pdm / n + plus
        self.mdm = self.mdm - self.mdm / n + minus
        self.tr = self.tr - self.tr / n + tr
        pdi, mdi, dx = _di(self.pdm, self.mdm, self.tr)
        if self.adx is None:
            self.dx_sum += 0.0 if dx is None else dx
            if self.count < 2 * n - 1:
                return None
            self.adx = self.dx_sum / n
        elif dx is not None:
            self.adx = (self.adx * (n - 1) + dx) / n
        return self.adx, pdi, mdi


def adx(
    high: np.ndarray | Sequence[float],
    low: np.ndarray | Sequence[float],
    close: np.ndarray | Sequence[float],
    n: int = 14,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch ADX(n): (adx, +DI, -DI) arrays; see the module docstring."""
    check_period(n, 2)
    hs, ls, cs = as_list(high), as_list(low), as_list(close)
    pdm = mdm = tr = dx_sum = 0.0
    value: float | None = None
    out: list[AdxValue] = []
    for i in range(1, len(cs)):
        plus, minus = _directional(hs[i], ls[i], hs[i - 1], ls[i - 1])
        t = true_range(hs[i], ls[i], cs[i - 1])
        if i < n:
            pdm, mdm, tr = pdm + plus, mdm + minus, tr + t
            continue
        pdm, mdm, tr = pdm - pdm / n + plus, mdm - mdm / n + minus, tr - tr / n + t
        pdi, mdi, dx = _di(pdm, mdm, tr)
        if value is None:
            dx_sum += 0.0 if dx is None else dx
            if i < 2 * n - 1:
                continue
            value = dx_sum / n
        elif dx is not None:
            value = (value * (n - 1) + dx) / n
        out.append((value, pdi, mdi))
    first = 2 * n - 1
    cols = [place(len(cs), first, [row[j] for row in out]) for j in range(3)]
    return cols[0], cols[1], cols[2]


def _ehma_periods(n: int) -> tuple[int, int, int]:
    check_period(n, 4)
    return n // 2, n, round(math.sqrt(n))


class Ehma:
    """Streaming EHMA(n); see the module docstring."""

    __slots__ = ("fast", "outer", "slow")

    def __init__(self, n: int = 16) -> None:
        half, full, root = _ehma_periods(n)
        self.fast, self.slow, self.outer = Ema(half), Ema(full), Ema(root)

    def update(self, close: float) -> float | None:
        fast, slow = self.fast.update(close), self.slow.update(close)
        if fast is None or slow is None:
            return None
        return self.outer.update(2.0 * fast - slow)


def ehma(close: np.ndarray | Sequence[float], n: int = 16) -> np.ndarray:
    """Batch EHMA(n); see the module docstring."""
    half, full, root = _ehma_periods(n)
    xs = as_array(close)
    raw = 2.0 * ema_series(xs, half) - ema_series(xs, full)
    return ema_series(raw, root, first=full - 1)
