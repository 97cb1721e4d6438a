"""Orders, trades, risk decisions (approved, or rejected with the failed checks) and the audit chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from services.dashboard.domain.freshness import Freshness, freshness, health_rows
from services.dashboard.domain.snapshots import Snapshots, as_dict, as_list

ORDERS, TRADES, AUDIT = "execution.orders.recent", "execution.trades.recent", "execution.audit"


class OrderRow(BaseModel):
    time: str | None
    symbol: str
    side: str
    quantity: str
    order_type: str
    status: str
    mode: str
    strategy_id: str
    reason: str


class TradeRow(BaseModel):
    time: str | None
    symbol: str
    side: str
    quantity: str
    price: str
    commission: str
    mode: str


class DecisionRow(BaseModel):
    time: str | None
    symbol: str
    strategy_id: str
    target: str  # the signal's (long, flat, short), "" when its signal is no longer among the recent ones
    approved: bool
    state: str
    reasons: list[str]


class AuditView(BaseModel):
    ok: bool | None
    rows: int | None
    head: str | None
    checked_at: str | None


class Activity(BaseModel):
    orders: list[OrderRow]
    trades: list[TradeRow]
    decisions: list[DecisionRow]
    audit: AuditView | None
    sections: dict[str, Freshness]


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def order_row(o: dict[str, Any]) -> OrderRow:
    return OrderRow(
        time=o.get("occurred_at"),
        symbol=_s(o.get("symbol")),
        side=_s(o.get("side")),
        quantity=_s(o.get("quantity")),
        order_type=_s(o.get("order_type")),
        status=_s(o.get("status")),
        mode=_s(o.get("mode")),
        strategy_id=_s(o.get("strategy_id")),
        reason=_s(o.get("reason")),
    )


def trade_row(t: dict[str, Any]) -> TradeRow:
    return TradeRow(
        time=t.get("filled_at") or t.get("occurred_at"),
        symbol=_s(t.get("symbol")),
        side=_s(t.get("side")),
        quantity=_s(t.get("quantity")),
        price=_s(t.get("price")),
        commission=_s(t.get("commission")),
        mode=_s(t.get("mode")),
    )


def decision_row(d: dict[str, Any], targets: dict[str, str] | None = None) -> DecisionRow:
    """``targets``: each recent signal's target by its event id (a decision names its signal)."""
    checks = [as_dict(c) for c in as_list(d.get("checks"))]
    approved = d.get("approved") is True
    failed = [f"{c.get('name', '?')}: {c.get('reason', '')}" for c in checks if c.get("passed") is False]
    return DecisionRow(
        time=d.get("occurred_at"),
        symbol=_s(d.get("symbol")),
        strategy_id=_s(d.get("strategy_id")),
        target=(targets or {}).get(_s(d.get("signal_id")), ""),
        approved=approved,
        state=_s(d.get("state")),
        reasons=failed if not approved else [],
    )


def newest_first(rows: list[Any], *time_fields: str) -> list[dict[str, Any]]:
    """``rows`` (oldest first, as the snapshot lists them) newest first by the time the table shows: the
    first of ``time_fields`` a row has. Events are listed as execution made them, and a replay's signals
    reach it after later bars, so that order is not the time order. Rows of one time, and rows without a
    readable time (last), stay newest-made first."""
    made = [as_dict(r) for r in reversed(rows) if isinstance(r, dict)]
    return sorted(made, key=lambda row: _moment(row, time_fields), reverse=True)


_NO_TIME = (0, 0.0)


def _moment(row: dict[str, Any], fields: tuple[str, ...]) -> tuple[int, float]:
    for name in fields:
        value = row.get(name)
        if isinstance(value, str) and value:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                return _NO_TIME
            if moment.tzinfo is None:
                return _NO_TIME
            return (1, moment.timestamp())
    return _NO_TIME


def signal_targets(snaps: Snapshots) -> dict[str, str]:
    """The target of every signal the strategy workers' snapshots hold (their recent ones), by event id."""
    found: dict[str, str] = {}
    for key in sorted(k for k in snaps if k.startswith("strategy.signals")):
        for sig in map(as_dict, as_list(snaps[key].value.get("signals"))):
            if sig.get("event_id") and sig.get("target"):
                found[_s(sig["event_id"])] = _s(sig["target"])
    return found


def build_activity(snaps: Snapshots, now: datetime, stale_seconds: float) -> Activity:
    orders = snaps[ORDERS].value if ORDERS in snaps else {}
    trades = snaps[TRADES].value if TRADES in snaps else {}
    audit = snaps[AUDIT].value if AUDIT in snaps else None
    health = health_rows(snaps, now, stale_seconds)
    targets = signal_targets(snaps)
    return Activity(
        orders=[order_row(o) for o in newest_first(as_list(orders.get("orders")), "occurred_at")],
        trades=[
            trade_row(t) for t in newest_first(as_list(trades.get("trades")), "filled_at", "occurred_at")
        ],
        decisions=[
            decision_row(d, targets) for d in newest_first(as_list(orders.get("decisions")), "occurred_at")
        ],
        audit=AuditView(
            ok=audit.get("ok") if isinstance(audit.get("ok"), bool) else None,
            rows=audit.get("rows") if isinstance(audit.get("rows"), int) else None,
            head=_s(audit.get("head")) or None,
            checked_at=_s(audit.get("checked_at")) or None,
        )
        if audit is not None
        else None,
        sections={k: freshness(snaps, k, health) for k in (ORDERS, TRADES, AUDIT)},
    )
