"""Crafted bars, signals and commands for execution tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.execution.domain.config import CostModel, ExecutionConfig, RiskLimits, SizingConfig
from services.execution.domain.engine import ExecutionCore
from shared.contracts.market_data import OHLCVBar
from shared.contracts.risk import RiskCommand
from shared.contracts.signals import SignalEvent, Target

T0 = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)  # 09:30 IST, after the default 03:45 UTC session start
FREE = CostModel(slippage_bps=Decimal(0), commission_pct=Decimal(0), flat_fee=Decimal(0))
NO_LIMITS = RiskLimits.off().model_copy(update={"suppress_duplicates": True})


def bar(
    i: int,
    close: float,
    symbol: str = "INFY",
    open_: float | None = None,
    day: int = 0,
    source: str = "synthetic",
) -> OHLCVBar:
    ts = T0 + timedelta(days=day, minutes=i)
    o = open_ if open_ is not None else close
    return OHLCVBar.build(
        producer="test",
        key=OHLCVBar.key_for(symbol, "1m", ts.isoformat()),
        occurred_at=ts,
        symbol=symbol,
        interval="1m",
        timestamp=ts,
        open=o,
        high=max(o, close),
        low=min(o, close),
        close=close,
        volume=100.0,
        source=source,
    )


def signal(b: OHLCVBar, target: Target = "long", strategy_id: str = "s1") -> SignalEvent:
    return SignalEvent.build(
        producer="strategy",
        key=f"{b.event_id}|{strategy_id}|{target}",
        occurred_at=b.timestamp,
        correlation_id=b.event_id,
        causation_id=b.event_id,
        symbol=b.symbol,
        interval=b.interval,
        strategy="test",
        strategy_id=strategy_id,
        target=target,
        strength=1.0,
        reason="test",
        bar_timestamp=b.timestamp,
        bar_event_id=b.event_id,
    )


def command(action: str = "halt", cancel: bool = True, flatten: bool = False) -> RiskCommand:
    return RiskCommand.model_validate(
        {
            "command_id": uuid.uuid4(),
            "action": action,
            "reason": "test",
            "session_token": "t",
            "issued_at": T0,
            "cancel_orders": cancel,
            "flatten": flatten,
        }
    )


def core(
    limits: RiskLimits = NO_LIMITS,
    qty: int = 10,
    costs: CostModel = FREE,
    mode: str = "paper",
    **sizing: object,
) -> ExecutionCore:
    cfg = ExecutionConfig(
        mode=mode,
        initial_cash=Decimal(100_000),
        limits=limits,
        sizing=SizingConfig(quantity=Decimal(qty), **sizing),
        costs=costs,
    )
    return ExecutionCore(cfg)


def limits(**overrides: object) -> RiskLimits:
    return NO_LIMITS.model_copy(update=overrides)
