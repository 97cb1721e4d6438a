"""The strategy registry: built-ins plus third-party strategies from the ``bastion.strategies`` entry points.

A third-party package registers ``name = "package.module:StrategyClass"`` under the entry-point group
``bastion.strategies``; the class must subclass ``BaseStrategy``. Built-in names cannot be overridden.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from services.strategy.domain.base import BaseStrategy
from services.strategy.domain.strategies.confluence_consumer import ConfluenceConsumer
from services.strategy.domain.strategies.ehma_pivot import EhmaPivot
from services.strategy.domain.strategies.regime_adaptive import RegimeAdaptive
from services.strategy.domain.strategies.sma_cross import SmaCross
from shared.validation import readable

ENTRY_POINT_GROUP = "bastion.strategies"
BUILTINS: tuple[type[BaseStrategy[Any]], ...] = (SmaCross, EhmaPivot, ConfluenceConsumer, RegimeAdaptive)


class StrategyConfigError(ValueError):
    """An unknown strategy or bad params; the message names the strategy and the param."""


@dataclass(frozen=True, slots=True)
class ParamInfo:
    name: str
    type: str
    default: Any
    description: str


def _third_party() -> dict[str, type[BaseStrategy[Any]]]:
    found: dict[str, type[BaseStrategy[Any]]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # report which plugin broke, not a bare traceback
            raise StrategyConfigError(
                f"strategy plugin {ep.name!r} ({ep.value}) failed to load: {exc}"
            ) from exc
        if not (isinstance(cls, type) and issubclass(cls, BaseStrategy)):
            raise StrategyConfigError(
                f"strategy plugin {ep.name!r} ({ep.value}) is not a BaseStrategy subclass"
            )
        found[ep.name] = cls
    return found


def available() -> dict[str, type[BaseStrategy[Any]]]:
    """Every strategy by name, sorted; built-ins win over a plugin of the same name."""
    table = {**_third_party(), **{cls.name: cls for cls in BUILTINS}}
    return dict(sorted(table.items()))


def strategy_class(name: str) -> type[BaseStrategy[Any]]:
    table = available()
    if name not in table:
        raise StrategyConfigError(f"unknown strategy {name!r}; known: {', '.join(table)}")
    return table[name]


def _param_error(name: str, exc: ValidationError) -> StrategyConfigError:
    return StrategyConfigError(f"bad params for strategy {name!r}: {readable(exc, whole='')}")


def create_strategy(
    name: str, instance_id: str, params: Mapping[str, Any] | None = None
) -> BaseStrategy[Any]:
    """An instance of strategy ``name`` with validated ``params`` (defaults fill the gaps)."""
    cls = strategy_class(name)
    if not instance_id or len(instance_id) > 64:
        raise StrategyConfigError(f"instance id for {name!r} must be 1-64 characters, got {instance_id!r}")
    try:
        validated = cls.params_model.model_validate(dict(params or {}))
    except ValidationError as exc:
        raise _param_error(name, exc) from None
    return cls(instance_id, validated)


def describe_params(cls: type[BaseStrategy[Any]]) -> list[ParamInfo]:
    """The params of a strategy with their types, defaults and descriptions, in declaration order."""
    infos = []
    for pname, f in cls.params_model.model_fields.items():
        ann = getattr(f.annotation, "__name__", str(f.annotation))
        infos.append(ParamInfo(pname, ann, f.get_default(call_default_factory=True), f.description or ""))
    return infos
