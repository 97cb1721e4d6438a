"""The risk manager's rules: trading state, pre-trade checks (each with a reason) and circuit breakers.

States: ACTIVE (everything the limits allow), REDUCING (only orders that shrink a position), HALTED
(nothing). Breakers move to HALTED on their own; only an admin command resumes. Time is data time.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel, PrivateAttr

from services.execution.domain.config import RiskLimits
from services.execution.domain.positions import Portfolio
from shared.contracts.common import TradingState
from shared.contracts.envelope import trusted
from shared.contracts.risk import RiskCheck

ZERO = Decimal(0)
SEEN_SIGNALS_KEPT = 20_000


@dataclass(frozen=True)
class OrderIntent:
    """A proposed order: unsigned quantity, side, reference price, the position before it."""

    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    current_qty: Decimal

    @property
    def signed(self) -> Decimal:
        return self.quantity if self.side == "buy" else -self.quantity

    @property
    def new_qty(self) -> Decimal:
        return self.current_qty + self.signed

    @property
    def reducing(self) -> bool:
        """Shrinks the position without flipping it."""
        return abs(self.new_qty) < abs(self.current_qty) and (self.new_qty * self.current_qty) >= 0

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.price


@dataclass(frozen=True)
class MarketView:
    """What the data says at decision time."""

    now: datetime
    last_close: Decimal | None
    prev_close: Decimal | None
    bars_since_signal: int
    age_seconds: float
    live: bool = True  # the newest bar of the symbol came from a live feed (see ``check_stale``)


class RiskState(BaseModel):
    """The risk manager's memory: trading state, recent approved order times, seen signal keys."""

    state: TradingState = "ACTIVE"
    reason: str = "start"
    changed_by: str = "system"
    order_times: list[datetime] = []
    seen_signals: deque[str] = deque()  # oldest first; persisted as a list
    _seen: Counter[str] | None = PrivateAttr(default=None)  # seen_signals counted, built on first use
    _remembered: int = PrivateAttr(default=0)  # keys remembered by this object (not persisted)
    tripped: dict[str, str] = {}

    def remember_order(self, at: datetime) -> None:
        self.order_times.append(at)
        cutoff = at - timedelta(minutes=1)
        self.order_times = [t for t in self.order_times if t > cutoff]

    def remember_signal(self, key: str) -> None:
        """Add ``key`` to ``seen_signals`` (the newest SEEN_SIGNALS_KEPT are kept); change it only here."""
        seen = self.seen_signals
        seen.append(key)
        self._remembered += 1
        index = self._index()
        index[key] += 1
        while len(seen) > SEEN_SIGNALS_KEPT:  # a deque: dropping the oldest costs O(1), not a list shift
            old = seen.popleft()
            index[old] -= 1
            if not index[old]:
                del index[old]

    @property
    def remembered(self) -> int:
        """How many keys this object has remembered since it was made or loaded: what was added since a
        count taken before is the newest ``remembered - before`` keys of ``seen_signals`` (those of them
        still kept), which lets a store write only the new keys."""
        return self._remembered

    def has_seen(self, key: str) -> bool:
        """``key in seen_signals`` in O(1) (a list scan cost ~150 us per signal at 20,000 keys)."""
        return key in self._index()

    def __eq__(self, other: object) -> bool:  # the fields only: ``_seen`` is a cache of one of them
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable, as every non-frozen model

    def _index(self) -> Counter[str]:
        if self._seen is None:
            self._seen = Counter(self.seen_signals)
        return self._seen


def _check(name: str, ok: bool, reason: str) -> RiskCheck:
    """The check's outcome, built without validating again: a name of this module, a bool, a reason cut
    to fit (tests/unit/execution/test_trusted_events.py)."""
    values = {"name": name, "passed": bool(ok), "reason": ("ok: " if ok else "") + reason[:290]}
    return trusted(RiskCheck, values)


def check_state(state: RiskState, intent: OrderIntent | None) -> RiskCheck:
    if state.state == "HALTED":
        return _check("trading_state", False, f"trading is HALTED ({state.reason})")
    if state.state == "REDUCING" and intent is not None and not intent.reducing:
        return _check("trading_state", False, "REDUCING: only orders that shrink a position are allowed")
    return _check("trading_state", True, state.state)


