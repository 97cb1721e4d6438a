"""Every indicator of a bar under its published name, in batch and streaming form.

Names (the keys of ``InsightEvent.indicators`` and of the ``analytics.<SYM>`` snapshot):
``sma_20, ema_20, rsi_14, macd, macd_signal, macd_hist, atr_14, bb_upper, bb_middle, bb_lower, adx_14``
plus ``plus_di_14, minus_di_14, ehma_16`` (insight only). A value is ``None`` (NaN in batch) until warm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from services.analytics.domain.indicators.core import Ema, Sma, ema, sma
from services.analytics.domain.indicators.momentum import Macd, Rsi, macd, rsi
from services.analytics.domain.indicators.trend import Adx, Ehma, adx, ehma
from services.analytics.domain.indicators.volatility import Atr, Bollinger, atr, bollinger

#: The indicator series of the dashboard snapshot, in display order (docs/snapshots.md).
SNAPSHOT_NAMES: tuple[str, ...] = (
    "sma_20",
    "ema_20",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "atr_14",
    "adx_14",
)
#: Every indicator the service computes (insight payload order).
INDICATOR_NAMES: tuple[str, ...] = (
    "sma_20",
    "ema_20",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "atr_14",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "adx_14",
    "plus_di_14",
    "minus_di_14",
    "ehma_16",
)

Values = dict[str, float | None]


class IndicatorSet:
    """The streaming state of one symbol: ``update`` takes one bar, returns its indicator values."""

    __slots__ = ("adx", "atr", "bb", "ehma", "ema", "macd", "rsi", "sma")

    def __init__(self) -> None:
        self.sma, self.ema, self.rsi, self.macd = Sma(20), Ema(20), Rsi(14), Macd(12, 26, 9)
        self.atr, self.bb, self.adx, self.ehma = Atr(14), Bollinger(20, 2.0), Adx(14), Ehma(16)

    def update(self, high: float, low: float, close: float) -> Values:
        m = self.macd.update(close)
        b = self.bb.update(close)
        a = self.adx.update(high, low, close)
        return {
            "sma_20": self.sma.update(close),
            "ema_20": self.ema.update(close),
            "rsi_14": self.rsi.update(close),
            "macd": m[0] if m else None,
            "macd_signal": m[1] if m else None,
            "macd_hist": m[2] if m else None,
            "atr_14": self.atr.update(high, low, close),
            "bb_upper": b[0] if b else None,
            "bb_middle": b[1] if b else None,
            "bb_lower": b[2] if b else None,
            "adx_14": a[0] if a else None,
            "plus_di_14": a[1] if a else None,
            "minus_di_14": a[2] if a else None,
            "ehma_16": self.ehma.update(close),
        }


def compute_all(
    high: np.ndarray | Sequence[float], low: np.ndarray | Sequence[float], close: np.ndarray | Sequence[float]
) -> dict[str, np.ndarray]:
    """Batch form of ``IndicatorSet``: one NaN-padded array per name, aligned with the input."""
    line, signal, hist = macd(close, 12, 26, 9)
    upper, middle, lower = bollinger(close, 20, 2.0)
    adx_, plus_di, minus_di = adx(high, low, close, 14)
    return {
        "sma_20": sma(close, 20),
        "ema_20": ema(close, 20),
        "rsi_14": rsi(close, 14),
        "macd": line,
        "macd_signal": signal,
        "macd_hist": hist,
        "atr_14": atr(high, low, close, 14),
        "bb_upper": upper,
        "bb_middle": middle,
        "bb_lower": lower,
        "adx_14": adx_,
        "plus_di_14": plus_di,
        "minus_di_14": minus_di,
        "ehma_16": ehma(close, 16),
    }


def rows_of(series: dict[str, np.ndarray]) -> list[Values]:
    """Batch arrays as one ``Values`` dict per bar (NaN -> None), in ``INDICATOR_NAMES`` order."""
    cols = {name: series[name].tolist() for name in INDICATOR_NAMES}
    length = len(next(iter(cols.values()))) if cols else 0
    return [
        {name: (None if v != v else v) for name in INDICATOR_NAMES for v in (cols[name][i],)}
        for i in range(length)
    ]
