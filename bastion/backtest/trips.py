"""Fills -> round trips: a trade runs from the fill that opens a position (from flat) to the fill that brings
it back to flat. Adding to a position averages the entry price; reducing it averages the exit price; a fill
that reverses the position closes the trip and opens a new one with the rest (its commission is split in
proportion to the quantities)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from bastion.backtest.stats import RoundTrip
from shared.contracts.orders import TradeEvent

ZERO = Decimal(0)


@dataclass
class _Open:
    direction: str
    entry_time: datetime
    quantity: Decimal = ZERO  # absolute, currently held
    bought_in: Decimal = ZERO  # absolute quantity that entered
    entry_value: Decimal = ZERO
    exited: Decimal = ZERO
    exit_value: Decimal = ZERO
    commission: Decimal = ZERO
    exit_time: datetime | None = None
    fills: list[str] = field(default_factory=list)

    def close(self) -> RoundTrip:
        sign = Decimal(1) if self.direction == "long" else Decimal(-1)
        entry = self.entry_value / self.bought_in
        exit_price = self.exit_value / self.exited if self.exited else None
        pnl = sign * (self.exit_value - self.entry_value) - self.commission if self.quantity == 0 else None
        return RoundTrip(
            symbol="",
            direction=self.direction,
            quantity=self.bought_in,
            entry_time=self.entry_time,
            entry_price=entry,
            exit_time=self.exit_time if self.quantity == 0 else None,
            exit_price=exit_price if self.quantity == 0 else None,
            commission=self.commission,
            pnl=pnl,
        )


def round_trips(fills: Sequence[TradeEvent]) -> list[RoundTrip]:
    """Round trips in the order they were opened; still-open ones last in their symbol with ``pnl=None``."""
    open_: dict[str, _Open] = {}
    done: list[tuple[str, RoundTrip]] = []
    for fill in sorted(fills, key=lambda f: (f.filled_at, f.symbol, str(f.trade_id))):
        remaining = fill.quantity
        direction = "long" if fill.side == "buy" else "short"
        while remaining > 0:
            trip = open_.get(fill.symbol)
            share = fill.commission * remaining / fill.quantity
            if trip is None or trip.direction == direction:
                if trip is None:
                    trip = open_[fill.symbol] = _Open(direction, fill.filled_at)
                trip.quantity += remaining
                trip.bought_in += remaining
                trip.entry_value += remaining * fill.price
                trip.commission += share
                remaining = ZERO
                continue
            used = min(remaining, trip.quantity)
            part = fill.commission * used / fill.quantity
            trip.quantity -= used
            trip.exited += used
            trip.exit_value += used * fill.price
            trip.commission += part
            trip.exit_time = fill.filled_at
            remaining -= used
            if trip.quantity == 0:
                done.append((fill.symbol, trip.close()))
                del open_[fill.symbol]
    done.extend((symbol, trip.close()) for symbol, trip in open_.items())
    return [
        RoundTrip(
            symbol,
            t.direction,
            t.quantity,
            t.entry_time,
            t.entry_price,
            t.exit_time,
            t.exit_price,
            t.commission,
            t.pnl,
        )
        for symbol, t in sorted(done, key=lambda item: (item[1].entry_time, item[0]))
    ]
