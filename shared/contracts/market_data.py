"""Market data: OHLCV bars."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from shared.contracts.common import Interval, Symbol
from shared.contracts.envelope import Event, UtcDatetime
from shared.contracts.subjects import bar_subject


class OHLCVBar(Event):
    """One bar of one symbol. ``timestamp`` is the bar's open time (UTC); ``occurred_at`` equals it."""

    SCHEMA: ClassVar[str] = "bastion.md.bar"
    VERSION: ClassVar[str] = "1.0"

    symbol: Symbol
    interval: Interval
    timestamp: UtcDatetime
    open: float = Field(gt=0)
    high: float = Field(gt=0)
    low: float = Field(gt=0)
    close: float = Field(gt=0)
    volume: float = Field(ge=0)
    source: str = Field(min_length=1, max_length=128, description="synthetic, file:<name> or broker:<name>")

    @model_validator(mode="after")
    def _check_ohlc(self) -> Self:
        if self.high < max(self.open, self.close, self.low):
            raise ValueError("high must be >= open, close and low")
        if self.low > min(self.open, self.close):
            raise ValueError("low must be <= open and close")
        return self

    @staticmethod
    def key_for(symbol: str, interval: str, timestamp_iso: str) -> str:
        """The cause key of a bar: the same symbol, interval and time always give the same event id."""
        return f"{symbol}|{interval}|{timestamp_iso}"

    def subject(self) -> str:
        return bar_subject(self.symbol)