def check_price_known(view: MarketView) -> RiskCheck:
    ok = view.last_close is not None
    return _check("price_known", ok, "a bar price is known" if ok else "no bar seen for the symbol yet")


def check_stale(limits: RiskLimits, view: MarketView) -> RiskCheck:
    """A signal is stale when more newer bars (or more data time) arrived before it than the limits allow.

    Only judged while the newest bar comes from a live feed: what has "already arrived" depends on how
    fast bars reach execution compared with signals, which in a replay, a simulation or a backtest is the
    machine's speed, not the market's. There the check passes, so the same bars give the same decisions
    whatever the pace (the determinism the backtest/paper parity relies on)."""
    bars, secs = limits.max_signal_age_bars, limits.max_signal_age_seconds
    if not view.live and (bars is not None or secs is not None):
        return _check("stale_data", True, "not judged: replayed or synthetic bars")
    if bars is not None and view.bars_since_signal > bars:
        return _check("stale_data", False, f"signal is {view.bars_since_signal} bars old (max {bars})")
    if secs is not None and view.age_seconds > secs:
        return _check("stale_data", False, f"signal is {view.age_seconds:.0f}s old in data time (max {secs})")
    return _check("stale_data", True, f"{view.bars_since_signal} bars, {view.age_seconds:.0f}s old")


def check_duplicate(limits: RiskLimits, state: RiskState, key: str) -> RiskCheck:
    if limits.suppress_duplicates and state.has_seen(key):
        return _check("duplicate_signal", False, f"already decided a signal for {key}")
    return _check("duplicate_signal", True, "first signal for this strategy, symbol and bar")


def check_order_size(limits: RiskLimits, intent: OrderIntent) -> list[RiskCheck]:
    out = []
    if limits.max_order_qty is not None:
        ok = intent.quantity <= limits.max_order_qty
        out.append(_check("max_order_qty", ok, f"order qty {intent.quantity} vs max {limits.max_order_qty}"))
    if limits.max_order_notional is not None:
        ok = intent.notional <= limits.max_order_notional
        reason = f"order notional {intent.notional:.2f} vs max {limits.max_order_notional}"
        out.append(_check("max_order_notional", ok, reason))
    return out


def check_position(limits: RiskLimits, intent: OrderIntent) -> list[RiskCheck]:
    """Per-symbol position limits on the position after the order; a reducing order always passes."""
    out = []
    new = abs(intent.new_qty)
    if limits.max_position_qty is not None:
        ok = intent.reducing or new <= limits.max_position_qty
        out.append(
            _check("max_position_qty", ok, f"position would be {new} vs max {limits.max_position_qty}")
        )
    if limits.max_position_notional is not None:
        value = new * intent.price
        ok = intent.reducing or value <= limits.max_position_notional
        reason = f"position notional would be {value:.2f} vs max {limits.max_position_notional}"
        out.append(_check("max_position_notional", ok, reason))
    return out


def check_exposure(limits: RiskLimits, portfolio: Portfolio, intent: OrderIntent) -> list[RiskCheck]:
    out = []
    if limits.max_gross_exposure is not None:
        pos = portfolio.position(intent.symbol)
        current_value = abs(pos.quantity) * (pos.last_price or intent.price)  # working orders: in new_qty
        after = portfolio.gross_exposure - current_value + abs(intent.new_qty) * intent.price
        ok = intent.reducing or after <= limits.max_gross_exposure
        reason = f"gross exposure would be {after:.2f} vs max {limits.max_gross_exposure}"
        out.append(_check("max_gross_exposure", ok, reason))
    if limits.max_open_positions is not None:
        opening = intent.current_qty == 0 and intent.new_qty != 0
        count = portfolio.open_positions + (1 if opening else 0)
        ok = not opening or count <= limits.max_open_positions
        out.append(_check("max_open_positions", ok, f"{count} open vs max {limits.max_open_positions}"))
    return out


def check_rate(limits: RiskLimits, state: RiskState, now: datetime) -> list[RiskCheck]:
    out = []
    for name, limit, window in (
        ("rate_per_second", limits.max_orders_per_second, timedelta(seconds=1)),
        ("rate_per_minute", limits.max_orders_per_minute, timedelta(minutes=1)),
    ):
        if limit is None:
            continue
        recent = sum(1 for t in state.order_times if now - window < t <= now)
        out.append(_check(name, recent < limit, f"{recent} orders in the last {window} (max {limit})"))
    return out


