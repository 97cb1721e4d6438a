"""The symbol list and one symbol's page: candles, indicator overlays and panes, markers, the insight."""

from __future__ import annotations

import bisect
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from services.dashboard.domain.freshness import Freshness, freshness, health_rows
from services.dashboard.domain.snapshots import Snapshots, as_dict, as_float, as_list, epoch

SYMBOLS = "marketdata.symbols"
TRADES = "execution.trades.recent"
POSITIONS = "execution.positions"
OVERLAYS = ("sma_20", "ema_20", "bb_upper", "bb_middle", "bb_lower")
PANES = ("rsi_14", "macd", "macd_signal", "macd_hist")


class SymbolRow(BaseModel):
    symbol: str
    interval: str | None
    last_time: str | None
    last_price: float | None
    change: float | None
    change_pct: float | None
    bias: str | None
    confidence: float | None
    position: float | None


class SymbolList(BaseModel):
    symbols: list[SymbolRow]
    sections: dict[str, Freshness]


class Candle(BaseModel):
    time: int
    open: float
    high: float
    low: float
    close: float


class LinePoint(BaseModel):
    time: int
    value: float


class Marker(BaseModel):
    time: int
    kind: str  # "signal" or "fill"
    side: str  # long/short/flat for signals, buy/sell for fills
    text: str


class Component(BaseModel):
    indicator: str
    value: float | None
    vote: float | None
    weight: float | None
    reason: str
    leaning: str  # bullish / bearish / neutral: the vote in words


class InsightView(BaseModel):
    as_of: str | None
    bias: str
    confidence: float | None
    score: float | None
    regime: str
    components: list[Component]


class SymbolDetail(BaseModel):
    symbol: str
    candles: list[Candle]
    lines: dict[str, list[LinePoint]]
    markers: list[Marker]
    insight: InsightView | None
    sections: dict[str, Freshness]


def _insight(snaps: Snapshots, symbol: str) -> dict[str, Any]:
    snap = snaps.get(f"analytics.{symbol}")
    event = as_dict(snap.value.get("insight")) if snap else {}
    return as_dict(event.get("insight")) or event


def _positions(snaps: Snapshots) -> dict[str, float | None]:
    snap = snaps.get(POSITIONS)
    rows = as_list(snap.value.get("positions")) if snap else []
    return {str(r["symbol"]): as_float(r.get("quantity")) for r in map(as_dict, rows) if r.get("symbol")}


def symbol_row(
    snaps: Snapshots, symbol: str, info: dict[str, Any], held: dict[str, float | None]
) -> SymbolRow:
    last, prev = as_float(info.get("last_close")), as_float(info.get("prev_close"))
    if last is None:  # no marketdata summary: fall back to the analytics bars
        bars = (
            as_list(snaps[f"analytics.{symbol}"].value.get("bars")) if f"analytics.{symbol}" in snaps else []
        )
        closes = [as_float(as_dict(b).get("c")) for b in bars[-2:]]
        last = closes[-1] if closes else None
        prev = closes[-2] if len(closes) == 2 else None
    change = last - prev if last is not None and prev is not None else None
    insight = _insight(snaps, symbol)
    return SymbolRow(
        symbol=symbol,
        interval=str(info["interval"]) if info.get("interval") else None,
        last_time=str(info["last"]) if info.get("last") else None,
        last_price=last,
        change=change,
        change_pct=round(change / prev * 100, 4) if change is not None and prev else None,
        bias=str(insight["bias"]) if insight.get("bias") else None,
        confidence=as_float(insight.get("confidence")),
        position=held.get(symbol),
    )


def build_symbol_list(snaps: Snapshots, now: datetime, stale_seconds: float) -> SymbolList:
    listed = as_dict(snaps[SYMBOLS].value.get("symbols")) if SYMBOLS in snaps else {}
    names = set(listed) | {k.removeprefix("analytics.") for k in snaps if k.startswith("analytics.")}
    held = _positions(snaps)
    rows = [symbol_row(snaps, s, as_dict(listed.get(s)), held) for s in sorted(names)]
    health = health_rows(snaps, now, stale_seconds)
    return SymbolList(symbols=rows, sections={SYMBOLS: freshness(snaps, SYMBOLS, health)})


