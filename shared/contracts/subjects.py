"""Subject names: ``<domain>.v<major>.<event>.<key>``, and the one rule for symbols.

Symbol rule: a symbol is 1-32 characters of ``A-Z 0-9 & _ -``, starting with a letter or digit, and is
upper-cased on the way in. That covers NSE symbols (``INFY``, ``M&M``, ``BAJAJ-AUTO``). Anything else
(``.``, ``*``, ``>``, spaces, ``^``) is rejected with an error that names the symbol, never passed
through to a subject. Exchange suffixes such as ``RELIANCE.NS`` must be stripped by the user.
"""

from __future__ import annotations

import re

SYMBOL_PATTERN = r"^[A-Z0-9][A-Z0-9&_\-]{0,31}$"
_SYMBOL_RE = re.compile(SYMBOL_PATTERN)


class InvalidSymbolError(ValueError):
    """A symbol that NATS subjects cannot carry under Bastion's rule."""


def normalize_symbol(symbol: str) -> str:
    """Upper-case ``symbol`` and check it against the symbol rule, or raise ``InvalidSymbolError``."""
    candidate = symbol.strip().upper()
    if not _SYMBOL_RE.fullmatch(candidate):
        hint = " (drop exchange suffixes such as .NS)" if "." in candidate else ""
        raise InvalidSymbolError(
            f"invalid symbol {symbol!r}: use 1-32 characters of A-Z, 0-9, '&', '_' or '-', "
            f"starting with a letter or digit{hint}"
        )
    return candidate


def subject(domain: str, major: int, event: str, key: str | None = None) -> str:
    base = f"{domain}.v{major}.{event}"
    return f"{base}.{key}" if key is not None else base


def bar_subject(symbol: str) -> str:
    return subject("md", 1, "bar", normalize_symbol(symbol))


def insight_subject(symbol: str) -> str:
    return subject("analytics", 1, "insight", normalize_symbol(symbol))


def signal_subject(symbol: str) -> str:
    return subject("strategy", 1, "signal", normalize_symbol(symbol))


def order_subject(symbol: str) -> str:
    return subject("exec", 1, "order", normalize_symbol(symbol))


def trade_subject(symbol: str) -> str:
    return subject("exec", 1, "trade", normalize_symbol(symbol))


def risk_decision_subject(symbol: str) -> str:
    return subject("risk", 1, "decision", normalize_symbol(symbol))


def dlq_subject(service: str) -> str:
    return subject("dlq", 1, service)


def symbol_of(subject_name: str) -> str:
    """The symbol at the end of a per-symbol subject."""
    return subject_name.rsplit(".", 1)[-1]


# Fixed subjects.
RISK_COMMAND = "risk.v1.command"
RISK_STATE = "risk.v1.state"
POSITIONS = "exec.v1.positions"
AUTH_LOGIN = "auth.v1.login"
AUTH_VERIFY = "auth.v1.verify"
AUTH_LOGOUT = "auth.v1.logout"
AUTH_WHOAMI = "auth.v1.whoami"
AUDIT_AUTH = "audit.v1.auth"
AUDIT_EXEC = "audit.v1.exec"
#: Control requests (core NATS request/reply; no stream holds ``ctl.>``).
ANALYTICS_RECOMPUTE = "ctl.v1.analytics.recompute"
AUTH_USERS = "ctl.v1.auth.users"  # bastion users ... while the auth service runs (operator only)

# Wildcards consumers subscribe to.
ALL_BARS = "md.v1.bar.>"
ALL_INSIGHTS = "analytics.v1.insight.>"
ALL_SIGNALS = "strategy.v1.signal.>"
ALL_ORDERS = "exec.v1.order.>"
ALL_TRADES = "exec.v1.trade.>"

# JetStream streams and the subjects they hold.
STREAMS: dict[str, list[str]] = {
    "MARKETDATA": ["md.>"],
    "ANALYTICS": ["analytics.>"],
    "SIGNALS": ["strategy.>"],
    "EXECUTION": ["exec.>", "risk.>"],
    "AUDIT": ["audit.>"],
    "DLQ": ["dlq.>"],
}

#: Key-value bucket the dashboard reads.
SNAPSHOTS_BUCKET = "SNAPSHOTS"
#: Key-value bucket of the message each consumer is handling one by one after a crash, and how often it was
#: started (``shared.runtime.consumer``); keys ``<service>.<consumer>``, each service writes only its own.
ATTEMPTS_BUCKET = "CONSUMER_ATTEMPTS"
