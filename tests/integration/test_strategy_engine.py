"""The worker's join and outbox against a real DuckDB file, with a fake publisher instead of NATS."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.strategy.adapters.store import StrategyStore
from services.strategy.config import parse_config
from services.strategy.handlers import StrategyEngine
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import SignalEvent
from tests.unit.strategy.helpers import bar, insight

CONFIG = {
    "instances": [
        {"name": "sma_cross", "id": "sma", "params": {"fast": 2, "slow": 4}},
        {"name": "confluence_consumer", "id": "cc", "symbols": ["INFY"]},
    ]
}
CLOSES = [10, 10, 10, 10, 12, 14, 14, 10, 8, 8, 12, 14]
BIASES = ["bullish", "bullish", "bearish", "neutral", "bullish", "bearish"] * 2
EVENTS: list[OHLCVBar | InsightEvent] = []
for _i, _c in enumerate(CLOSES):
    _b = bar(_i, float(_c))
    EVENTS += [_b, insight(_b, bias=BIASES[_i], confidence=0.8)]  # type: ignore[arg-type]


class Outbox:
    def __init__(self) -> None:
        self.sent: list[SignalEvent] = []

    async def __call__(self, signals: Sequence[SignalEvent]) -> None:
        self.sent.extend(signals)


async def replay(path: Path, events: Sequence[OHLCVBar | InsightEvent]) -> list[bytes]:
    store = StrategyStore.open(path)
    out = Outbox()
    engine = StrategyEngine(store, parse_config(CONFIG), out)
    for e in events:
        if isinstance(e, OHLCVBar):
            await engine.on_bars([e])
        else:
            await engine.on_insights([e])
    store.close()
    return sorted(s.to_json() for s in out.sent)


def interleavings() -> st.SearchStrategy[list[OHLCVBar | InsightEvent]]:
    """Bars in order, insights in order, the two streams merged in any way."""
    bars_ = [e for e in EVENTS if isinstance(e, OHLCVBar)]
    insights = [e for e in EVENTS if isinstance(e, InsightEvent)]

    def merge(picks: list[bool]) -> list[OHLCVBar | InsightEvent]:
        b, i, out = iter(bars_), iter(insights), []
        for take_bar in picks:
            out.append(next(b, None) if take_bar else next(i, None))
        out += list(b) + list(i)
        return [e for e in out if e is not None]

    return st.lists(st.booleans(), max_size=2 * len(bars_)).map(merge)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    signals = asyncio.run(replay(tmp_path_factory.mktemp("ref") / "s.duckdb", EVENTS))
    assert signals  # the feed does produce signals
    return signals


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=interleavings())
async def test_signals_do_not_depend_on_how_bars_and_insights_interleave(
    tmp_path_factory: pytest.TempPathFactory, reference: list[bytes], order: list[OHLCVBar | InsightEvent]
) -> None:
    assert await replay(tmp_path_factory.mktemp("any") / "s.duckdb", order) == reference


async def test_redelivered_bars_and_insights_change_nothing(tmp_path: Path) -> None:
    once = await replay(tmp_path / "a.duckdb", EVENTS)
    twice = await replay(tmp_path / "b.duckdb", list(itertools.chain(*zip(EVENTS, EVENTS, strict=True))))
    assert twice == once


async def test_bars_wait_for_their_insight_and_are_kept_across_a_reopen(tmp_path: Path) -> None:
    bars_ = [e for e in EVENTS if isinstance(e, OHLCVBar)]
    insights = [e for e in EVENTS if isinstance(e, InsightEvent)]
    first = await replay(tmp_path / "s.duckdb", bars_)  # insights not there yet: only sma signals
    assert first
    assert {SignalEvent.from_json(s).strategy_id for s in first} == {"sma"}
    rest = await replay(tmp_path / "s.duckdb", insights)  # reopened: the buffered bars meet their insights
    assert {SignalEvent.from_json(s).strategy_id for s in rest} == {"cc"}
    assert sorted(first + rest) == await replay(tmp_path / "ref.duckdb", EVENTS)
