"""One valid instance of every contract, built the way producers build them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypedDict

from shared import contracts as c

T = datetime(2024, 1, 2, 3, 45, tzinfo=UTC)
ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


class Envelope(TypedDict):
    """The envelope fields every sample event after the bar shares."""

    occurred_at: datetime
    correlation_id: uuid.UUID
    causation_id: uuid.UUID


def bar() -> c.OHLCVBar:
    return c.OHLCVBar.build(
        producer="marketdata",
        key=c.OHLCVBar.key_for("INFY", "1m", T.isoformat()),
        occurred_at=T,
        symbol="INFY",
        interval="1m",
        timestamp=T,
        open=1500.5,
        high=1510,
        low=1495.25,
        close=1505,
        volume=12000,
        source="synthetic",
    )


def samples() -> list[c.Contract]:
    b = bar()
    insight = c.ConfluenceInsight(
        symbol="INFY",
        interval="1m",
        as_of=T,
        bias="bullish",
        confidence=0.7,
        score=0.4,
        regime="trending_up",
        components=(
            c.InsightComponent(indicator="rsi_14", value=61.2, vote=0.5, weight=1.0, reason="RSI > 55"),
        ),
    )
    common: Envelope = {"occurred_at": T, "correlation_id": b.event_id, "causation_id": b.event_id}
    return [
        b,
        c.InsightEvent.build(
            producer="analytics",
            key=str(b.event_id),
            bar_event_id=b.event_id,
            insight=insight,
            indicators={"rsi_14": 61.2, "sma_20": None},
            **common,
        ),
        c.SignalEvent.build(
            producer="strategy",
            key=f"{b.event_id}|s1",
            symbol="INFY",
            interval="1m",
            strategy="sma_cross",
            strategy_id="s1",
            target="long",
            strength=1.0,
            reason="cross",
            bar_timestamp=T,
            bar_event_id=b.event_id,
            **common,
        ),
        c.RiskDecision.build(
            producer="execution",
            key="d",
            signal_id=ID,
            symbol="INFY",
            strategy_id="s1",
            approved=False,
            state="ACTIVE",
            checks=(c.RiskCheck(name="max_order_qty", passed=False, reason="12 > 10"),),
            limits={"max_order_qty": "10"},
            **common,
        ),
        c.OrderEvent.build(
            producer="execution",
            key="o",
            order_id=ID,
            signal_id=ID,
            decision_id=ID,
            symbol="INFY",
            side="buy",
            quantity=Decimal("10"),
            status="new",
            mode="paper",
            strategy_id="s1",
            **common,
        ),
        c.TradeEvent.build(
            producer="execution",
            key="t",
            trade_id=ID,
            order_id=ID,
            symbol="INFY",
            side="buy",
            quantity=Decimal("10"),
            price=Decimal("1501.25"),
            commission=Decimal("1.5"),
            mode="paper",
            filled_at=T,
            **common,
        ),
        c.RiskCommand.model_validate(
            {"command_id": ID, "action": "halt", "reason": "manual", "session_token": "tok", "issued_at": T}
        ),
        c.RiskStateChanged.build(
            producer="execution",
            key="s",
            state="HALTED",
            previous="ACTIVE",
            reason="manual",
            changed_by="admin",
            **common,
        ),
        c.AuditRecord.build(
            producer="execution",
            key="audit|1",
            seq=1,
            kind="bastion.exec.order",
            ref_id=uuid.UUID(int=7),
            payload='{"a":1}',
            prev_hash="0" * 64,
            hash="f" * 64,
            **common,
        ),
        c.PositionSnapshot.build(
            producer="execution",
            key="p",
            positions=(
                c.Position(
                    symbol="INFY",
                    quantity=Decimal(10),
                    average_price=Decimal("1501.25"),
                    last_price=Decimal(1505),
                    realised_pnl=Decimal(0),
                    unrealised_pnl=Decimal("37.5"),
                ),
            ),
            cash=Decimal(1000),
            equity=Decimal(16050),
            realised_pnl=Decimal(0),
            unrealised_pnl=Decimal("37.5"),
            day_pnl=Decimal("37.5"),
            **common,
        ),
        c.Heartbeat.build(
            producer="analytics",
            key="h",
            occurred_at=T,
            service="analytics",
            instance="a-1",
            status="ok",
            started_at=T,
            processed=1,
            failed=0,
            dead_lettered=0,
            lag=0,
        ),
        c.DeadLetter.build(
            producer="analytics",
            key="x",
            occurred_at=T,
            service="analytics",
            consumer="bars",
            subject="md.v1.bar.INFY",
            stream_sequence=3,
            deliveries=1,
            kind="permanent",
            reason="cannot decode",
            payload_b64="e30=",
        ),
        c.LoginRequest.model_validate(
            {"username": "alice", "password": "correct horse battery", "client_addr": "127.0.0.1"}
        ),
        c.TokenRequest.model_validate({"token": "abc"}),
        c.SessionReply.model_validate({"ok": True, "username": "alice", "role": "trader", "expires_at": T}),
        c.RecomputeInsights.model_validate({"symbol": "INFY"}),
        c.InsightsRecomputed.model_validate(
            {"ok": True, "symbols": ("INFY",), "insights": 300, "published_new": 2}
        ),
        c.AuthAudit.build(
            producer="auth", key="a", occurred_at=T, action="login", username="alice", outcome="success"
        ),
        c.UserAdminRequest.model_validate(
            {"token": "abc", "action": "create", "username": "bob", "role": "viewer", "password": "pw"}
        ),
        c.UserAdminReply.model_validate(
            {"ok": True, "done": "listed", "users": [{"username": "bob", "role": "viewer", "enabled": True}]}
        ),
    ]
