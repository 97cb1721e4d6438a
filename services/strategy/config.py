"""The worker's strategy config (``deploy/strategies.yaml``): which strategy instances run on which symbols.

Format::

    instances:
      - name: sma_cross          # a strategy in the registry (`bastion strategies list`)
        id: sma-10-30            # unique instance id, 1-64 chars; part of every signal's event id
        params: {fast: 10, slow: 30}
        symbols: "*"             # every symbol seen on the bus, or a list such as [INFY, TCS]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from services.strategy.domain import BaseStrategy
from services.strategy.domain.registry import StrategyConfigError, create_strategy
from shared.contracts.subjects import normalize_symbol
from shared.validation import readable


class InstanceConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    params: dict[str, Any] = Field(default_factory=dict)
    symbols: Literal["*"] | tuple[str, ...] = "*"

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            unknown = [str(k) for k in value if k not in cls.model_fields]
            if unknown:
                hint = " (the strategy goes in 'name')" if "strategy" in unknown else ""
                raise ValueError(
                    f"unknown key(s) {', '.join(map(repr, unknown))}: an instance takes name, id, params and"
                    f" symbols{hint}"
                )
        return value

    @field_validator("symbols", mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(normalize_symbol(str(s)) for s in value)
        return value


class StrategiesConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    instances: tuple[InstanceConfig, ...] = Field(min_length=1)

    @field_validator("instances")
    @classmethod
    def _unique_ids(cls, value: tuple[InstanceConfig, ...]) -> tuple[InstanceConfig, ...]:
        ids = [i.id for i in value]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate instance id(s): {', '.join(dupes)}")
        return value


@dataclass(frozen=True, slots=True)
class Instance:
    strategy: BaseStrategy[Any]
    symbols: Literal["*"] | tuple[str, ...]

    def runs_on(self, symbol: str) -> bool:
        return self.symbols == "*" or symbol in self.symbols


def parse_config(data: Any) -> list[Instance]:
    """Validated instances from parsed YAML; ``StrategyConfigError`` names what is wrong."""
    if not isinstance(data, dict):  # an empty file, a list, a CSV read as one string ...
        kinds = {type(None): "nothing", str: "plain text", list: "a list", int: "a number", float: "a number"}
        shown = kinds.get(type(data), f"a {type(data).__name__}")
        raise StrategyConfigError(
            "bad strategies config: expected a mapping with an 'instances:' list (as "
            f"deploy/strategies.yaml), got {shown}"
        )
    try:
        cfg = StrategiesConfig.model_validate(data)
    except ValidationError as exc:
        raise StrategyConfigError(f"bad strategies config: {readable(exc, whole='')}") from None
    return [Instance(create_strategy(i.name, i.id, i.params), i.symbols) for i in cfg.instances]


def load_config(path: Path) -> list[Instance]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise StrategyConfigError(f"cannot read strategies config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise StrategyConfigError(f"strategies config {path} is not valid YAML: {exc}") from None
    return parse_config(data)


def instances_for(instances: Sequence[Instance], symbol: str) -> list[Instance]:
    return [i for i in instances if i.runs_on(symbol)]
