"""Realistic SNAPSHOTS values, shaped as docs/snapshots.md says the producers write them."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared import contracts as c

START = datetime(2024, 1, 2, 3, 45, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _sma(values: list[float], n: int) -> list[float | None]:
    return [None if i + 1 < n else sum(values[i + 1 - n : i + 1]) / n for i in range(len(values))]


def _ema(values: list[float], n: int) -> list[float | None]:
    out: list[float | None] = []
    k, prev = 2 / (n + 1), None
    for i, v in enumerate(values):
        prev = v if prev is None else v * k + prev * (1 - k)
        out.append(prev if i + 1 >= n else None)
    return out


def bars(count: int, start: datetime = START, seed: float = 1500.0) -> list[dict[str, Any]]:
    rows, close = [], seed
    for i in range(count):
        o = close
        close = o + 6 * math.sin(i / 9) + 2 * math.cos(i / 3)
        h, low = max(o, close) + 1.5, min(o, close) - 1.5
        t = (start + timedelta(minutes=i)).isoformat()
        rows.append(
            {
                "t": t,
                "o": round(o, 2),
                "h": round(h, 2),
                "l": round(low, 2),
                "c": round(close, 2),
                "v": 1000 + i,
            }
        )
    return rows


def indicators(rows: list[dict[str, Any]]) -> dict[str, list[float | None]]:
    closes = [r["c"] for r in rows]
    sma, ema = _sma(closes, 20), _ema(closes, 20)
    sd = [
        None if m is None else math.sqrt(sum((x - m) ** 2 for x in closes[i - 19 : i + 1]) / 20)
        for i, m in enumerate(sma)
    ]
    upper = [None if m is None or s is None else m + 2 * s for m, s in zip(sma, sd, strict=True)]
    lower = [None if m is None or s is None else m - 2 * s for m, s in zip(sma, sd, strict=True)]
    fast, slow = _ema(closes, 12), _ema(closes, 26)
    macd = [None if a is None or b is None else a - b for a, b in zip(fast, slow, strict=True)]
    rsi = [None if i < 14 else 50 + 30 * math.sin(i / 7) for i in range(len(closes))]
    signal = [None if m is None else m * 0.8 for m in macd]
    hist = [None if m is None or s is None else m - s for m, s in zip(macd, signal, strict=True)]
    nones: list[float | None] = [None] * len(closes)
    return {
        "sma_20": sma,
        "ema_20": ema,
        "bb_upper": upper,
        "bb_middle": sma,
        "bb_lower": lower,
        "rsi_14": rsi,
        "macd": macd,
        "macd_signal": signal,
        "macd_hist": hist,
        "atr_14": nones,
        "adx_14": nones,
    }


def insight_event(symbol: str, at: datetime, reason: str = "RSI 61 > 55: momentum up") -> dict[str, Any]:
    bar_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{symbol}{at.isoformat()}")
    insight = c.ConfluenceInsight(
        symbol=symbol,
        interval="1m",
        as_of=at,
        bias="bullish",
        confidence=0.7,
        score=0.4,
        regime="trending_up",
        components=(
            c.InsightComponent(indicator="rsi_14", value=61.2, vote=0.5, weight=1.0, reason=reason),
            c.InsightComponent(
                indicator="macd", value=-0.8, vote=-0.4, weight=1.0, reason="MACD under its signal"
            ),
            c.InsightComponent(
                indicator="sma_20", value=1501.0, vote=0.0, weight=0.5, reason="close at the SMA"
            ),
        ),
    )
    event = c.InsightEvent.build(
        producer="analytics",
        key=str(bar_id),
        occurred_at=at,
        correlation_id=bar_id,
        causation_id=bar_id,
        bar_event_id=bar_id,
        insight=insight,
        indicators={"rsi_14": 61.2},
    )
    return event.model_dump(mode="json")


def analytics(symbol: str, count: int = 300, start: datetime = START) -> dict[str, Any]:
    rows = bars(count, start)
    last = datetime.fromisoformat(rows[-1]["t"])
    return {
        "kind": "analytics.symbol",
        "version": 1,
        "producer": "analytics",
        "updated_at": rows[-1]["t"],
        "symbol": symbol,
        "bars": rows,
        "indicators": indicators(rows),
        "insight": insight_event(symbol, last),
    }


def heartbeat(service: str, now: datetime, status: str = "ok", instance: str = "") -> dict[str, Any]:
    beat = c.Heartbeat.build(
        producer=service,
        key=f"{service}|{now.isoformat()}",
        occurred_at=now,
        service=service,
        instance=instance or f"{service}-1",
        status=status,
        started_at=now - timedelta(minutes=5),
        processed=42,
        failed=1,
        dead_lettered=2,
        lag=3,
    )
    return beat.model_dump(mode="json")


def signal(symbol: str, at: datetime, target: str = "long") -> dict[str, Any]:
    bar_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{symbol}{at.isoformat()}")
    return c.SignalEvent.build(
        producer="strategy",
        key=f"{bar_id}|s1",
        occurred_at=at,
        correlation_id=bar_id,
        causation_id=bar_id,
        symbol=symbol,
        interval="1m",
        strategy="sma_cross",
        strategy_id="s1",
        target=target,
        strength=1.0,
        reason="fast SMA crossed above slow",
        bar_timestamp=at,
        bar_event_id=bar_id,
    ).model_dump(mode="json")


def trade(symbol: str, at: datetime, side: str = "buy") -> dict[str, Any]:
    tid = uuid.uuid5(uuid.NAMESPACE_URL, f"trade{symbol}{at.isoformat()}")
    return c.TradeEvent.build(
        producer="execution",
        key=str(tid),
        occurred_at=at,
        correlation_id=tid,
        causation_id=tid,
        trade_id=tid,
        order_id=tid,
        symbol=symbol,
        side=side,
        quantity=Decimal(10),
        price=Decimal("1501.25"),
        commission=Decimal("1.5"),
        mode="paper",
        filled_at=at,
    ).model_dump(mode="json")


def order(symbol: str, at: datetime) -> dict[str, Any]:
    oid = uuid.uuid5(uuid.NAMESPACE_URL, f"order{symbol}{at.isoformat()}")
    return c.OrderEvent.build(
        producer="execution",
        key=str(oid),
        occurred_at=at,
        correlation_id=oid,
        causation_id=oid,
        order_id=oid,
        signal_id=oid,
        decision_id=oid,
        symbol=symbol,
        side="buy",
        quantity=Decimal(10),
        status="filled",
        mode="paper",
        strategy_id="s1",
    ).model_dump(mode="json")


def decision(symbol: str, at: datetime, approved: bool, reason: str = "12 > 10") -> dict[str, Any]:
    did = uuid.uuid5(uuid.NAMESPACE_URL, f"dec{symbol}{at.isoformat()}{approved}")
    return c.RiskDecision.build(
        producer="execution",
        key=str(did),
        occurred_at=at,
        correlation_id=did,
        causation_id=did,
        signal_id=did,
        symbol=symbol,
        strategy_id="s1",
        approved=approved,
        state="ACTIVE",
        checks=(c.RiskCheck(name="max_order_qty", passed=approved, reason=reason),),
        limits={"max_order_qty": "10"},
    ).model_dump(mode="json")


def risk(state: str = "HALTED", reason: str = "daily loss breaker tripped") -> dict[str, Any]:
    return {
        "kind": "execution.risk",
        "version": 1,
        "producer": "execution",
        "updated_at": START.isoformat(),
        "state": state,
        "reason": reason,
        "changed_by": "breaker:daily_loss" if state == "HALTED" else "admin1",
        "mode": "paper",
        "limits": {"max_order_qty": "10"},
        "usage": {"gross_exposure": {"used": 15000, "limit": 50000}},
        "breakers": {
            "daily_loss": {"used": 5200.0, "limit": 5000.0, "tripped": True},
            "drawdown": {"used": 0.04, "limit": 0.1, "tripped": False},
        },
    }


def snapshots(
    symbols: tuple[str, ...] = ("INFY", "TCS"), now: datetime | None = None, count: int = 300
) -> dict[str, Any]:
    """Every key the producers write, for ``symbols``, with fresh heartbeats at ``now``."""
    now = now or datetime.now(UTC)
    rows = bars(count)
    last, prev = rows[-1], rows[-2]
    t_sig = datetime.fromisoformat(rows[100]["t"])
    t_fill = datetime.fromisoformat(rows[101]["t"]) + timedelta(seconds=5)
    out: dict[str, Any] = {
        f"health.{s}": heartbeat(s, now) for s in ("marketdata", "analytics", "execution", "auth")
    }
    out["health.strategy.1"] = heartbeat("strategy", now)
    out["marketdata.symbols"] = {
        "kind": "marketdata.symbols",
        "version": 1,
        "producer": "marketdata",
        "updated_at": last["t"],
        "symbols": {
            s: {
                "interval": "1m",
                "bars": count,
                "first": rows[0]["t"],
                "last": last["t"],
                "last_close": last["c"],
                "prev_close": prev["c"],
                "synthetic": True,
            }
            for s in symbols
        },
    }
    for s in symbols:
        out[f"analytics.{s}"] = analytics(s, count)
    out["strategy.signals.1"] = {
        "kind": "strategy.signals",
        "version": 1,
        "producer": "strategy",
        "updated_at": t_sig.isoformat(),
        "signals": [signal(symbols[0], t_sig)],
    }
    out["execution.risk"] = risk()
    out["execution.positions"] = {
        "kind": "execution.positions",
        "version": 1,
        "producer": "execution",
        "updated_at": last["t"],
        "cash": "1000",
        "equity": 16050.0,
        "pnl_today": -5200.0,
        "pnl_total": 37.5,
        "positions": [
            {
                "symbol": symbols[0],
                "quantity": "10",
                "avg_price": "1501.25",
                "last_price": "1505",
                "realised_pnl": "0",
                "unrealised_pnl": "37.5",
                "books": {"ehma-16": "4", "sma-10-30": "6"},
            }
        ],
    }
    out["execution.equity"] = {
        "kind": "execution.equity",
        "version": 1,
        "producer": "execution",
        "updated_at": last["t"],
        "points": [{"t": r["t"], "equity": 100000 + 10 * i, "drawdown": 0.0} for i, r in enumerate(rows)],
    }
    out["execution.orders.recent"] = {
        "kind": "execution.orders",
        "version": 1,
        "producer": "execution",
        "updated_at": t_fill.isoformat(),
        "orders": [order(symbols[0], t_fill)],
        "decisions": [decision(symbols[0], t_fill, True), decision(symbols[0], t_fill, False)],
    }
    out["execution.trades.recent"] = {
        "kind": "execution.trades",
        "version": 1,
        "producer": "execution",
        "updated_at": t_fill.isoformat(),
        "trades": [trade(symbols[0], t_fill)],
    }
    out["execution.audit"] = {
        "kind": "execution.audit",
        "version": 1,
        "producer": "execution",
        "updated_at": t_fill.isoformat(),
        "ok": True,
        "rows": 12,
        "head": "ab" * 32,
        "checked_at": t_fill.isoformat(),
    }
    return out
