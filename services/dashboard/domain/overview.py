"""The overview page: account, equity curve, positions, trading state with breakers, service health."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from services.dashboard.domain.freshness import Freshness, HealthRow, freshness, health_rows
from services.dashboard.domain.snapshots import Snapshots, as_dict, as_float, as_list, epoch

RISK, POSITIONS, EQUITY = "execution.risk", "execution.positions", "execution.equity"


class Point(BaseModel):
    time: int
    value: float


class Meter(BaseModel):
    """A breaker or limit: how much of it is used."""

    name: str
    used: float | None
    limit: float | None
    fraction: float | None
    tripped: bool = False


class RiskView(BaseModel):
    state: str
    reason: str
    changed_by: str  # who moved it there: a username, or breaker:<name>
    mode: str
    breakers: list[Meter]
    usage: list[Meter]
    limits: dict[str, str]


class Account(BaseModel):
    cash: float | None
    equity: float | None
    pnl_today: float | None
    pnl_total: float | None


class PositionRow(BaseModel):
    symbol: str
    quantity: float | None
    avg_price: float | None
    last_price: float | None
    realised_pnl: float | None
    unrealised_pnl: float | None
    books: list[tuple[str, float]] = []  # (strategy id, its quantity), as the snapshot lists them


class Overview(BaseModel):
    risk: RiskView | None
    account: Account | None
    positions: list[PositionRow]
    equity: list[Point]
    health: list[HealthRow]
    sections: dict[str, Freshness]


def meter(name: str, raw: Any) -> Meter:
    item = as_dict(raw)
    used, limit = as_float(item.get("used")), as_float(item.get("limit"))
    fraction = None
    if used is not None and limit:
        fraction = max(0.0, min(1.0, abs(used) / abs(limit)))
    return Meter(
        name=str(name), used=used, limit=limit, fraction=fraction, tripped=item.get("tripped") is True
    )


def risk_view(value: dict[str, Any]) -> RiskView:
    return RiskView(
        state=str(value.get("state") or "UNKNOWN"),
        reason=str(value.get("reason") or ""),
        changed_by=str(value.get("changed_by") or ""),
        mode=str(value.get("mode") or ""),
        breakers=[meter(k, v) for k, v in as_dict(value.get("breakers")).items()],
        usage=[meter(k, v) for k, v in as_dict(value.get("usage")).items()],
        limits={str(k): str(v) for k, v in as_dict(value.get("limits")).items()},
    )


def position_row(raw: Any) -> PositionRow | None:
    item = as_dict(raw)
    if not item.get("symbol"):
        return None
    return PositionRow(
        symbol=str(item["symbol"]),
        quantity=as_float(item.get("quantity")),
        avg_price=as_float(item.get("avg_price", item.get("average_price"))),
        last_price=as_float(item.get("last_price")),
        realised_pnl=as_float(item.get("realised_pnl")),
        unrealised_pnl=as_float(item.get("unrealised_pnl")),
        books=[
            (str(strategy), quantity)
            for strategy, raw_quantity in as_dict(item.get("books")).items()
            if (quantity := as_float(raw_quantity)) is not None
        ],
    )


def equity_points(value: dict[str, Any]) -> list[Point]:
    points: dict[int, float] = {}
    for raw in as_list(value.get("points")):
        item = as_dict(raw)
        t, v = epoch(item.get("t")), as_float(item.get("equity"))
        if t is not None and v is not None:
            points[t] = v  # the chart needs strictly increasing times: the last value of a second wins
    return [Point(time=t, value=v) for t, v in sorted(points.items())]


def build_overview(snaps: Snapshots, now: datetime, stale_seconds: float) -> Overview:
    rows = health_rows(snaps, now, stale_seconds)
    risk = snaps.get(RISK)
    pos = snaps.get(POSITIONS)
    equity = snaps.get(EQUITY)
    account = None
    positions: list[PositionRow] = []
    if pos is not None:
        v = pos.value
        account = Account(
            cash=as_float(v.get("cash")),
            equity=as_float(v.get("equity")),
            pnl_today=as_float(v.get("pnl_today")),
            pnl_total=as_float(v.get("pnl_total")),
        )
        positions = [row for row in map(position_row, as_list(v.get("positions"))) if row is not None]
    return Overview(
        risk=risk_view(risk.value) if risk else None,
        account=account,
        positions=positions,
        equity=equity_points(equity.value) if equity else [],
        health=rows,
        sections={k: freshness(snaps, k, rows) for k in (RISK, POSITIONS, EQUITY)},
    )
