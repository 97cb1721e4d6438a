"""The execution service's KV snapshots, shaped as docs/snapshots.md says."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from services.execution.domain.audit import VerifyResult
from services.execution.domain.broker import PRODUCER
from services.execution.domain.engine import book_of
from shared.contracts.orders import OrderEvent, TradeEvent
from shared.contracts.risk import RiskDecision

if TYPE_CHECKING:
    from services.execution.handlers import ExecutionService

EQUITY_POINTS = 2000


def _num(value: Decimal) -> float:
    return float(round(value, 6))


def _common(kind: str, at: datetime) -> dict[str, Any]:
    return {"kind": kind, "version": 1, "producer": PRODUCER, "updated_at": at.isoformat()}


def data_time(svc: ExecutionService) -> datetime:
    curve = svc.core.state.portfolio.equity_curve
    return curve[-1][0] if curve else datetime(1970, 1, 1, tzinfo=UTC)


def risk_snapshot(svc: ExecutionService, at: datetime) -> dict[str, Any]:
    view = svc.core.risk_view()
    limits, pf, rs = svc.config.limits, svc.core.state.portfolio, svc.core.state.risk
    usage: dict[str, dict[str, Any]] = {
        "gross_exposure": {"used": _num(pf.gross_exposure), "limit": _opt(limits.max_gross_exposure)},
        "open_positions": {"used": pf.open_positions, "limit": limits.max_open_positions},
        "orders_per_minute": {"used": len(rs.order_times), "limit": limits.max_orders_per_minute},
        "pending_orders": {"used": len(svc.core.state.pending), "limit": None},
        "parked_signals": {"used": len(svc.core.state.parked), "limit": None},
    }
    loss = -pf.day_pnl if pf.day_pnl < 0 else Decimal(0)
    breakers = {
        "daily_loss": {
            "used": _num(loss),
            "limit": _opt(limits.daily_loss_limit),
            "tripped": "daily_loss" in rs.tripped,
        },
        "drawdown": {
            "used": _num(pf.drawdown_pct),
            "limit": _opt(limits.max_drawdown_pct),
            "tripped": "max_drawdown" in rs.tripped,
        },
    }
    return _common("execution.risk", at) | {
        "state": view["state"],
        "reason": view["reason"],
        "changed_by": view["changed_by"],
        "mode": svc.config.mode,
        "limits": view["limits"],
        "usage": usage,
        "breakers": breakers,
        "last_command": svc.last_command,
        "counts": dict(svc.counts),
    }


def _opt(value: Decimal | None) -> float | None:
    return None if value is None else _num(value)


def positions_snapshot(svc: ExecutionService, at: datetime) -> dict[str, Any]:
    pf = svc.core.state.portfolio
    books: dict[str, dict[str, str]] = {}
    for key, quantity in sorted(svc.core.state.books.items()):
        strategy_id, symbol = book_of(key)
        books.setdefault(symbol, {})[strategy_id] = str(quantity)
    positions = [
        {
            "symbol": p.symbol,
            "quantity": str(p.quantity),
            "avg_price": str(round(p.average_price, 4)),
            "last_price": str(p.last_price),
            "realised_pnl": str(round(p.realised_pnl, 2)),
            "unrealised_pnl": str(round(p.unrealised_pnl, 2)),
            "books": books.get(p.symbol, {}),
        }
        for p in sorted(pf.positions.values(), key=lambda p: p.symbol)
    ]
    return _common("execution.positions", at) | {
        "cash": _num(pf.cash),
        "equity": _num(pf.equity),
        "pnl_today": _num(pf.day_pnl),
        "pnl_total": _num(pf.equity - svc.config.initial_cash),
        "positions": positions,
    }


def equity_snapshot(svc: ExecutionService, at: datetime) -> dict[str, Any]:
    points, peak = [], Decimal(0)
    for t, equity in svc.core.state.portfolio.equity_curve[-EQUITY_POINTS:]:
        peak = max(peak, equity)
        dd = (peak - equity) / peak * 100 if peak > 0 else Decimal(0)
        points.append({"t": t.isoformat(), "equity": _num(equity), "drawdown": _num(dd)})
    return _common("execution.equity", at) | {"points": points}


def _events(svc: ExecutionService, schema: str) -> list[Any]:
    return [json.loads(raw) for raw in svc.recent[schema]]


def audit_snapshot(result: VerifyResult, rows: int, head: str, checked_at: datetime) -> dict[str, Any]:
    return _common("execution.audit", checked_at) | {
        "ok": result.ok,
        "rows": rows,
        "head": head,
        "checked_at": checked_at.isoformat(),
        "problem": result.problem,
        "bad_row": result.bad_seq,
    }


def build_snapshots(svc: ExecutionService) -> dict[str, dict[str, Any]]:
    at = data_time(svc)
    return {
        "execution.risk": risk_snapshot(svc, at),
        "execution.positions": positions_snapshot(svc, at),
        "execution.equity": equity_snapshot(svc, at),
        "execution.orders.recent": _common("execution.orders", at)
        | {"orders": _events(svc, OrderEvent.SCHEMA), "decisions": _events(svc, RiskDecision.SCHEMA)},
        "execution.trades.recent": _common("execution.trades", at)
        | {"trades": _events(svc, TradeEvent.SCHEMA)},
    }
