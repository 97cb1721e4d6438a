"""Positions, cash and P&L: changed only by fills (``TradeEvent``), marked to the last bar."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel

from shared.contracts.orders import TradeEvent
from shared.contracts.risk import Position

ZERO = Decimal(0)
_AS_MARKED: dict[str, Decimal] = {}  # no other marks: never written to


class PositionState(BaseModel):
    """One symbol's holding. ``quantity`` < 0 is a short."""

    symbol: str
    quantity: Decimal = ZERO
    average_price: Decimal = ZERO
    realised_pnl: Decimal = ZERO
    last_price: Decimal = ZERO

    @property
    def unrealised_pnl(self) -> Decimal:
        return self.quantity * (self.last_price - self.average_price)

    @property
    def market_value(self) -> Decimal:
        return self.quantity * self.last_price

    def apply_fill(self, signed_qty: Decimal, price: Decimal) -> Decimal:
        """Apply a fill of ``signed_qty`` at ``price``; returns the P&L it realised (before commission)."""
        old = self.quantity
        new = old + signed_qty
        realised = ZERO
        if old == 0 or (old > 0) == (signed_qty > 0):  # opening or adding
            self.average_price = (old * self.average_price + signed_qty * price) / new
        else:  # reducing, closing or flipping
            closed = min(abs(signed_qty), abs(old))
            direction = Decimal(1) if old > 0 else Decimal(-1)
            realised = closed * (price - self.average_price) * direction
            if new == 0:
                self.average_price = ZERO
            elif (new > 0) != (old > 0):  # flipped: the remainder opens at the fill price
                self.average_price = price
        self.quantity = new
        self.realised_pnl += realised
        if self.last_price == 0:
            self.last_price = price
        return realised

    def to_contract(self) -> Position:
        return Position(
            symbol=self.symbol,
            quantity=self.quantity,
            average_price=self.average_price,
            last_price=self.last_price,
            realised_pnl=self.realised_pnl,
            unrealised_pnl=self.unrealised_pnl,
        )


class Portfolio(BaseModel):
    """Cash, positions, commissions paid, the equity peak and the current session's opening equity."""

    cash: Decimal
    positions: dict[str, PositionState] = {}
    commissions: Decimal = ZERO
    peak_equity: Decimal = ZERO
    session_day: str = ""
    session_start_equity: Decimal = ZERO
    equity_curve: list[tuple[datetime, Decimal]] = []

    @classmethod
    def starting(cls, cash: Decimal) -> Portfolio:
        return cls(cash=cash, peak_equity=cash, session_start_equity=cash)

    def position(self, symbol: str) -> PositionState:
        return self.positions.get(symbol) or PositionState(symbol=symbol)

    def quantity(self, symbol: str) -> Decimal:
        pos = self.positions.get(symbol)
        return pos.quantity if pos else ZERO

    def apply_trade(self, trade: TradeEvent) -> None:
        """The only way a position changes."""
        signed = trade.quantity if trade.side == "buy" else -trade.quantity
        pos = self.positions.get(trade.symbol)
        if pos is None:  # (setdefault would validate a new PositionState on every fill)
            pos = self.positions[trade.symbol] = PositionState(symbol=trade.symbol)
        pos.apply_fill(signed, trade.price)
        pos.realised_pnl -= trade.commission
        self.cash -= signed * trade.price + trade.commission
        self.commissions += trade.commission

    def mark(self, symbol: str, price: Decimal) -> None:
        pos = self.positions.get(symbol)
        if pos is not None:
            pos.last_price = price

    @property
    def equity(self) -> Decimal:
        """Cash plus the open positions marked to their last price. A flat position adds nothing, not even
        its zero's exponent (``0 * 101.25`` is ``Decimal('0.00')``), so equity is cash itself when flat."""
        return self.equity_marked(_AS_MARKED)

    def equity_marked(self, marks: Mapping[str, Decimal]) -> Decimal:
        """``equity`` with the symbols in ``marks`` marked at those prices instead of their last ones."""
        held = ZERO  # summed in the same order as sum(..., ZERO), so the Decimal is identical
        for p in self.positions.values():
            if p.quantity:
                held += p.quantity * marks.get(p.symbol, p.last_price)
        return self.cash + held

    @property
    def realised_pnl(self) -> Decimal:
        return sum((p.realised_pnl for p in self.positions.values()), ZERO)

    @property
    def unrealised_pnl(self) -> Decimal:
        return sum((p.unrealised_pnl for p in self.positions.values()), ZERO)

    @property
    def gross_exposure(self) -> Decimal:
        return sum((abs(p.market_value) for p in self.positions.values()), ZERO)

    @property
    def open_positions(self) -> int:
        return sum(1 for p in self.positions.values() if p.quantity != 0)

    @property
    def day_pnl(self) -> Decimal:
        """Realised + unrealised change of equity since the session started."""
        return self.equity - self.session_start_equity

    @property
    def drawdown_pct(self) -> Decimal:
        if self.peak_equity <= 0:
            return ZERO
        return (self.peak_equity - self.equity) / self.peak_equity * 100

    def roll_session(self, day: str) -> bool:
        """Start a new session at ``day`` (the equity now is its opening equity); True if it was new. Days
        only move forward: a bar of an earlier day (a symbol's history arriving after today's bars) leaves
        today's session, so the daily-loss breaker still measures from today's opening equity."""
        if day <= self.session_day:
            return False
        self.session_day = day
        self.session_start_equity = self.equity
        return True

    def record_equity(self, at: datetime, keep: int) -> None:
        """Raise the peak to the equity now, and keep it as the curve's point at ``at`` (the last ``keep``
        points are kept; none when 0). The curve's times never go back: a point at an earlier time than the
        last one (a late signal filled at an old bar, a symbol whose bars lag the others) is the equity now,
        so it replaces the last point instead of going in among the past ones."""
        equity = self.equity
        if equity > self.peak_equity:  # max() keeps the peak on a tie, and so does this
            self.peak_equity = equity
        if keep <= 0:
            return
        if self.equity_curve and self.equity_curve[-1][0] >= at:
            self.equity_curve[-1] = (self.equity_curve[-1][0], equity)
        else:
            self.equity_curve.append((at, equity))
        del self.equity_curve[:-keep]
