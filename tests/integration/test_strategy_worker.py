"""The strategy worker on a real nats-server: bars + insights in, signals out, state resumed after restart."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS

from services.strategy.__main__ import make_runner
from services.strategy.config import load_config
from services.strategy.domain.signals import build_signal
from shared.contracts.analytics import InsightEvent
from shared.contracts.health import DeadLetter
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import SignalEvent
from shared.runtime.bus import Bus
from shared.runtime.service import ServiceRunner
from shared.runtime.settings import RuntimeSettings
from tests.support.plugins import BAD_CLOSE, FAILS_ON_BAR, install_plugins
from tests.support.streams import stored_messages
from tests.support.wait import eventually
from tests.unit.strategy.helpers import bar, insight, run

CLOSES = [10, 10, 10, 10, 12, 14, 14, 10, 8, 8, 12, 14]
BIASES = ["neutral", "bullish", "bullish", "bullish", "bullish", "bearish"] * 2
CONFIG = """
instances:
  - {name: sma_cross, id: sma, params: {fast: 2, slow: 4}, symbols: "*"}
  - {name: confluence_consumer, id: cc, params: {min_confidence: 0.6}, symbols: [INFY, TCS]}
"""
SYMBOLS = ["INFY", "TCS", "WIPRO"]


def feed(symbol: str) -> list[tuple[OHLCVBar, InsightEvent]]:
    out = []
    for i, close in enumerate(CLOSES):
        b = bar(i, float(close), symbol)
        out.append((b, insight(b, bias=BIASES[i], confidence=0.7)))  # type: ignore[arg-type]
    return out


def expected(config: Path) -> set[bytes]:
    """The signals a single pure run gives: what the worker must publish, byte for byte."""
    signals: set[bytes] = set()
    for inst in load_config(config):
        for symbol in SYMBOLS:
            if not inst.runs_on(symbol):
                continue
            needs = inst.strategy.requires_insights
            rows = [(b, i if needs else None) for b, i in feed(symbol)]
            for i, decision in run(inst.strategy, rows):
                signals.add(build_signal(inst.strategy, rows[i][0], rows[i][1], decision).to_json())
    return signals


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "strategies.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    b = await Bus.connect(RuntimeSettings(service="feeder", nats_url=nats_url))
    await b.ensure_streams(["MARKETDATA", "ANALYTICS", "SIGNALS"])
    yield b
    await b.close()


class Worker:
    def __init__(self, nats_url: str, data_dir: Path, config: Path) -> None:
        settings = RuntimeSettings(service="strategy", nats_url=nats_url, data_dir=data_dir, instance="w0")
        self.runner: ServiceRunner = make_runner(settings, config, "w0")
        self.task = asyncio.create_task(self.runner.run())

    async def stop(self) -> None:
        self.runner.stop.set()
        assert await asyncio.wait_for(self.task, timeout=20) == 0


async def collect(nc: NATS, want: int) -> list[SignalEvent]:
    js = nc.jetstream()
    sub = await js.subscribe("strategy.v1.signal.>", stream="SIGNALS", ordered_consumer=True)
    got: list[SignalEvent] = []

    async def enough() -> bool:
        try:
            while True:
                got.append(SignalEvent.from_json((await sub.next_msg(timeout=0.05)).data))
        except Exception:
            return len(got) >= want

    await eventually(enough, timeout=20, what=f"{want} signals")
    await sub.unsubscribe()
    return got


async def publish(bus: Bus, rows: Sequence[tuple[OHLCVBar, InsightEvent]], insights_first: bool) -> None:
    bars_ = [(b.subject(), b) for b, _ in rows]
    insights = [(i.subject(), i) for _, i in rows]
    for batch in (insights, bars_) if insights_first else (bars_, insights):
        await bus.publish_many(batch)


def assert_per_symbol_order(signals: list[SignalEvent]) -> None:
    for key in {(s.symbol, s.strategy_id) for s in signals}:
        times = [s.bar_timestamp for s in signals if (s.symbol, s.strategy_id) == key]
        assert times == sorted(times), key


async def test_worker_turns_bars_and_insights_into_the_same_signals_as_a_pure_run(
    bus: Bus, nc: NATS, nats_url: str, tmp_path: Path, config: Path
) -> None:
    want = expected(config)
    worker = Worker(nats_url, tmp_path / "data", config)
    try:
        await publish(bus, feed("INFY"), insights_first=True)  # insights before their bars
        await publish(bus, feed("TCS"), insights_first=False)  # bars wait for their insights
        await publish(bus, feed("WIPRO"), insights_first=False)  # no insight-consuming instance here
        got = await collect(nc, len(want))
    finally:
        await worker.stop()
    assert sorted(s.to_json() for s in got) == sorted(want)
    assert_per_symbol_order(got)
    assert (tmp_path / "data" / "strategy-w0.duckdb").exists()


async def test_a_restarted_worker_resumes_its_state_without_losing_or_repeating_signals(
    bus: Bus, nc: NATS, nats_url: str, tmp_path: Path, config: Path
) -> None:
    want = expected(config)
    rows = {s: feed(s) for s in SYMBOLS}
    worker = Worker(nats_url, tmp_path / "data", config)
    try:
        for s in SYMBOLS:
            await publish(bus, rows[s][:6], insights_first=False)
        first = await collect(
            nc, sum(1 for w in want if SignalEvent.from_json(w).bar_timestamp < rows["INFY"][6][0].timestamp)
        )
    finally:
        await worker.stop()
    worker = Worker(nats_url, tmp_path / "data", config)
    try:
        for s in SYMBOLS:
            await publish(bus, rows[s][6:], insights_first=True)
        got = await collect(nc, len(want))
    finally:
        await worker.stop()
    assert first  # something was signalled before the restart
    assert sorted(s.to_json() for s in got) == sorted(want)  # the cross at bar 7 needs bars 4-6 from before
    info = await bus.js.stream_info("SIGNALS")
    assert info.state.messages == len(want)  # nothing published twice


async def test_a_strategy_that_raises_on_some_bars_dead_letters_them_and_the_worker_carries_on(
    bus: Bus, nc: NATS, nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's plugin with a bug on some bars (close 14): each such bar lands in ``dlq.v1.strategy`` with
    the error, the worker keeps running, and sma on the same symbol publishes exactly what a pure run over
    the other bars gives (nothing of a failed batch was half kept)."""
    install_plugins(tmp_path / "plugins", monkeypatch, FAILS_ON_BAR)
    config = tmp_path / "strategies.yaml"
    config.write_text(
        "instances:\n"
        "  - {name: sma_cross, id: sma, params: {fast: 2, slow: 4}, symbols: [INFY]}\n"
        "  - {name: fails_on_bar, id: bug, symbols: [INFY]}\n"
    )
    rows = feed("INFY")
    poison = [b for b, _ in rows if b.close == BAD_CLOSE]
    assert len(poison) >= 2
    sma = load_config(config)[0].strategy
    kept = [(b, None) for b, _ in rows if b.close != BAD_CLOSE]
    want = {build_signal(sma, kept[i][0], None, d).to_json() for i, d in run(sma, kept)}
    assert want

    await bus.ensure_streams(["DLQ"])
    worker = Worker(nats_url, tmp_path / "data", config)
    try:
        await bus.publish_many([(b.subject(), b) for b, _ in rows])

        async def dead_lettered() -> list[DeadLetter]:
            assert not worker.task.done(), "the worker stopped"
            letters = [DeadLetter.from_json(m.data) for m in await stored_messages(nc.jetstream(), "DLQ")]
            return letters if len(letters) >= len(poison) else []

        letters = await eventually(dead_lettered, timeout=60, what="the poison bars in the DLQ")
        got = await collect(nc, len(want))
        assert not worker.task.done()
    finally:
        await worker.stop()
    assert sorted(s.to_json() for s in got) == sorted(want)
    assert sorted(OHLCVBar.from_json(base64.b64decode(d.payload_b64)).event_id for d in letters) == sorted(
        b.event_id for b in poison
    )
    assert all(d.service == "strategy" and "ZeroDivisionError" in d.reason for d in letters), letters
