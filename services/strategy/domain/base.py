"""The strategy interface: a pure function of (bar, insight, context) to (decision, new state).

Strategies return intent only (target direction, strength, reason); the worker turns a decision into a
``SignalEvent``. State is a JSON-serialisable ``dict`` the worker persists and hands back on the next bar,
so a strategy keeps nothing on ``self`` between bars and two instances fed the same input agree.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Generic, TypeVar

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


class BaseStrategy(ABC, Generic[P]):
    """A named, parameterised strategy. Subclasses set ``name``, ``params_model`` and implement ``on_bar``.

    ``requires_insights``: when true the worker waits for the insight of each bar before calling
    ``on_bar`` and always passes it; when false it always passes None, so a price-only strategy's output
    never depends on whether the insight happened to arrive before its bar.
    """

    name: ClassVar[str]
    params_model: ClassVar[type[StrategyParams]]
    requires_insights: ClassVar[bool] = False
    description: ClassVar[str] = ""

    def __init__(self, instance_id: str, params: P) -> None:
        self.instance_id = instance_id
        self.params: P = params

    @abstractmethod
    def on_bar(self, bar: OHLCVBar, insight: InsightEvent | None, ctx: StrategyContext) -> StrategyResult:
        """Decide on ``bar``; return (decision or None, new state). Must not mutate ``ctx``."""

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


def mean(values: list[float]) -> float:
    return sum(values) / len(values)