def check_price_band(limits: RiskLimits, view: MarketView, intent: OrderIntent) -> RiskCheck:
    """Fat-finger guard: the reference price must sit within the band of the previous bar's close."""
    band = limits.price_band_pct
    anchor = view.prev_close or view.last_close
    if band is None or anchor is None:
        return _check("price_band", True, "no band or no previous bar")
    move = abs(intent.price - anchor) / anchor * 100
    return _check(
        "price_band", move <= band, f"price {intent.price} is {move:.2f}% from {anchor} (max {band}%)"
    )


def pre_trade_checks(
    limits: RiskLimits,
    state: RiskState,
    portfolio: Portfolio,
    view: MarketView,
    duplicate_key: str,
    intent: OrderIntent | None,
) -> tuple[RiskCheck, ...]:
    """Every check for one signal, in a fixed order. ``intent`` is None when no order is needed."""
    checks = [
        check_state(state, intent),
        check_price_known(view),
        check_stale(limits, view),
        check_duplicate(limits, state, duplicate_key),
    ]
    if intent is not None:
        checks += check_order_size(limits, intent)
        checks += check_position(limits, intent)
        checks += check_exposure(limits, portfolio, intent)
        checks += check_rate(limits, state, view.now)
        checks.append(check_price_band(limits, view, intent))
    return tuple(checks)


def breakers_armed(limits: RiskLimits) -> bool:
    """Whether any circuit breaker is configured: when not, ``tripped_breakers`` is ``{}`` whatever the
    portfolio, so a caller may skip it (and its P&L sums). Name every breaker limit here."""
    return limits.daily_loss_limit is not None or limits.max_drawdown_pct is not None


def tripped_breakers(limits: RiskLimits, portfolio: Portfolio) -> dict[str, str]:
    """Circuit breakers that fire now: name -> reason. Every limit it reads is in ``breakers_armed``."""
    out: dict[str, str] = {}
    if limits.daily_loss_limit is not None and portfolio.day_pnl <= -limits.daily_loss_limit:
        out["daily_loss"] = f"day P&L {portfolio.day_pnl:.2f} breached -{limits.daily_loss_limit}"
    if limits.max_drawdown_pct is not None and portfolio.drawdown_pct >= limits.max_drawdown_pct:
        out["max_drawdown"] = (
            f"drawdown {portfolio.drawdown_pct:.2f}% from peak {portfolio.peak_equity:.2f} "
            f"reached {limits.max_drawdown_pct}%"
        )
    return out


def session_day(at: datetime, limits: RiskLimits) -> str:
    """The trading session ``at`` belongs to: sessions start at ``limits.session_start`` (UTC)."""
    start = timedelta(hours=limits.session_start.hour, minutes=limits.session_start.minute)
    return (at - start).date().isoformat()


class SessionCalendar:
    """``session_day`` that remembers the current session's bounds: a bar inside them costs two
    comparisons instead of date arithmetic. Same answers as ``session_day``."""

    def __init__(self) -> None:
        self._key: tuple[object, ...] = ()
        self._bounds: tuple[datetime, datetime] | None = None
        self._day = ""

    def day(self, at: datetime, limits: RiskLimits) -> str:
        key = (limits.session_start, at.tzinfo)
        if key == self._key and self._bounds is not None and self._bounds[0] <= at < self._bounds[1]:
            return self._day
        day = session_day(at, limits)
        start = timedelta(hours=limits.session_start.hour, minutes=limits.session_start.minute)
        lo = datetime.combine(date.fromisoformat(day), datetime.min.time(), at.tzinfo) + start
        self._key, self._bounds, self._day = key, (lo, lo + timedelta(days=1)), day
        return day


def move(state: RiskState, to: TradingState, reason: str, by: str) -> TradingState | None:
    """Move to ``to``; returns the previous state, or None if nothing changed."""
    if state.state == to:
        return None
    previous = state.state
    state.state, state.reason, state.changed_by = to, reason[:300], by[:64]
    if to == "ACTIVE":
        state.tripped = {}
    return previous
