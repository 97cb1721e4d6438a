"""The confluence engine: one bar's indicator values -> a frozen ``ConfluenceInsight``. Pure and stateless.

Each rule reads indicators and votes in [-1, +1] (bearish .. bullish) with a weight:

| component | vote |
|---|---|
| ``trend`` (ema_20, sma_20) | +1 close > EMA > SMA; -1 close < EMA < SMA; +-0.5 close above / below EMA |
| ``rsi_14`` | (RSI - 50) / 20 in between; +0.5 below ``rsi_oversold``, -0.5 above ``rsi_overbought`` |
| ``macd`` | +1 hist > 0 and line > 0; +0.5 hist > 0 and line <= 0; mirrored for hist < 0; 0 when hist = 0 |
| ``bollinger`` | +1 close below the lower band, -1 above the upper band, else 0 |
| ``adx_14`` | +DI > -DI: +1 (-1 when -DI > +DI) when ADX >= ``adx_trend``, 0 below (no trend) |
| ``atr_14`` | always 0, weight 0: it sets the regime, reported for context |

score = sum(weight * vote) / sum(weight) over the components that are warm (weights of cold ones count in
the denominator, so a half-warm bar cannot be confident). bias = bullish when score >= ``bias_threshold``,
bearish when score <= -``bias_threshold``, else neutral. confidence = |score|.

regime: ``volatile`` when ATR / close >= ``volatile_atr_pct`` or (upper - lower) / middle >=
``volatile_bb_width``; else ``trending_up`` / ``trending_down`` when ADX >= ``adx_trend`` (direction from
+DI vs -DI); else ``ranging`` (also during warm-up).

Scores and confidences are rounded to 6 decimals so payloads are stable text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shared.contracts.analytics import Bias, ConfluenceInsight, InsightComponent, Regime
from shared.contracts.common import Interval, Symbol
from shared.contracts.envelope import trusted

Values = Mapping[str, float | None]
Vote = tuple[float, str]
_SYMBOL: TypeAdapter[str] = TypeAdapter(Symbol)
_INTERVAL: TypeAdapter[str] = TypeAdapter(Interval)


class ConfluenceConfig(BaseModel):
    """Weights and thresholds of the rules (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "trend": 1.0,
            "rsi_14": 1.0,
            "macd": 1.0,
            "bollinger": 0.5,
            "adx_14": 1.0,
            "atr_14": 0.0,
        }
    )
    rsi_oversold: float = Field(default=30.0, gt=0, lt=50)
    rsi_overbought: float = Field(default=70.0, gt=50, lt=100)
    adx_trend: float = Field(default=25.0, gt=0, lt=100)
    bias_threshold: float = Field(default=0.2, gt=0, le=1)
    volatile_atr_pct: float = Field(default=0.04, gt=0)
    volatile_bb_width: float = Field(default=0.15, gt=0)


def _clip(x: float) -> float:
    return max(-1.0, min(1.0, x))


def _trend(close: float, v: Values, cfg: ConfluenceConfig) -> Vote | None:
    e, s = v.get("ema_20"), v.get("sma_20")
    if e is None or s is None:
        return None
    if close > e > s:
        return 1.0, "close above a rising EMA20 > SMA20"
    if close < e < s:
        return -1.0, "close below a falling EMA20 < SMA20"
    if close > e:
        return 0.5, "close above EMA20"
    if close < e:
        return -0.5, "close below EMA20"
    return 0.0, "close on EMA20"


def _rsi(close: float, v: Values, cfg: ConfluenceConfig) -> Vote | None:
    r = v.get("rsi_14")
    if r is None:
        return None
    if r < cfg.rsi_oversold:
        return 0.5, f"RSI {r:.1f} oversold (< {cfg.rsi_oversold:g})"
    if r > cfg.rsi_overbought:
        return -0.5, f"RSI {r:.1f} overbought (> {cfg.rsi_overbought:g})"
    return _clip((r - 50.0) / 20.0), f"RSI {r:.1f} momentum"


def _macd(close: float, v: Values, cfg: ConfluenceConfig) -> Vote | None:
    line, hist = v.get("macd"), v.get("macd_hist")
    if line is None or hist is None:
        return None
    if hist == 0:
        return 0.0, "MACD on its signal line"
    side = 1.0 if hist > 0 else -1.0
    strong = (line > 0) == (hist > 0)
    where = "above" if hist > 0 else "below"
    return side * (1.0 if strong else 0.5), f"MACD {where} signal, line {line:+.4g}"


def _bollinger(close: float, v: Values, cfg: ConfluenceConfig) -> Vote | None:
    up, lo = v.get("bb_upper"), v.get("bb_lower")
    if up is None or lo is None:
        return None
    if close < lo:
        return 1.0, "close below the lower band (stretched down)"
    if close > up:
        return -1.0, "close above the upper band (stretched up)"
    return 0.0, "close inside the bands"


