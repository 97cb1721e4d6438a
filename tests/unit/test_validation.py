"""``shared.validation.readable``: pydantic's errors as one line a user can read, without pydantic's own
wording around a validator's message (its "Value error, " prefix, links and input dumps)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from services.strategy.config import parse_config
from services.strategy.domain.registry import StrategyConfigError, create_strategy
from shared.validation import readable


class Order(BaseModel):
    quantity: int = Field(gt=0)
    side: str

    @field_validator("side")
    @classmethod
    def _side(cls, value: str) -> str:
        if value not in ("buy", "sell"):
            raise ValueError(f"side must be buy or sell, not {value!r}")
        return value

    @model_validator(mode="after")
    def _small(self) -> Order:
        if self.quantity >= 1000:
            raise ValueError("at most 999 units")
        return self


def error(**values: object) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        Order.model_validate(values)
    return info.value


def test_each_field_is_named_with_its_message_alone() -> None:
    assert readable(error(quantity=0, side="hold")) == (
        "quantity: Input should be greater than 0; side: side must be buy or sell, not 'hold'"
    )


def test_an_error_about_the_whole_input_is_named_as_asked_or_is_its_message_alone() -> None:
    whole = error(quantity=5000, side="buy")
    assert readable(whole) == "value: at most 999 units"
    assert readable(whole, whole="order") == "order: at most 999 units"
    assert readable(whole, whole="") == "at most 999 units"


def test_a_strategys_cross_param_rule_reads_as_one_sentence() -> None:
    with pytest.raises(StrategyConfigError) as info:
        create_strategy("sma_cross", "i", {"fast": 30, "slow": 10})
    assert str(info.value) == "bad params for strategy 'sma_cross': fast (30) must be smaller than slow (10)"


def test_a_config_rule_names_where_it_failed() -> None:
    data = {"instances": [{"name": "sma_cross", "id": "a"}, {"name": "ehma_pivot", "id": "a"}]}
    with pytest.raises(StrategyConfigError) as info:
        parse_config(data)
    assert str(info.value) == "bad strategies config: instances: duplicate instance id(s): a"


def test_a_list_of_bad_items_is_not_also_too_short_but_an_empty_one_is() -> None:
    with pytest.raises(StrategyConfigError) as bad:
        parse_config({"instances": [{"id": "a", "strategy": "sma_cross"}]})
    assert str(bad.value) == (
        "bad strategies config: instances.0: unknown key(s) 'strategy': an instance takes name, id, params"
        " and symbols (the strategy goes in 'name')"
    )
    with pytest.raises(StrategyConfigError) as empty:
        parse_config({"instances": []})
    assert "instances: Tuple should have at least 1 item" in str(empty.value)
