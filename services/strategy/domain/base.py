"""The strategy interface: a pure function of (bars, insights, context) to (decisions, new state).

Strategies return intent only (target direction, strength, reason); the worker turns a decision into a
``SignalEvent``. State is a JSON-serialisable ``dict`` the worker persists and hands back on the next bar,
so a strategy keeps nothing on ``self`` between bars and two instances fed the same input agree.

A strategy implements one of two methods, and the base class derives the other from it:

* ``on_bar(bar, insight, ctx)``: one bar at a time (the base's ``on_bars`` calls it bar by bar);
* ``on_bars(bars, insights, ctx)``: consecutive bars of one symbol at once, as columns (``BarBatch``), for
  rules that are cheaper over arrays. The base's ``on_bar`` calls it with a batch of one bar.

Whichever it implements is the only code that decides: the worker calls ``on_bars`` with the bars it can run
(one at a time when live, hundreds after a backlog) and ``bastion backtest`` with the whole history, so an
``on_bars`` must decide the same whatever the batches (``tests/unit/strategy/test_batches.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import Target

#: A strategy's own state: JSON-serialisable (str, int, float, bool, None, lists and dicts of those).
StrategyState = dict[str, Any]


class StrategyParams(BaseModel):
    """Base of every strategy's params model: frozen, unknown params are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


P = TypeVar("P", bound=StrategyParams)


@dataclass(frozen=True, slots=True)
class SignalDecision:
    """What a strategy wants: a target direction, how strongly (0..1) and why. No quantity, no price."""

    target: Target
    strength: float
    reason: str

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {self.strength}")


@dataclass(frozen=True, slots=True)
class StrategyContext:
    """Read-only view of one strategy instance on one symbol when a bar arrives."""

    symbol: str
    strategy_id: str
    target: Target = "flat"
    state: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", MappingProxyType(dict(self.state)))


#: What ``on_bar`` returns: the decision (None: nothing to say) and the state to keep.
StrategyResult = tuple[SignalDecision | None, StrategyState]

#: What ``on_bars`` returns: the decisions as (index of the bar in the batch, decision), in bar order, and
#: the state to keep after the batch's last bar.
BatchResult = tuple[list[tuple[int, SignalDecision]], StrategyState]

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class BarBatch:
    """Consecutive bars of one symbol, in time order: the price columns, and each bar as its event.

    ``bar(i)`` is the i-th ``OHLCVBar``; a batch made from columns (``bastion backtest``) builds it only when
    asked, so a rule that reads only the columns never pays for events it does not need."""

    symbol: str
    open: Floats
    high: Floats
    low: Floats
    close: Floats
    volume: Floats
    bar: Callable[[int], OHLCVBar]

    def __len__(self) -> int:
        return len(self.close)

    @classmethod
    def of(cls, bars: Sequence[OHLCVBar]) -> BarBatch:
        """A batch of bar events (all of one symbol, in time order)."""
        events = list(bars)

        def column(name: str) -> Floats:
            return np.fromiter((getattr(b, name) for b in events), np.float64, len(events))

        symbol = events[0].symbol if events else ""
        o, h, lo, c, v = (column(n) for n in ("open", "high", "low", "close", "volume"))
        return cls(symbol, o, h, lo, c, v, events.__getitem__)


class BaseStrategy(Generic[P]):
    """A named, parameterised strategy. Subclasses set ``name``, ``params_model`` and implement ``on_bar``
    or ``on_bars`` (see the module docstring).

    ``requires_insights``: when true the worker waits for the insight of each bar before calling
    ``on_bar`` and always passes it; when false it always passes None, so a price-only strategy's output
    never depends on whether the insight happened to arrive before its bar.
    """

    name: ClassVar[str]
    params_model: ClassVar[type[StrategyParams]]
    requires_insights: ClassVar[bool] = False
    description: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        inherits_both = cls.on_bar is BaseStrategy.on_bar and cls.on_bars is BaseStrategy.on_bars
        if inherits_both and getattr(cls, "name", None) is not None:
            raise TypeError(f"strategy {cls.__name__} must implement on_bar or on_bars")

    def __init__(self, instance_id: str, params: P) -> None:
        self.instance_id = instance_id
        self.params: P = params

    def on_bar(self, bar: OHLCVBar, insight: InsightEvent | None, ctx: StrategyContext) -> StrategyResult:
        """Decide on ``bar``; return (decision or None, new state). Must not mutate ``ctx``."""
        decisions, state = self.on_bars(BarBatch.of([bar]), None if insight is None else [insight], ctx)
        return (decisions[0][1] if decisions else None), state

    def on_bars(
        self, bars: BarBatch, insights: Sequence[InsightEvent] | None, ctx: StrategyContext
    ) -> BatchResult:
        """Decide on each bar of ``bars`` in turn, as ``on_bar`` would with the target and state each bar
        leaves; ``insights[i]`` is bar i's insight (None unless ``requires_insights``)."""
        decisions: list[tuple[int, SignalDecision]] = []
        target, state = ctx.target, ctx.state
        for index in range(len(bars)):
            insight = insights[index] if insights is not None else None
            view = StrategyContext(ctx.symbol, ctx.strategy_id, target, state)
            decision, state = self.on_bar(bars.bar(index), insight, view)
            if decision is not None:
                decisions.append((index, decision))
                target = decision.target
        return decisions, dict(state)

    def change_to(
        self, ctx: StrategyContext, target: Target, strength: float, reason: str
    ) -> SignalDecision | None:
        """A decision for ``target``, or None when the strategy is already there (signals only on change)."""
        if target == ctx.target:
            return None
        return SignalDecision(target=target, strength=round(min(max(strength, 0.0), 1.0), 6), reason=reason)


class ShortableParams(StrategyParams):
    """Shared param: whether a bearish signal may go short (otherwise it goes flat)."""

    allow_short: bool = Field(default=False, description="Go short on a bearish signal instead of flat")


def bearish_target(allow_short: bool) -> Target:
    return "short" if allow_short else "flat"


def push(window: Sequence[float], value: float, size: int) -> list[float]:
    """A new list: ``window`` with ``value`` appended, keeping the last ``size`` items (what
    ``[*window, value][-size:]`` gives, with one list built instead of two). ``window`` is left as it is,
    so a strategy may pass the list held in its (read-only) state without copying it first."""
    out = [*window, value]
    del out[:-size]
    return out


def window_sums(values: Floats, size: int, first: int) -> Floats:
    """``out[k]`` = the sum of ``values[j - size + 1 : j + 1]`` for ``j = first + k`` (every j from ``first``
    on; ``first >= size - 1``), added left to right one value at a time from the window's first value: each
    sum is exactly the float that loop gives, whatever ``first`` and the array's length.
    So a rule built on it decides the same on a batch of one bar and on a whole history.

    Two loop orders give those same additions: over the window's positions, each step one vector
    addition over all the sums (the cheaper when there are more sums than window positions), or over the
    sums, each a running total (``cumsum``, sequential) over its window."""
    rows = len(values) - first
    if rows <= 0:
        return np.empty(0, np.float64)
    start = first - size + 1
    if rows >= size:
        total = values[start : start + rows].copy()
        for offset in range(1, size):
            total += values[start + offset : start + offset + rows]
        return total
    return np.array([np.cumsum(values[j - size + 1 : j + 1])[-1] for j in range(first, len(values))])