def _adx(close: float, v: Values, cfg: ConfluenceConfig) -> Vote | None:
    a, p, m = v.get("adx_14"), v.get("plus_di_14"), v.get("minus_di_14")
    if a is None or p is None or m is None:
        return None
    if a < cfg.adx_trend or p == m:
        return 0.0, f"ADX {a:.1f}: no clear trend"
    return (1.0, f"ADX {a:.1f}, +DI leads") if p > m else (-1.0, f"ADX {a:.1f}, -DI leads")


def _atr(close: float, v: Values, cfg: ConfluenceConfig) -> Vote | None:
    a = v.get("atr_14")
    if a is None:
        return None
    return 0.0, f"ATR {a:.4g} = {100 * a / close:.2f}% of close"


#: component name -> (indicator whose value it reports, rule).
RULES: dict[str, tuple[str, Callable[[float, Values, ConfluenceConfig], Vote | None]]] = {
    "trend": ("ema_20", _trend),
    "rsi_14": ("rsi_14", _rsi),
    "macd": ("macd_hist", _macd),
    "bollinger": ("bb_middle", _bollinger),
    "adx_14": ("adx_14", _adx),
    "atr_14": ("atr_14", _atr),
}


def regime_of(close: float, v: Values, cfg: ConfluenceConfig) -> Regime:
    atr, up, mid, lo = v.get("atr_14"), v.get("bb_upper"), v.get("bb_middle"), v.get("bb_lower")
    if atr is not None and atr / close >= cfg.volatile_atr_pct:
        return "volatile"
    if up is not None and lo is not None and mid and (up - lo) / mid >= cfg.volatile_bb_width:
        return "volatile"
    a, p, m = v.get("adx_14"), v.get("plus_di_14"), v.get("minus_di_14")
    if a is not None and p is not None and m is not None and a >= cfg.adx_trend and p != m:
        return "trending_up" if p > m else "trending_down"
    return "ranging"


def _bias(score: float, cfg: ConfluenceConfig) -> Bias:
    if score >= cfg.bias_threshold:
        return "bullish"
    if score <= -cfg.bias_threshold:
        return "bearish"
    return "neutral"


def evaluate(
    symbol: str, interval: str, as_of: datetime, close: float, values: Values, cfg: ConfluenceConfig
) -> ConfluenceInsight:
    """The insight of one bar from its close and indicator values (``None`` = warming up)."""
    components: list[InsightComponent] = []
    total = weighted = 0.0
    for name, (indicator, rule) in RULES.items():
        weight = cfg.weights.get(name, 0.0)
        total += weight
        vote = rule(close, values, cfg)
        if vote is None:
            components.append(_component(name, None, 0.0, weight, "warming up"))
            continue
        weighted += weight * vote[0]
        components.append(_component(name, values.get(indicator), vote[0], weight, vote[1]))
    score = round(_clip(weighted / total), 6) if total > 0 else 0.0
    fields = {
        "symbol": symbol,
        "interval": interval,
        "as_of": as_of,
        "bias": _bias(score, cfg),
        "confidence": abs(score),
        "score": score,
        "regime": regime_of(close, values, cfg),
        "components": tuple(components),
    }
    if as_of.tzinfo is UTC and type(score) is float and _known(symbol, interval):
        return trusted(ConfluenceInsight, fields)  # every other field is this module's own
    return ConfluenceInsight(**fields)


# -- building without validating again ----------------------------------------------------------------
# An insight is ~7 models per bar; validating each again took ~20 of a backtest's ~108 us per insight (the
# analytics service builds them the same way). What this module derives is built trusted when it holds what
# the contracts ask (tests/unit/analytics/test_trusted_insights.py compares both, byte for byte); anything
# else goes through the validated constructor, which raises the contract's own error.

_KNOWN: set[tuple[str, str]] = set()


def _known(symbol: str, interval: str) -> bool:
    """Whether ``symbol`` and ``interval`` pass the contract's checks (each pair checked once)."""
    if (symbol, interval) not in _KNOWN:
        try:
            _SYMBOL.validate_python(symbol), _INTERVAL.validate_python(interval)
        except ValidationError:
            return False
        _KNOWN.add((symbol, interval))
    return True


def _component(
    indicator: str, value: float | None, vote: float, weight: float, reason: str
) -> InsightComponent:
    vote = float(vote)
    fits = (value is None or (type(value) is float and math.isfinite(value))) and type(weight) is float
    if fits and -1.0 <= vote <= 1.0 and 0.0 <= weight < math.inf and len(reason) <= 200:
        values = {"indicator": indicator, "value": value, "vote": vote, "weight": weight, "reason": reason}
        return trusted(InsightComponent, values)
    return InsightComponent(indicator=indicator, value=value, vote=vote, weight=weight, reason=reason)
