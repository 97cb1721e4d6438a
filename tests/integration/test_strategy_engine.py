"""The worker's per-symbol join, state store and outbox, with the state in a real ``STRATEGY_STATE``-style KV
bucket on a real nats-server (one bucket per replayed run). Signals are collected from the engine's publish
hook; tests/integration/test_strategy_worker.py runs the whole worker with its JetStream publisher."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NATS

from services.strategy.adapters.nats_kv import KvStates, bucket
from services.strategy.config import Instance, parse_config
from services.strategy.domain.book import SymbolBook
from services.strategy.handlers import NotOwner, StateConflict, StrategyEngine
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import SignalEvent
from tests.support.plugins import BAD_CLOSE, FailsOnBar, FailsOnBarParams
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


async def states(nc: NATS, name: str) -> KvStates:
    """The state store over bucket ``name`` (created on first use, then kept: a reopened worker's view)."""
    return KvStates(await bucket(nc.jetstream(), name))


def bucket_name(path: Path) -> str:
    return "STATE_" + "".join(c if c.isalnum() else "_" for c in str(path))[-200:]


async def replay(nc: NATS, path: Path, events: Sequence[OHLCVBar | InsightEvent]) -> list[bytes]:
    """Feed ``events`` to a fresh engine over the state bucket named after ``path`` (kept between calls)."""
    out = Outbox()
    engine = StrategyEngine(parse_config(CONFIG), await states(nc, bucket_name(path)), out)
    for e in events:
        if isinstance(e, OHLCVBar):
            await engine.on_bars(e.symbol, [e])
        else:
            await engine.on_insights(e.insight.symbol, [e])
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


@pytest.fixture
async def reference(nc: NATS, tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    signals = await replay(nc, tmp_path_factory.mktemp("ref"), EVENTS)
    assert signals  # the feed does produce signals
    return signals


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=interleavings())
async def test_signals_do_not_depend_on_how_bars_and_insights_interleave(
    nc: NATS,
    tmp_path_factory: pytest.TempPathFactory,
    reference: list[bytes],
    order: list[OHLCVBar | InsightEvent],
) -> None:
    assert await replay(nc, tmp_path_factory.mktemp("any"), order) == reference


async def test_redelivered_bars_and_insights_change_nothing(nc: NATS, tmp_path: Path) -> None:
    once = await replay(nc, tmp_path / "a", EVENTS)
    twice = await replay(nc, tmp_path / "b", list(itertools.chain(*zip(EVENTS, EVENTS, strict=True))))
    assert twice == once


async def test_bars_wait_for_their_insight_and_are_kept_across_a_reopen(nc: NATS, tmp_path: Path) -> None:
    bars_ = [e for e in EVENTS if isinstance(e, OHLCVBar)]
    insights = [e for e in EVENTS if isinstance(e, InsightEvent)]
    first = await replay(nc, tmp_path / "s", bars_)  # insights not there yet: only sma signals
    assert first
    assert {SignalEvent.from_json(s).strategy_id for s in first} == {"sma"}
    rest = await replay(nc, tmp_path / "s", insights)  # reopened: the buffered bars meet their insights
    assert {SignalEvent.from_json(s).strategy_id for s in rest} == {"cc"}
    assert sorted(first + rest) == await replay(nc, tmp_path / "ref", EVENTS)


async def test_a_worker_that_lost_the_symbol_cannot_overwrite_the_new_owners_state(nc: NATS) -> None:
    store = await states(nc, "STATE")
    bars_ = [e for e in EVENTS if isinstance(e, OHLCVBar)]
    old = StrategyEngine(parse_config(CONFIG), store, Outbox())
    new = StrategyEngine(parse_config(CONFIG), store, Outbox())
    await old.on_bars("INFY", bars_[:3])
    await new.on_bars("INFY", bars_[3:6])  # the new owner loaded the old one's state and moved on
    before = await store.load("INFY")
    with pytest.raises(StateConflict):
        await old.on_bars("INFY", bars_[6:8])  # stale revision: refused
    assert await store.load("INFY") == before


async def test_the_next_owner_republishes_only_the_outbox_tail_missing_from_the_stream(nc: NATS) -> None:
    store = await states(nc, "STATE")
    reached: list[SignalEvent] = []

    async def dies_mid_publish(signals: Sequence[SignalEvent]) -> None:
        reached.extend(signals[:1])  # the first signal reached the stream, then the worker died
        raise ConnectionError("killed")

    dead = StrategyEngine(parse_config(CONFIG), store, dies_mid_publish)
    with pytest.raises(ConnectionError):
        await dead.on_bars("INFY", [e for e in EVENTS if isinstance(e, OHLCVBar)])
    outbox = SymbolBook.from_json(await saved(store, "INFY")).outbox
    assert len(outbox) >= 2  # state written with several signals...
    assert reached == outbox[:1]  # ...and the publish cut short

    async def last(_symbol: str) -> str | None:
        return str(reached[-1].event_id)

    heir_out = Outbox()
    heir = StrategyEngine(parse_config(CONFIG), store, heir_out, last_published=last)
    await heir.acquire("INFY")
    assert heir_out.sent == outbox[1:]


async def test_a_symbol_is_claimed_by_one_worker_and_the_old_owner_stops_when_it_is_taken_over(
    nc: NATS,
) -> None:
    store = await states(nc, "STATE")
    bars_ = [e for e in EVENTS if isinstance(e, OHLCVBar)]
    lost: list[str] = []
    old = StrategyEngine(parse_config(CONFIG), store, Outbox(), owner="w1/a", on_lost=lost.append)
    new = StrategyEngine(parse_config(CONFIG), store, Outbox(), owner="w2/b")

    async def held(_owner: str, _symbol: str) -> bool:
        return True

    async def free(_owner: str, _symbol: str) -> bool:
        return False

    assert await old.claim("INFY", held)  # nobody owned it
    await old.on_bars("INFY", bars_[:4])
    assert not await new.claim("INFY", held)  # w1's live lease holds it
    assert await new.claim("INFY", free)  # w1 released it (or died)
    await new.on_bars("INFY", bars_[4:8])
    with pytest.raises(StateConflict):
        await old.on_bars("INFY", bars_[4:8])  # its cached revision is stale: fenced
    with pytest.raises(NotOwner):
        await old.on_bars("INFY", bars_[4:8])  # reloaded: someone else's claim
    assert lost == ["INFY"]
    assert SymbolBook.from_json(await saved(store, "INFY")).owner == "w2/b"


async def saved(store: KvStates, symbol: str) -> bytes:
    """The bytes stored for ``symbol`` now, read back from the bucket."""
    value, _ = await store.load(symbol)
    assert value is not None
    return value


async def test_a_strategy_that_raises_loses_no_signal_of_the_others_on_its_symbol(nc: NATS) -> None:
    """sma runs before the failing instance: the failed batch must not be half kept. Its retry fails
    again (nothing of the first try was kept), so the consumer dead-letters the batch's poison bar
    rather than acking the batch with sma's signals unpublished."""
    store = await states(nc, "STATE")
    sma = parse_config({"instances": [CONFIG["instances"][0]]})
    instances = [*sma, Instance(FailsOnBar("bug", FailsOnBarParams()), "*")]
    out = Outbox()
    engine = StrategyEngine(instances, store, out)
    bars_ = [e for e in EVENTS if isinstance(e, OHLCVBar)]
    before = await store.load("INFY")
    for _attempt in range(3):  # the consumer's retries of the same batch
        with pytest.raises(ZeroDivisionError):
            await engine.on_bars("INFY", bars_)
    assert out.sent == []
    assert await store.load("INFY") == before  # nothing of the failed batch was written

    alone = Outbox()  # what sma publishes for the bars before the poison one, as the isolated retry does
    clean = StrategyEngine(sma, await states(nc, "CLEAN"), alone)
    first_bad = next(i for i, b in enumerate(bars_) if b.close == BAD_CLOSE)
    await clean.on_bars("INFY", bars_[:first_bad])
    for b in bars_[:first_bad]:
        await engine.on_bars("INFY", [b])
    assert alone.sent  # sma does signal before the poison bar
    assert [s.to_json() for s in out.sent] == [s.to_json() for s in alone.sent]