def candles(bars: list[Any]) -> tuple[list[Candle], list[int | None]]:
    """Valid bars as candles (strictly increasing time) and each input bar's time (None if dropped)."""
    out: list[Candle] = []
    times: list[int | None] = []
    for raw in bars:
        bar = as_dict(raw)
        t = epoch(bar.get("t"))
        ohlc = [as_float(bar.get(k)) for k in ("o", "h", "l", "c")]
        if t is None or None in ohlc or (out and t <= out[-1].time):
            times.append(None)
            continue
        o, h, low, c = (float(x) for x in ohlc if x is not None)
        out.append(Candle(time=t, open=o, high=h, low=low, close=c))
        times.append(t)
    return out, times


def lines(indicators: dict[str, Any], times: list[int | None]) -> dict[str, list[LinePoint]]:
    result: dict[str, list[LinePoint]] = {}
    for name in OVERLAYS + PANES:
        values = as_list(indicators.get(name))
        points = [
            LinePoint(time=t, value=v)
            for t, v in zip(times, (as_float(x) for x in values), strict=False)
            if t is not None and v is not None
        ]
        result[name] = points
    return result


def snap_to_bar(when: Any, bar_times: list[int]) -> int | None:
    """The time of the bar that contains ``when`` (the last bar at or before it)."""
    t = epoch(when)
    if t is None or not bar_times or t < bar_times[0]:
        return None
    return bar_times[bisect.bisect_right(bar_times, t) - 1]


def markers(snaps: Snapshots, symbol: str, bar_times: list[int]) -> list[Marker]:
    found: list[Marker] = []
    for key in sorted(k for k in snaps if k.startswith("strategy.signals")):
        for sig in map(as_dict, as_list(snaps[key].value.get("signals"))):
            t = snap_to_bar(sig.get("bar_timestamp"), bar_times)
            if sig.get("symbol") == symbol and t is not None:
                target = str(sig.get("target") or "")
                who = sig.get("strategy_id") or sig.get("strategy") or ""  # the instance, as elsewhere
                found.append(Marker(time=t, kind="signal", side=target, text=f"{target} {who}"))
    trades = as_list(snaps[TRADES].value.get("trades")) if TRADES in snaps else []
    for trade in map(as_dict, trades):
        t = snap_to_bar(trade.get("filled_at"), bar_times)
        if trade.get("symbol") == symbol and t is not None:
            side = str(trade.get("side") or "")
            found.append(Marker(time=t, kind="fill", side=side, text=f"{side} {trade.get('quantity', '')}"))
    return sorted(found, key=lambda m: (m.time, m.kind))


def leaning(vote: float | None) -> str:
    if vote is None or abs(vote) < 0.05:
        return "neutral"
    return "bullish" if vote > 0 else "bearish"


def insight_view(insight: dict[str, Any]) -> InsightView | None:
    if not insight:
        return None
    comps = []
    for c in map(as_dict, as_list(insight.get("components"))):
        vote = as_float(c.get("vote"))
        comps.append(
            Component(
                indicator=str(c.get("indicator") or "?"),
                value=as_float(c.get("value")),
                vote=vote,
                weight=as_float(c.get("weight")),
                reason=str(c.get("reason") or ""),
                leaning=leaning(vote),
            )
        )
    return InsightView(
        as_of=str(insight["as_of"]) if insight.get("as_of") else None,
        bias=str(insight.get("bias") or "unknown"),
        confidence=as_float(insight.get("confidence")),
        score=as_float(insight.get("score")),
        regime=str(insight.get("regime") or "unknown"),
        components=comps,
    )


def build_symbol_detail(snaps: Snapshots, symbol: str, now: datetime, stale_seconds: float) -> SymbolDetail:
    key = f"analytics.{symbol}"
    value = snaps[key].value if key in snaps else {}
    bars, times = candles(as_list(value.get("bars")))
    health = health_rows(snaps, now, stale_seconds)
    return SymbolDetail(
        symbol=symbol,
        candles=bars,
        lines=lines(as_dict(value.get("indicators")), times),
        markers=markers(snaps, symbol, [c.time for c in bars]),
        insight=insight_view(_insight(snaps, symbol)),
        sections={k: freshness(snaps, k, health) for k in (key, TRADES)},
    )
