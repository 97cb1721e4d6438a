"""A self-contained HTML backtest report: stats, equity and drawdown charts, candlesticks with the fills
marked, the trade list. Charts are inline SVG drawn here, so the file needs no script and no network.

Long series are bucketed (several bars merged into one candle, the last equity point of each bucket) to keep
the file small; fills are drawn at their bucket.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from bastion.backtest.stats import RoundTrip
from shared.contracts.orders import TradeEvent

WIDTH, HEIGHT, PAD = 960, 260, 40
MAX_POINTS = 600

CSS = """
body{font:14px system-ui,sans-serif;margin:24px;color:#1d2330;background:#fafbfc}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}
td,th{padding:3px 10px;border-bottom:1px solid #e3e6ea;text-align:right}
th{background:#eef1f4}td:first-child,th:first-child{text-align:left}
svg{background:#fff;border:1px solid #e3e6ea}.neg{color:#b3261e}.pos{color:#146c2e}
"""


def _scale(values: Sequence[float], lo: float, hi: float, top: float, bottom: float) -> list[float]:
    span = (hi - lo) or 1.0
    return [bottom - (v - lo) / span * (bottom - top) for v in values]


def _xs(n: int) -> list[float]:
    step = (WIDTH - 2 * PAD) / max(n - 1, 1)
    return [PAD + i * step for i in range(n)]


def _axis_labels(lo: float, hi: float, fmt: str = "{:,.2f}") -> str:
    return (
        f'<text x="4" y="{PAD}" font-size="11">{fmt.format(hi)}</text>'
        f'<text x="4" y="{HEIGHT - PAD}" font-size="11">{fmt.format(lo)}</text>'
    )


def _time_labels(first: Any, last: Any, zone: tzinfo) -> str:
    """The first and the last time under a chart's left and right ends (dates for daily bars)."""
    if not isinstance(first, datetime) or not isinstance(last, datetime):
        return ""
    a, b = (_day_or_time(t, zone) for t in (first, last))
    y = HEIGHT - PAD / 3
    return (
        f'<text x="{PAD}" y="{y:.0f}" font-size="11">{html.escape(a)}</text>'
        f'<text x="{WIDTH - PAD}" y="{y:.0f}" font-size="11" text-anchor="end">{html.escape(b)}</text>'
    )


def _day_or_time(moment: datetime, zone: tzinfo) -> str:
    local = moment.astimezone(zone)
    return (
        local.strftime("%Y-%m-%d")
        if local.time() == datetime.min.time()
        else local.strftime("%Y-%m-%d %H:%M")
    )


def line_chart(
    series: pd.Series,
    colour: str,
    title: str,
    fmt: str = "{:,.2f}",
    fill: bool = False,
    zone: tzinfo = UTC,
) -> str:
    if series.empty:
        return "<p>no data</p>"
    ends = _time_labels(series.index[0], series.index[-1], zone)
    if len(series) > MAX_POINTS:
        series = series.groupby(pd.RangeIndex(len(series)) * MAX_POINTS // len(series)).last()
    values = [float(v) for v in series]
    lo, hi = min(values), max(values)
    ys = _scale(values, lo, hi, PAD, HEIGHT - PAD)
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(_xs(len(values)), ys, strict=True))
    area = ""
    if fill:
        area = f'<polygon points="{PAD},{PAD} {points} {WIDTH - PAD},{PAD}" fill="{colour}" opacity="0.15"/>'
    return (
        f'<svg role="img" aria-label="{html.escape(title)}" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}">{area}'
        f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/>'
        f"{_axis_labels(lo, hi, fmt)}{ends}</svg>"
    )


def shown_at(moment: datetime, zone: tzinfo) -> str:
    """A time as the report and the terminal show it: ISO-8601 in ``zone`` (``--tz``), with its offset."""
    return moment.astimezone(zone).isoformat()


def in_zone(figures: dict[str, Any], zone: tzinfo) -> dict[str, Any]:
    """The statistics as shown: ``start`` and ``end`` (UTC in the JSON) as times in ``zone``."""
    return {
        k: shown_at(datetime.fromisoformat(v), zone) if k in ("start", "end") and isinstance(v, str) else v
        for k, v in figures.items()
    }


def candle_chart(bars: pd.DataFrame, fills: Sequence[TradeEvent], symbol: str, zone: tzinfo = UTC) -> str:
    """``bars``: columns timestamp, open, high, low, close (one symbol, time-ordered)."""
    if bars.empty:
        return "<p>no bars</p>"
    bucket = (pd.RangeIndex(len(bars)) * MAX_POINTS // len(bars)) if len(bars) > MAX_POINTS else None
    if bucket is not None:
        grouped = bars.groupby(bucket)
        candles = pd.DataFrame(
            {
                "timestamp": grouped["timestamp"].first(),
                "open": grouped["open"].first(),
                "high": grouped["high"].max(),
                "low": grouped["low"].min(),
                "close": grouped["close"].last(),
            }
        ).reset_index(drop=True)
    else:
        candles = bars.reset_index(drop=True)
    lo, hi = float(candles["low"].min()), float(candles["high"].max())
    xs = _xs(len(candles))
    width = max(1.0, (WIDTH - 2 * PAD) / max(len(candles), 1) * 0.6)
    parts: list[str] = []
    ohlc = candles[["open", "high", "low", "close"]].to_numpy(dtype=float).tolist()
    for x, (o, h, low, c) in zip(xs, ohlc, strict=True):
        y_o, y_h, y_l, y_c = _scale([o, h, low, c], lo, hi, PAD, HEIGHT - PAD)
        colour = "#146c2e" if c >= o else "#b3261e"
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y_h:.1f}" y2="{y_l:.1f}" stroke="{colour}"/>')
        top, bottom = min(y_o, y_c), max(y_o, y_c)
        parts.append(
            f'<rect x="{x - width / 2:.1f}" y="{top:.1f}" width="{width:.1f}" '
            f'height="{max(bottom - top, 0.8):.1f}" fill="{colour}"/>'
        )
    parts += _markers(candles, fills, xs, lo, hi, merged=bucket is not None, zone=zone)
    return (
        f'<svg role="img" aria-label="{html.escape(symbol)} candlesticks" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}">{"".join(parts)}{_axis_labels(lo, hi)}'
        f"{_time_labels(candles['timestamp'].iloc[0], candles['timestamp'].iloc[-1], zone)}</svg>"
    )


def _markers(
    candles: pd.DataFrame,
    fills: Sequence[TradeEvent],
    xs: list[float],
    lo: float,
    hi: float,
    merged: bool,
    zone: tzinfo,
) -> list[str]:
    """A triangle per fill at its candle (the last one starting at or before it) and price: buys below,
    pointing up, sells above. Where candles merge several bars (``merged``), a candle's fills of one side
    share one triangle at their average price, its tooltip counting them."""
    if not fills:
        return []
    starts = pd.DatetimeIndex(candles["timestamp"]).as_unit("ns").asi8
    at = pd.DatetimeIndex([f.filled_at for f in fills]).as_unit("ns").asi8
    index = np.clip(np.searchsorted(starts, at, side="right") - 1, 0, len(starts) - 1).tolist()
    groups: dict[tuple[int, str, int], list[TradeEvent]] = {}  # by candle and side (and fill, unmerged)
    for n, (k, fill) in enumerate(zip(index, fills, strict=True)):
        groups.setdefault((k, fill.side, 0 if merged else n), []).append(fill)
    parts: list[str] = []
    for (k, side, _), group in groups.items():
        x = xs[k]
        quantity = sum((f.quantity for f in group), Decimal(0))
        price = (
            sum((f.price * f.quantity for f in group), Decimal(0)) / quantity if quantity else group[0].price
        )
        (y,) = _scale([float(price)], lo, hi, PAD, HEIGHT - PAD)
        if side == "buy":
            shape = f"{x:.1f},{y + 4:.1f} {x - 5:.1f},{y + 13:.1f} {x + 5:.1f},{y + 13:.1f}"
            colour = "#1a56db"
        else:
            shape = f"{x:.1f},{y - 4:.1f} {x - 5:.1f},{y - 13:.1f} {x + 5:.1f},{y - 13:.1f}"
            colour = "#c2410c"
        first = group[0]
        if len(group) == 1:
            tip = f"{side} {first.quantity} @ {first.price} on {shown_at(first.filled_at, zone)}"
        else:
            tip = (
                f"{len(group)} {side} fills, {quantity} in all @ {price:.2f} on average, "
                f"{shown_at(first.filled_at, zone)} to {shown_at(group[-1].filled_at, zone)}"
            )
        parts.append(f'<polygon points="{shape}" fill="{colour}"><title>{html.escape(tip)}</title></polygon>')
    return parts


def _cell(value: Any) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, float | Decimal):
        text = f"{value:,.2f}"
        cls = ' class="neg"' if value < 0 else ""
        return f"<span{cls}>{text}</span>"
    return html.escape(str(value))


def _setting(value: Any) -> str:
    """A run setting as a person reads it: ``fast=5, slow=20``, ``a.csv, b.csv``, ``yes``; a dash unset."""
    if value is None:
        return "\u2013"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_setting(v)}" for k, v in value.items()) or "\u2013"
    if isinstance(value, list | tuple):
        return ", ".join(_setting(v) for v in value) or "\u2013"
    return str(value)


def render(
    title: str,
    stats: dict[str, Any],
    equity: pd.Series,
    trips: Sequence[RoundTrip],
    bars: dict[str, pd.DataFrame],
    fills: Sequence[TradeEvent],
    settings: dict[str, Any],
    zone: tzinfo = UTC,
) -> str:
    """The page; times are shown in ``zone`` (``--tz``), with their offset."""
    stat_rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{_cell(v)}</td></tr>" for k, v in in_zone(stats, zone).items()
    )
    setting_rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(_setting(v))}</td></tr>" for k, v in settings.items()
    )
    dd = (equity / equity.cummax() - 1.0) * 100
    trade_rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{_cell(v)}</td>"
            for v in (
                t.symbol,
                t.direction,
                t.quantity,
                shown_at(t.entry_time, zone),
                t.entry_price,
                shown_at(t.exit_time, zone) if t.exit_time else "open",
                t.exit_price,
                t.commission,
                t.pnl,
            )
        )
        + "</tr>"
        for t in trips
    )
    candles = "".join(
        f"<h2>{html.escape(sym)}</h2>" + candle_chart(frame, [f for f in fills if f.symbol == sym], sym, zone)
        for sym, frame in sorted(bars.items())
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>{CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<table><tbody>{setting_rows}</tbody></table>
<h2>Statistics</h2><table><tbody>{stat_rows}</tbody></table>
<h2>Equity</h2>{line_chart(equity, "#1a56db", "equity curve", zone=zone)}
<h2>Drawdown %</h2>{line_chart(dd, "#b3261e", "drawdown", "{:,.2f}%", fill=True, zone=zone)}
{candles}
<h2>Trades</h2>
<table><thead><tr><th>symbol</th><th>side</th><th>qty</th><th>entry time</th><th>entry</th><th>exit time</th>
<th>exit</th><th>commission</th><th>P&amp;L</th></tr></thead><tbody>{trade_rows}</tbody></table>
</body></html>
"""
