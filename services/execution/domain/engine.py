"""The execution core: bars, signals and commands in; decisions, orders, fills and state changes out.

Pure and deterministic: every id and payload is derived from the inputs, time is data time. The service
persists ``ExecutionCore.state`` after each batch; a backtester can drive the same object directly::

    core = ExecutionCore(config)
    core.on_bar(bar); out = core.on_signal(signal)   # fills arrive with the next on_bar

Its own events (decisions, orders, fills, state changes) are built with ``Event.build_trusted``: every
field is a value the core has just derived from validated inputs (bars, signals, commands, its config), so
validating it again would only cost time; the ids and JSON bytes are those of ``build``, which
tests/unit/execution/test_trusted_events.py checks event by event. Inputs from outside stay validated.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

from services.execution.domain import risk
from services.execution.domain.broker import PRODUCER, PendingOrder, fill
from services.execution.domain.config import ExecutionConfig, RiskLimits
from services.execution.domain.positions import ZERO, Portfolio
from services.execution.domain.risk import RiskState
from services.execution.domain.sizing import target_quantity
from shared.contracts.common import TradingState
from shared.contracts.envelope import Event, derive_event_id, trusted
from shared.contracts.market_data import OHLCVBar
from shared.contracts.orders import OrderEvent, OrderStatus, TradeEvent
from shared.contracts.risk import PositionSnapshot, RiskCommand, RiskDecision, RiskStateChanged
from shared.contracts.signals import SignalEvent

BARS_KEPT = 64  # the default of ExecutionConfig.bars_kept
ACTION_STATE: dict[str, TradingState] = {"halt": "HALTED", "resume": "ACTIVE", "reduce": "REDUCING"}
E = TypeVar("E", bound=Event)


def order_id_for(signal_id: uuid.UUID) -> uuid.UUID:
    """A signal yields at most one order, whose id is derived from the signal's id."""
    return derive_event_id("bastion.exec.order.id", PRODUCER, str(signal_id))


#: The strategy of a flatten order for what no strategy's book held (``ExecutionCore._flatten``); not a book.
UNBOOKED = "risk:flatten"  # no strategy instance id holds a ":"
#: A flatten order's ``after`` when its symbol has no kept bar: it fills at the next bar of the symbol.
FIRST_BAR = datetime(1970, 1, 1, tzinfo=UTC)

#: Bars from a live broker feed (``OHLCVBar.source``); replayed files and synthetic bars are not live.
LIVE_SOURCE_PREFIX = "broker:"


class BarRef(BaseModel):
    """A kept bar. Frozen: the service persists kept bars by comparing them with the last committed ones
    (``handlers.BarsTracker``), which relies on a ref never changing in place."""

    model_config = ConfigDict(frozen=True)

    timestamp: datetime
    open: Decimal
    close: Decimal
    event_id: uuid.UUID
    live: bool = False  # from a live feed: only then is a signal's lateness judged (risk.check_stale)


def _bar_ref(timestamp: datetime, open_: Decimal, close: Decimal, event_id: uuid.UUID, live: bool) -> BarRef:
    """``BarRef(timestamp=..., open=..., close=..., event_id=..., live=...)`` without validating again what is
    already of its type (a validated bar's time and id, Decimals from ``price_decimal``): the same model."""
    values = {"timestamp": timestamp, "open": open_, "close": close, "event_id": event_id, "live": live}
    return trusted(BarRef, values)


_PRICES: dict[float, Decimal] = {}
PRICES_KEPT = 1 << 14  # a few MB at most


def price_decimal(value: float) -> Decimal:
    """``Decimal(str(value))``, memoised: bar prices sit on a tick and repeat, and the conversion is a
    large share of a bar's cost. Only positive ``float`` keys are kept (``0.0 == -0.0`` and ``1 == 1.0``
    would share a key but not a ``str``); the memo is dropped when it holds ``PRICES_KEPT`` prices."""
    found = _PRICES.get(value) if type(value) is float else None
    if found is None:
        found = Decimal(str(value))
        if type(value) is float and value > 0:
            if len(_PRICES) >= PRICES_KEPT:
                _PRICES.clear()
            _PRICES[value] = found
    return found


