"""Insights are built without validating again (``confluence._component``, ``evaluate``, ``build_insight``);
each must be exactly what validation gives: equal, same JSON bytes, same types of every value, nested too.
What does not hold the contract's checks still goes through validation and fails as before."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from services.analytics.domain.confluence import ConfluenceConfig, evaluate
from services.analytics.domain.indicators import INDICATOR_NAMES, IndicatorSet
from services.analytics.domain.insight import BarRow, build_insight
from shared.contracts.analytics import ConfluenceInsight, InsightEvent
from tests.unit.analytics.support import bars


def revalidated(value: Any) -> Any:
    """``value`` rebuilt through pydantic validation, nested models and tuples included."""
    if isinstance(value, BaseModel):
        return type(value)(**{n: revalidated(getattr(value, n)) for n in type(value).model_fields})
    if isinstance(value, tuple):
        return tuple(revalidated(v) for v in value)
    return value


def same_types(mine: Any, theirs: Any, where: str) -> None:
    assert type(mine) is type(theirs), where
    if isinstance(mine, BaseModel):
        for name in type(mine).model_fields:
            same_types(getattr(mine, name), getattr(theirs, name), f"{where}.{name}")
    elif isinstance(mine, tuple | list):
        for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            same_types(a, b, f"{where}[{i}]")
    elif isinstance(mine, dict):
        assert list(mine) == list(theirs), where
        for key in mine:
            same_types(mine[key], theirs[key], f"{where}[{key}]")
    else:
        assert repr(mine) == repr(theirs), where


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_insight_is_what_validation_would_have_built(seed: int) -> None:
    cfg, indicators = ConfluenceConfig(), IndicatorSet()
    regimes, biases = set(), set()
    for bar in bars("INFY", 600, seed=seed):
        values = indicators.update(bar.high, bar.low, bar.close)
        event = build_insight(BarRow.of(bar), values, cfg)
        again = revalidated(event)
        assert again == event
        assert again.to_json() == event.to_json()
        same_types(event, again, "insight")
        regimes.add(event.insight.regime)
        biases.add(event.insight.bias)
    assert len(biases) == 3  # warm-up, and insights of every kind, were compared
    assert len(regimes) >= 2


AT = datetime(2024, 1, 2, 9, 15, tzinfo=UTC)
WARM: dict[str, float | None] = {name: None for name in INDICATOR_NAMES}


def test_a_time_in_another_utc_object_is_validated_to_utc() -> None:
    other = AT.astimezone(timezone(timedelta(0)))
    insight = evaluate("INFY", "1m", other, 100.0, WARM, ConfluenceConfig())
    assert insight.as_of.tzinfo is UTC
    assert insight == evaluate("INFY", "1m", AT, 100.0, WARM, ConfluenceConfig())


def test_a_bad_symbol_or_a_non_finite_value_still_fails_validation() -> None:
    with pytest.raises(ValidationError):
        evaluate("not a symbol!", "1m", AT, 100.0, WARM, ConfluenceConfig())
    with pytest.raises(ValidationError):
        evaluate("INFY", "1 minute", AT, 100.0, WARM, ConfluenceConfig())
    hot = {**WARM, "atr_14": math.inf}
    with pytest.raises(ValidationError):
        evaluate("INFY", "1m", AT, 100.0, hot, ConfluenceConfig())
    bar = bars("INFY", 1)[0]
    with pytest.raises(ValidationError):
        build_insight(BarRow.of(bar), {**WARM, "sma_20": math.inf}, ConfluenceConfig())


def test_insights_are_validated_models_of_their_contract() -> None:
    event = build_insight(BarRow.of(bars("INFY", 1)[0]), WARM, ConfluenceConfig())
    assert type(event) is InsightEvent
    assert type(event.insight) is ConfluenceInsight
    assert InsightEvent.from_json(event.to_json()) == event
