"""Technical indicators, each in a batch form (a whole series) and a streaming form (O(1) state per bar)
that agree bit for bit. Formulas and warm-up lengths are in each module's docstring (TA-Lib conventions).
"""

from services.analytics.domain.indicators.bundle import (
    INDICATOR_NAMES,
    SNAPSHOT_NAMES,
    IndicatorSet,
    Values,
    compute_all,
    rows_of,
)
from services.analytics.domain.indicators.core import Ema, Sma, ema, sma
from services.analytics.domain.indicators.momentum import Macd, Rsi, macd, rsi
from services.analytics.domain.indicators.trend import Adx, Ehma, adx, ehma
from services.analytics.domain.indicators.volatility import Atr, Bollinger, atr, bollinger

__all__ = [
    "INDICATOR_NAMES",
    "SNAPSHOT_NAMES",
    "Adx",
    "Atr",
    "Bollinger",
    "Ehma",
    "Ema",
    "IndicatorSet",
    "Macd",
    "Rsi",
    "Sma",
    "Values",
    "adx",
    "atr",
    "bollinger",
    "compute_all",
    "ehma",
    "ema",
    "macd",
    "rows_of",
    "rsi",
    "sma",
]