def _after(bars: list[BarRef], at: datetime) -> int:
    """Index of the first bar later than ``at`` in a time-ordered list (its length if none is)."""
    return bisect.bisect_right(bars, at, key=_timestamp)


def _timestamp(bar: BarRef) -> datetime:
    return bar.timestamp


class CoreState(BaseModel):
    """Everything the core remembers; persisted as JSON after every batch."""

    portfolio: Portfolio
    risk: RiskState = RiskState()
    bars: dict[str, list[BarRef]] = {}
    pending: list[PendingOrder] = []
    parked: list[SignalEvent] = []
    #: Each strategy instance's own filled position, "strategy_id|symbol" -> signed quantity (no zeros). The
    #: portfolio's position of a symbol is their sum (plus what a state from before books held).
    books: dict[str, Decimal] = {}


def book_key(strategy_id: str, symbol: str) -> str:
    return f"{strategy_id}|{symbol}"


def book_of(key: str) -> tuple[str, str]:
    """The strategy and symbol of a ``book_key`` (neither holds a "|")."""
    strategy_id, symbol = key.split("|", 1)
    return strategy_id, symbol


def _signed(order: PendingOrder) -> Decimal:
    return order.quantity if order.side == "buy" else -order.quantity


@dataclass(frozen=True, slots=True)
class QuietBars:
    """Consecutive bars of the core's input (time order, ties by symbol) for ``on_quiet_bars``: bar i is
    ``symbols[i]`` at ``times[i]`` with ``opens[i]``/``closes[i]`` (the bar's floats) and id ``event_id(i)``,
    asked only for the bars kept. ``live``: the bars come from a live feed (``OHLCVBar.source``)."""

    symbols: Sequence[str]
    times: Sequence[datetime]
    opens: Sequence[float]
    closes: Sequence[float]
    event_id: Callable[[int], uuid.UUID]
    live: bool = False


@dataclass
class Outcome:
    """What one input produced, in the order it happened."""

    events: list[Event] = field(default_factory=list)

    def extend(self, other: Outcome) -> None:
        self.events.extend(other.events)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)


