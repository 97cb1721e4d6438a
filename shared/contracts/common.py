"""Field types shared by several contract families."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from shared.contracts.subjects import normalize_symbol

#: A symbol under the rule of ``shared.contracts.subjects``; upper-cased on the way in.
Symbol = Annotated[str, AfterValidator(normalize_symbol)]

#: Bar interval: a number and a unit (s, m, h, d, w), e.g. 1m, 5m, 1h, 1d.
Interval = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,3}[smhdw]$")]

#: Money, price or quantity: exact decimal, serialised as a string.
Money = Annotated[Decimal, Field(allow_inf_nan=False)]
Quantity = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]

Side = Literal["buy", "sell"]
ExecutionMode = Literal["dry_run", "paper", "live"]
TradingState = Literal["ACTIVE", "REDUCING", "HALTED"]
