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


def test_bars_redelivered_while_they_wait_for_insights_are_kept_once_and_run_once() -> None:
    """Bars ahead of their insights wait in the book; a redelivery of them (also after a JSON round trip,
    i.e. in another worker) adds nothing, so each bar is run once when its insight arrives."""
    bars_ = [bar(i, float(c)) for i, c in enumerate(CLOSES)]
    insights = [
        insight(b, bias="bullish" if i % 4 < 2 else "bearish", confidence=0.9) for i, b in enumerate(bars_)
    ]
    cc = strategies()[1:]
    plain = SymbolBook("INFY")
    plain.apply(cc, bars_)
    want = plain.apply(cc, (), insights) or []

    book = SymbolBook("INFY")
    book.apply(cc, bars_[:8])
    assert book.apply(cc, bars_[2:6]) is None  # waiting already: nothing changes
    book = SymbolBook.from_json(book.to_json())
    book.apply(cc, bars_)
    assert [b.event_id for b in book.bars] == [b.event_id for b in bars_]
    got = book.apply(cc, (), insights) or []
    assert want
    assert [s.to_json() for s in got] == [s.to_json() for s in want]
    assert book.bars == []
    assert book.apply(cc, bars_[-3:]) is None  # done: a late redelivery is skipped too