class ExecutionCore:
    def __init__(
        self, config: ExecutionConfig, state: CoreState | None = None, *, record_bars: bool = False
    ) -> None:
        self.config = config
        self.costs = config.effective_costs()
        self.state = state or CoreState(portfolio=Portfolio.starting(config.initial_cash))
        self._sessions = risk.SessionCalendar()
        self._limits_seen: RiskLimits | None = None
        self._limits_text: dict[str, str] = {}
        #: ``state.parked`` by symbol, in parking order (built on first use): a bar looks only at its own
        #: symbol's parked signals, so a backlog of parked signals costs no scan of all of them per bar
        self._parked: dict[str, list[SignalEvent]] | None = None
        #: with ``record_bars``: every bar taken in, in order, for the caller to keep beyond ``bars_kept``
        #: (the service's bar history, which prices a signal whose bar has left the kept window)
        self.new_bars: list[tuple[str, BarRef]] | None = [] if record_bars else None

    # -- inputs ---------------------------------------------------------------------------------------
    def on_bar(self, bar: OHLCVBar) -> Outcome:
        """Fill the symbol's pending orders at the bar's open, mark to its close, roll the session, run the
        breakers, decide the signals that waited for it. A bar older than the symbol's newest one (a
        backfill of history) is only kept, to price a late signal: marking the position to an old close
        would move the equity back in time and could trip a breaker on prices long gone; no order waits for
        it, and no parked signal, since the newer bar released them already."""
        out = Outcome()
        kept = self.state.bars.get(bar.symbol)
        newest = kept[-1].timestamp if kept else None
        ref = self._remember_bar(bar)
        if ref is None:
            return out  # a bar seen before changes nothing
        state, at = self.state, bar.timestamp
        if newest is not None and at < newest:
            return out
        pf, limits = state.portfolio, self.config.limits
        pf.roll_session(self._sessions.day(at, limits))
        if state.pending:
            for order in [o for o in state.pending if o.symbol == bar.symbol and o.after < at]:
                out.extend(self._fill(order, ref.open, at, bar.event_id))
        pf.mark(bar.symbol, ref.close)
        pf.record_equity(at, self.config.equity_points_kept)
        if risk.breakers_armed(limits):  # else _breakers would find nothing to fire
            out.extend(self._breakers(bar.event_id, at))
        if state.parked:
            waiting = self._parked_of(bar.symbol)
            ready = [s for s in waiting if s.bar_timestamp <= at]
            if ready:
                taken = {id(s) for s in ready}
                waiting[:] = [s for s in waiting if id(s) not in taken]
                state.parked[:] = [s for s in state.parked if id(s) not in taken]
                for signal in sorted(ready, key=lambda s: (s.bar_timestamp, str(s.event_id))):
                    out.extend(self._decide(signal))
        return out

    def on_quiet_bars(self, run: QuietBars) -> list[Decimal] | None:
        """Take the bars of ``run`` as ``on_bar`` takes them one by one, when none of them can produce
        anything: no order of their symbols pending, no signal of them parked, no breaker armed, each bar
        newer than its symbol's last one, and no bar log or equity curve to keep. Returns the portfolio's
        equity after each bar (what ``portfolio.equity`` reads after each ``on_bar``), or None, having
        changed nothing, when that does not hold; the caller then calls ``on_bar``.

        What such bars change is the kept bars (only the last ``bars_kept`` of each symbol are built), the
        marks, the session (the last day they start, opened at the equity just before) and the peak equity:
        the same state as bar by bar (tests/unit/execution/test_quiet_bars.py). The equity is computed by
        the portfolio itself, after each bar of a held symbol; a flat symbol's bar leaves it as it was."""
        state, cfg = self.state, self.config
        if self.new_bars is not None or cfg.equity_points_kept or risk.breakers_armed(cfg.limits):
            return None
        symbols = set(run.symbols)
        if any(o.symbol in symbols for o in state.pending):
            return None
        if state.parked and any(self._parked_of(s) for s in symbols):
            return None
        last: dict[str, datetime | None] = {}
        for symbol in symbols:
            kept = state.bars.get(symbol)
            last[symbol] = kept[-1].timestamp if kept else None
        for symbol, at in zip(run.symbols, run.times, strict=True):
            before = last[symbol]
            if before is not None and at <= before:
                return None  # a repeated or older bar: on_bar's slow path
            last[symbol] = at
        if not run.times:
            return []
        pf, limits, day = state.portfolio, cfg.limits, self._sessions.day
        held = {p.symbol for p in pf.positions.values() if p.quantity != 0 and p.symbol in symbols}
        new_day = day(run.times[-1], limits)
        first = len(run.times)  # the first bar of a new session, if the run starts one (days only grow)
        if new_day > pf.session_day:  # sessions only move forward (Portfolio.roll_session)
            first = bisect.bisect_left(range(first), new_day, key=lambda i: day(run.times[i], limits))
        equity, peak = pf.equity, pf.peak_equity
        equities: list[Decimal] = []
        marks: dict[str, Decimal] = {}  # the held symbols' closes so far (the positions are marked after)
        only = pf.positions[next(iter(held))] if len(held) == 1 and pf.open_positions == 1 else None
        for i, symbol in enumerate(run.symbols):
            if i == first:
                pf.session_day, pf.session_start_equity = new_day, equity  # before this bar's mark
            if symbol in held:
                price = price_decimal(run.closes[i])
                if only is not None:  # equity_marked's sum with one open position, without its loop
                    equity = pf.cash + (ZERO + only.quantity * price)
                else:
                    marks[symbol] = price
                    equity = pf.equity_marked(marks)
            if equity > peak:  # max() keeps the peak on a tie, and so does this
                peak = equity
            equities.append(equity)
        pf.peak_equity = peak
        self._keep_quiet_bars(run)
        return equities

    def _keep_quiet_bars(self, run: QuietBars) -> None:
        """Each symbol's last ``bars_kept`` bars of the run into its kept bars; its mark at its last close."""
        pf, keep, wanted = self.state.portfolio, self.config.bars_kept, len(set(run.symbols))
        newest: dict[str, list[int]] = {}  # each symbol's newest rows, newest first
        done = 0
        for i in range(len(run.times) - 1, -1, -1):
            rows = newest.setdefault(run.symbols[i], [])
            if len(rows) < keep:
                rows.append(i)
                done += len(rows) == keep
                if done == wanted:
                    break
        for symbol in dict.fromkeys(run.symbols):  # in the order on_bar would first meet them
            rows, bars = newest[symbol], self.state.bars.setdefault(symbol, [])
            for i in reversed(rows):
                opened, closed = price_decimal(run.opens[i]), price_decimal(run.closes[i])
                bars.append(_bar_ref(run.times[i], opened, closed, run.event_id(i), run.live))
            del bars[:-keep]
            pf.mark(symbol, price_decimal(run.closes[rows[0]]))

    def _parked_of(self, symbol: str) -> list[SignalEvent]:
        """The parked signals of ``symbol`` (the index's own list, so callers may update it in place)."""
        if self._parked is None:
            self._parked = {}
            for signal in self.state.parked:
                self._parked.setdefault(signal.symbol, []).append(signal)
        return self._parked.setdefault(symbol, [])

    def on_signal(self, signal: SignalEvent, history: Sequence[BarRef] = ()) -> Outcome:
        """Decide now if the signal's bar is known, else park it until that bar arrives.

        ``history``: when ``history_from`` says the signal's bar is older than the kept bars, the bars the
        caller kept from that time on (``BarRef``s in time order, all before the first kept bar), so the
        decision and its fill are what they would be had every bar been kept."""
        bars = self.state.bars.get(signal.symbol, [])
        if not bars or bars[-1].timestamp < signal.bar_timestamp:
            self.state.parked.append(signal)
            if self._parked is not None:
                self._parked.setdefault(signal.symbol, []).append(signal)
            return Outcome()
        return self._decide(signal, [*history, *bars] if history else None)

    def history_from(self, signal: SignalEvent) -> datetime | None:
        """The time of the symbol's first kept bar when the signal's bar is older (it left the kept window
        while the signal was on its way): the caller's bar history before that time is then needed."""
        bars = self.state.bars.get(signal.symbol)
        if bars and bars[0].timestamp > signal.bar_timestamp:
            return bars[0].timestamp
        return None

    def on_command(self, command: RiskCommand, username: str | None) -> Outcome:
        """Apply an authenticated kill-switch command; ``username`` None means it was not authorised."""
        if username is None:
            return Outcome()
        target = ACTION_STATE[command.action]
        out = Outcome()
        previous = risk.move(self.state.risk, target, command.reason, username)
        if previous is not None:
            out.events.append(
                self._state_event(
                    previous,
                    str(command.command_id),
                    command.issued_at,
                    command.command_id,
                    command.command_id,
                )
            )
        if target == "ACTIVE" and previous is not None:
            self._rearm_breakers()
        if target == "HALTED" and (command.cancel_orders or command.flatten):
            out.extend(self._cancel_pending(f"halted: {command.reason}", command.issued_at))
        if target == "REDUCING" and command.cancel_orders:
            out.extend(self._cancel_growing(f"reducing: {command.reason}", command.issued_at))
        if target == "HALTED" and command.flatten:
            out.extend(self._flatten(command))
        return out

    def _flatten(self, command: RiskCommand) -> Outcome:
        """Close every position at the market after a halt: one order per strategy book of it, on the
        other side, and one for what no book holds (a state from before books). They need no approval
        (they only reduce) and fill as any paper order does, at each symbol's next bar's open, whatever
        ``fill_at`` says: the halt comes after the last bar's close. Working orders are cancelled first, so
        nothing reopens a position. Ids are derived from the command's, so a replay places the same ones."""
        state = self.state
        closing: list[tuple[str, str, Decimal]] = []  # strategy, symbol, signed quantity held
        booked: dict[str, Decimal] = {}
        for key, held in sorted(state.books.items()):
            strategy_id, symbol = book_of(key)
            closing.append((strategy_id, symbol, held))
            booked[symbol] = booked.get(symbol, ZERO) + held
        for position in sorted(state.portfolio.positions.values(), key=lambda p: p.symbol):
            rest = position.quantity - booked.get(position.symbol, ZERO)
            if rest:
                closing.append((UNBOOKED, position.symbol, rest))
        out = Outcome()
        reason = f"flatten on halt: {command.reason}"
        for strategy_id, symbol, held in closing:
            kept = state.bars.get(symbol)
            values = {
                "order_id": derive_event_id(
                    "bastion.exec.order.id", PRODUCER, f"flatten|{command.command_id}|{strategy_id}|{symbol}"
                ),
                "signal_id": command.command_id,
                "decision_id": command.command_id,
                "correlation_id": command.command_id,
                "symbol": symbol,
                "side": "sell" if held > 0 else "buy",
                "quantity": abs(held),
                "strategy_id": strategy_id,
                "after": kept[-1].timestamp if kept else FIRST_BAR,
            }
            order = trusted(PendingOrder, values)
            out.events.append(self._order_event(order, "accepted", command.issued_at, reason))
            if self.config.mode == "paper":
                state.pending.append(order)
        return out

    # -- decisions ------------------------------------------------------------------------------------
    def _decide(self, signal: SignalEvent, bars: list[BarRef] | None = None) -> Outcome:
        """``bars``: the symbol's bars to decide on when not the kept ones (kept ones with history)."""
        cfg, pf = self.config, self.state.portfolio
        view, ref = self._view(signal, bars)
        intent = None
        reversed_orders: list[PendingOrder] = []
        if ref is not None:  # the strategy's target is for its own book, not the symbol's net position
            own = self.working_quantity(signal.symbol, signal.strategy_id)
            funds = pf.equity
            if cfg.sizing.policy == "all_cash":
                funds = self._available_for(signal.symbol, signal.strategy_id)
            wanted = target_quantity(signal.target, cfg.sizing, cfg.limits, ref.close, funds, self.costs)
            reversed_orders = self._reversed_by(signal.symbol, signal.strategy_id, wanted - own)
            cancelled = sum((_signed(o) for o in reversed_orders), ZERO)  # cancelled, not offset
            delta = wanted - (own - cancelled)
            if delta != 0:
                side = "buy" if delta > 0 else "sell"
                net = self.working_quantity(signal.symbol) - cancelled  # what the limits are judged on
                intent = risk.OrderIntent(signal.symbol, side, abs(delta), ref.close, net)
        key = f"{signal.strategy_id}|{signal.symbol}|{signal.bar_timestamp.isoformat()}"
        checks = risk.pre_trade_checks(cfg.limits, self.state.risk, pf, view, key, intent)
        self.state.risk.remember_signal(key)
        approved = all(c.passed for c in checks)
        decision = RiskDecision.build_trusted(
            producer=PRODUCER,
            key=str(signal.event_id),
            occurred_at=signal.occurred_at,
            correlation_id=signal.correlation_id,
            causation_id=signal.event_id,
            signal_id=signal.event_id,
            symbol=signal.symbol,
            strategy_id=signal.strategy_id,
            approved=approved,
            state=self.state.risk.state,
            checks=checks,
            limits=self._limit_strings(),
        )
        out = Outcome([decision])
        if approved:
            for order in reversed_orders:
                self.state.pending.remove(order)
                reason = f"reversed by signal {signal.event_id} ({signal.strategy_id}: {signal.target})"
                out.events.append(
                    self._order_event(order, "cancelled", signal.occurred_at, reason, decision.event_id)
                )
        if approved and intent is not None and ref is not None:
            out.extend(self._place(signal, decision, intent, ref, bars))
        return out

    def _available_for(self, symbol: str, strategy_id: str) -> Decimal:
        """What ``all_cash`` sizing may put in one strategy's book of ``symbol``: the equity less what every
        other book holds or will hold once its working orders fill, each at its symbol's last close (the
        available margin of backtesting.py at margin 1). With that book the only one, it is the equity; with
        the others long, it is the cash left after them. A book's own position and orders are not taken off:
        its target replaces them."""
        others = set(self.state.books)
        others.update(book_key(o.strategy_id, o.symbol) for o in self.state.pending)
        others.discard(book_key(strategy_id, symbol))
        used = ZERO
        for key in sorted(others):
            other_strategy, other_symbol = book_of(key)
            held = self.working_quantity(other_symbol, other_strategy)
            if held:
                used += abs(held) * self._last_close(other_symbol)
        return self.state.portfolio.equity - used

    def _last_close(self, symbol: str) -> Decimal:
        """The symbol's newest close seen: its kept bars' last one, else its position's mark."""
        kept = self.state.bars.get(symbol)
        if kept:
            return kept[-1].close
        return self.state.portfolio.position(symbol).last_price

    def _reversed_by(self, symbol: str, strategy_id: str, delta: Decimal) -> list[PendingOrder]:
        """The strategy's working orders of ``symbol`` on the other side of ``delta`` (what its target asks
        beyond its book and working orders): a new target cancels them rather than trading against them,
        so a long-only book never sells what it does not hold while its buy is still working."""
        if delta == 0:
            return []
        other = "sell" if delta > 0 else "buy"
        return [
            o
            for o in self.state.pending
            if o.symbol == symbol and o.strategy_id == strategy_id and o.side == other
        ]

    def _limit_strings(self) -> dict[str, str]:
        """``limits.as_strings()``, computed again only when the (frozen) limits object is replaced."""
        limits = self.config.limits
        if self._limits_seen is not limits:
            self._limits_seen, self._limits_text = limits, limits.as_strings()
        return dict(self._limits_text)

    def working_quantity(self, symbol: str, strategy_id: str | None = None) -> Decimal:
        """The position plus every working order of ``symbol``: what it will be once they fill. With
        ``strategy_id``, that strategy's book and its own working orders only."""
        pending = sum(
            (
                _signed(o)
                for o in self.state.pending
                if o.symbol == symbol and (strategy_id is None or o.strategy_id == strategy_id)
            ),
            ZERO,
        )
        if strategy_id is None:
            return self.state.portfolio.quantity(symbol) + pending
        return self.state.books.get(book_key(strategy_id, symbol), ZERO) + pending

    def _view(
        self, signal: SignalEvent, bars: list[BarRef] | None = None
    ) -> tuple[risk.MarketView, BarRef | None]:
        if bars is None:
            bars = self.state.bars.get(signal.symbol, [])
        cut = _after(bars, signal.bar_timestamp)  # bars[:cut] are at or before the signal's bar
        ref = bars[cut - 1] if cut else None
        prev = bars[cut - 2].close if cut > 1 else None
        later = len(bars) - cut
        age = (bars[-1].timestamp - signal.bar_timestamp).total_seconds() if bars else 0.0
        view = risk.MarketView(
            now=signal.occurred_at,
            last_close=ref.close if ref else None,
            prev_close=prev,
            bars_since_signal=later,
            age_seconds=max(age, 0.0),
            live=bool(bars) and bars[-1].live,
        )
        return view, ref

    def _place(
        self,
        signal: SignalEvent,
        decision: RiskDecision,
        intent: risk.OrderIntent,
        ref: BarRef,
        bars: list[BarRef] | None = None,
    ) -> Outcome:
        self.state.risk.remember_order(signal.occurred_at)
        values = {  # from the validated signal and the core's own decision: not validated again
            "order_id": order_id_for(signal.event_id),
            "signal_id": signal.event_id,
            "decision_id": decision.event_id,
            "correlation_id": signal.correlation_id,
            "symbol": signal.symbol,
            "side": "buy" if intent.side == "buy" else "sell",
            "quantity": intent.quantity,
            "strategy_id": signal.strategy_id,
            "after": signal.bar_timestamp,
        }
        order = trusted(PendingOrder, values)
        out = Outcome([self._order_event(order, "accepted", signal.occurred_at, signal.reason)])
        if self.config.mode != "paper":
            return out  # dry_run records only; live hands the order to the broker adapter
        if self.costs.fill_at == "signal_close":
            out.extend(self._fill(order, ref.close, signal.bar_timestamp, ref.event_id, pending=False))
            return out
        self.state.pending.append(order)
        if bars is None:
            bars = self.state.bars.get(order.symbol, [])
        later = bars[_after(bars, order.after) :]
        if later:  # bars ran ahead of signals: fill at the bar that follows the signal's bar
            cash = self.state.portfolio.cash
            filled = self._fill(order, later[0].open, later[0].timestamp, later[0].event_id)
            trade = filled.events[0]
            assert isinstance(trade, TradeEvent)
            self._backdate(trade, later, cash - self.state.portfolio.cash)
            out.extend(filled)
            out.extend(self._mark_to(later[-1], order.symbol))
        return out

    def _backdate(self, trade: TradeEvent, bars: list[BarRef], cost: Decimal) -> None:
        """The equity curve as if a late fill had come in time: each point from the fill's bar on (``bars``,
        the symbol's bars from it to the newest), but the last one (the equity now, marked next), gains the
        fill's position valued at the symbol's close of that time, less ``cost`` (the cash the fill took)."""
        curve = self.state.portfolio.equity_curve
        first = bisect.bisect_left(curve, trade.filled_at, key=lambda point: point[0])
        if first >= len(curve) - 1:
            return
        signed = trade.quantity if trade.side == "buy" else -trade.quantity
        times = [b.timestamp for b in bars]
        for i in range(first, len(curve) - 1):
            at, equity = curve[i]
            close = bars[max(bisect.bisect_right(times, at) - 1, 0)].close
            curve[i] = (at, equity + signed * close - cost)

    def _mark_to(self, bar: BarRef, symbol: str) -> Outcome:
        """Mark a late fill to the newest bar already seen, so its P&L and the breakers see it at once."""
        pf = self.state.portfolio
        pf.mark(symbol, bar.close)
        pf.record_equity(bar.timestamp, self.config.equity_points_kept)
        return self._breakers(bar.event_id, bar.timestamp)

    # -- fills, breakers, cancels ---------------------------------------------------------------------
    def _fill(
        self, order: PendingOrder, price: Decimal, at: datetime, bar_id: uuid.UUID, pending: bool = True
    ) -> Outcome:
        if pending:
            self.state.pending.remove(order)
        trade = fill(order, price, at, bar_id, self.costs, self.config.mode)
        self.state.portfolio.apply_trade(trade)
        if order.strategy_id != UNBOOKED:  # a flatten order for what no book held changes no book
            books, key = self.state.books, book_key(order.strategy_id, order.symbol)
            held = books.get(key, ZERO) + _signed(order)
            if held:
                books[key] = held
            else:
                books.pop(key, None)
        self.state.portfolio.record_equity(at, self.config.equity_points_kept)
        out = Outcome([trade, self._order_event(order, "filled", at, f"filled at {trade.price}")])
        out.extend(self._breakers(trade.event_id, at))
        return out

    def _breakers(self, cause: uuid.UUID, at: datetime) -> Outcome:
        limits = self.config.limits
        if not risk.breakers_armed(limits):
            return Outcome()  # what tripped_breakers' empty answer gives, without computing the P&L
        fired = risk.tripped_breakers(limits, self.state.portfolio)
        if not fired:
            return Outcome()
        new = {k: v for k, v in fired.items() if k not in self.state.risk.tripped}
        if not new or self.state.risk.state == "HALTED":
            self.state.risk.tripped.update(new)
            return Outcome()
        self.state.risk.tripped.update(new)
        name, reason = next(iter(new.items()))
        previous = risk.move(self.state.risk, "HALTED", reason, f"breaker:{name}")
        out = Outcome()
        if previous is not None:
            out.events.append(self._state_event(previous, f"breaker|{name}|{cause}", at, None, cause))
            out.extend(self._cancel_pending(f"breaker {name}", at))
        return out

    def _rearm_breakers(self) -> None:
        """On resume the day's loss and the drawdown are measured again from the equity now."""
        pf = self.state.portfolio
        pf.session_start_equity = pf.equity
        pf.peak_equity = pf.equity

    def _cancel_pending(self, reason: str, at: datetime) -> Outcome:
        out = Outcome()
        for order in list(self.state.pending):
            self.state.pending.remove(order)
            out.events.append(self._order_event(order, "cancelled", at, reason))
        return out

    def _cancel_growing(self, reason: str, at: datetime) -> Outcome:
        """Cancel the working orders that would not shrink their symbol's position without flipping it, as
        they fill (in the order placed, each on the position the kept ones before it leave): in REDUCING an
        order placed earlier must not grow a position any more than a new one may."""
        out = Outcome()
        net = {s: p.quantity for s, p in self.state.portfolio.positions.items()}
        for order in list(self.state.pending):
            before = net.get(order.symbol, ZERO)
            after = before + _signed(order)
            if abs(after) < abs(before) and after * before >= 0:
                net[order.symbol] = after
                continue
            self.state.pending.remove(order)
            out.events.append(self._order_event(order, "cancelled", at, reason))
        return out

    # -- event builders -------------------------------------------------------------------------------
    def _order_event(
        self,
        order: PendingOrder,
        status: OrderStatus,
        at: datetime,
        reason: str,
        cause: uuid.UUID | None = None,
    ) -> OrderEvent:
        """``cause``: the event that caused this one when not the order's own decision (a later decision
        that cancels it)."""
        return OrderEvent.build_trusted(
            producer=PRODUCER,
            key=f"{order.order_id}|{status}",
            occurred_at=at,
            correlation_id=order.correlation_id,
            causation_id=order.decision_id if cause is None else cause,
            order_id=order.order_id,
            signal_id=order.signal_id,
            decision_id=order.decision_id,
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            order_type="market",
            limit_price=None,
            status=status,
            mode=self.config.mode,
            strategy_id=order.strategy_id,
            reason=reason[:500],
        )

    def _state_event(
        self, previous: TradingState, key: str, at: datetime, command_id: uuid.UUID | None, cause: uuid.UUID
    ) -> RiskStateChanged:
        rs = self.state.risk
        return RiskStateChanged.build_trusted(
            producer=PRODUCER,
            key=key,
            occurred_at=at,
            causation_id=cause,
            state=rs.state,
            previous=previous,
            reason=rs.reason,
            changed_by=rs.changed_by,
            command_id=command_id,
        )

    def _remember_bar(self, bar: OHLCVBar) -> BarRef | None:
        """Keep the newest ``config.bars_kept`` bars of the symbol in time order; None for a bar seen before.

        The kept list is always sorted, so a bar newer than the last one is appended (the common case,
        O(1)); an older or repeated bar takes the slow path: scan for a duplicate, insert, sort."""
        bars = self.state.bars.get(bar.symbol)
        if bars is None:
            bars = self.state.bars[bar.symbol] = []
        in_order = not bars or bars[-1].timestamp < bar.timestamp
        if not in_order and any(b.timestamp == bar.timestamp for b in bars):
            return None
        live = bar.source.startswith(LIVE_SOURCE_PREFIX)
        ref = _bar_ref(bar.timestamp, price_decimal(bar.open), price_decimal(bar.close), bar.event_id, live)
        bars.append(ref)
        if self.new_bars is not None:
            self.new_bars.append((bar.symbol, ref))
        if not in_order:
            bars.sort(key=lambda b: b.timestamp)
        kept = self.config.bars_kept
        if len(bars) > kept:
            del bars[:-kept]
        return ref

    # -- views for snapshots ----------------------------------------------------------------------------
    def positions_snapshot(self, at: datetime) -> PositionSnapshot:
        pf = self.state.portfolio
        return PositionSnapshot.build(
            producer=PRODUCER,
            key=f"positions|{at.isoformat()}",
            occurred_at=at,
            positions=tuple(p.to_contract() for p in sorted(pf.positions.values(), key=lambda p: p.symbol)),
            cash=pf.cash,
            equity=pf.equity,
            realised_pnl=pf.realised_pnl,
            unrealised_pnl=pf.unrealised_pnl,
            day_pnl=pf.day_pnl,
        )

    def risk_view(self) -> dict[str, object]:
        pf, rs = self.state.portfolio, self.state.risk
        return {
            "state": rs.state,
            "reason": rs.reason,
            "changed_by": rs.changed_by,
            "mode": self.config.mode,
            "limits": self.config.limits.as_strings(),
            "usage": {
                "gross_exposure": str(pf.gross_exposure),
                "open_positions": pf.open_positions,
                "day_pnl": str(pf.day_pnl),
                "drawdown_pct": str(round(pf.drawdown_pct, 4)),
                "orders_last_minute": len(rs.order_times),
                "pending_orders": len(self.state.pending),
                "parked_signals": len(self.state.parked),
            },
            "breakers": dict(rs.tripped),
        }
