"""Bastion's versioned event contracts: pydantic models and subject names, nothing else.

One module per event family. Producers build strict models; consumers tolerate extra fields of a newer
minor version. See CHANGELOG.md beside this file for every contract version.
"""

from shared.contracts.analytics import (
    ConfluenceInsight,
    InsightComponent,
    InsightEvent,
    InsightsRecomputed,
    RecomputeInsights,
)
from shared.contracts.audit import AuditRecord
from shared.contracts.auth import (
    AuthAudit,
    LoginRequest,
    SessionReply,
    TokenRequest,
    UserAdminReply,
    UserAdminRequest,
    UserInfo,
)
from shared.contracts.envelope import (
    BASTION_NAMESPACE,
    Command,
    Contract,
    Event,
    UtcDatetime,
    derive_event_id,
)
from shared.contracts.health import DeadLetter, Heartbeat
from shared.contracts.market_data import OHLCVBar
from shared.contracts.orders import OrderEvent, TradeEvent
from shared.contracts.risk import (
    Position,
    PositionSnapshot,
    RiskCheck,
    RiskCommand,
    RiskDecision,
    RiskStateChanged,
)
from shared.contracts.signals import SignalEvent
from shared.contracts.subjects import InvalidSymbolError, normalize_symbol

#: Every contract, for schema export and compatibility checks.
ALL_CONTRACTS: tuple[type[Contract], ...] = (
    OHLCVBar,
    InsightEvent,
    SignalEvent,
    OrderEvent,
    TradeEvent,
    RiskDecision,
    RiskCommand,
    RiskStateChanged,
    AuditRecord,
    PositionSnapshot,
    Heartbeat,
    DeadLetter,
    LoginRequest,
    TokenRequest,
    SessionReply,
    AuthAudit,
    RecomputeInsights,
    InsightsRecomputed,
    UserAdminRequest,
    UserAdminReply,
)

__all__ = [
    "ALL_CONTRACTS",
    "BASTION_NAMESPACE",
    "AuditRecord",
    "AuthAudit",
    "Command",
    "ConfluenceInsight",
    "Contract",
    "DeadLetter",
    "Event",
    "Heartbeat",
    "InsightComponent",
    "InsightEvent",
    "InsightsRecomputed",
    "InvalidSymbolError",
    "LoginRequest",
    "OHLCVBar",
    "OrderEvent",
    "Position",
    "PositionSnapshot",
    "RecomputeInsights",
    "RiskCheck",
    "RiskCommand",
    "RiskDecision",
    "RiskStateChanged",
    "SessionReply",
    "SignalEvent",
    "TokenRequest",
    "TradeEvent",
    "UserAdminReply",
    "UserAdminRequest",
    "UserInfo",
    "UtcDatetime",
    "derive_event_id",
    "normalize_symbol",
]
