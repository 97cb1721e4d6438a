"""A symbol's book survives serialisation exactly, so any worker can continue it."""

from __future__ import annotations

from typing import Any

import pytest

from services.strategy.config import parse_config
from services.strategy.domain.base import BaseStrategy
from services.strategy.domain.book import SymbolBook
from tests.unit.strategy.helpers import bar, insight

CONFIG = {
    "instances": [
        {"name": "sma_cross", "id": "sma", "params": {"fast": 2, "slow": 4}},
        {"name": "confluence_consumer", "id": "cc"},
    ]
}
CLOSES = [10, 10, 10, 10, 12, 14, 14, 10, 8, 8, 12, 14]


def strategies() -> list[BaseStrategy[Any]]:
    return [i.strategy for i in parse_config(CONFIG)]


def test_a_book_continued_after_a_json_round_trip_gives_the_same_signals() -> None:
    bars_ = [bar(i, float(c)) for i, c in enumerate(CLOSES)]
    insights = [insight(b, bias="bullish", confidence=0.9) for b in bars_]
    whole = SymbolBook("INFY")
    one_go = whole.apply(strategies(), bars_, insights[:6]) or []
    one_go += whole.apply(strategies(), (), insights[6:]) or []

    split = SymbolBook("INFY")
    first = split.apply(strategies(), bars_, insights[:6]) or []
    moved = SymbolBook.from_json(split.to_json())  # another worker takes over
    assert moved.to_json() == split.to_json()
    rest = moved.apply(strategies(), (), insights[6:]) or []
    assert [s.to_json() for s in first + rest] == [s.to_json() for s in one_go]
    assert {s.strategy_id for s in one_go} == {"sma", "cc"}


def test_redelivered_inputs_change_nothing() -> None:
    bars_ = [bar(i, float(c)) for i, c in enumerate(CLOSES)]
    book = SymbolBook("INFY")
    book.apply(strategies()[:1], bars_)
    assert book.apply(strategies()[:1], bars_[3:5]) is None


def test_an_unknown_book_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        SymbolBook.from_json(b'{"format": 99}')
