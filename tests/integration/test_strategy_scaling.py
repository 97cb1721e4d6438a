"""Strategy workers as real processes splitting symbols on a real nats-server.

The reference for every case is the pure run of the strategies over each symbol's bars (the same signals,
byte for byte, that one worker publishes: see test_strategy_worker.py).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from nats.js.errors import BucketNotFoundError, NotFoundError

from services.strategy.config import load_config
from services.strategy.domain.signals import build_signal
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import SignalEvent
from shared.runtime.bus import Bus
from shared.runtime.settings import RuntimeSettings
from tests.support.wait import eventually
from tests.unit.strategy.helpers import bar, insight, run

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ["M&M"] + [f"S{i:02d}" for i in range(19)]  # M&M: a symbol that needs the KV key rule
BARS = 36
PRICE_ONLY = """
instances:
  - {name: sma_cross, id: sma, params: {fast: 2, slow: 4, allow_short: true}, symbols: "*"}
"""
WITH_INSIGHTS = """
instances:
  - {name: sma_cross, id: sma, params: {fast: 2, slow: 4}, symbols: "*"}
  - {name: confluence_consumer, id: cc, params: {min_confidence: 0.6}, symbols: [S01, S02, S03, S04]}
"""
BIASES = ["neutral", "bullish", "bullish", "bearish", "bearish", "bullish", "neutral"]

pytestmark = pytest.mark.timeout(120)


def feed(symbol: str) -> list[tuple[OHLCVBar, InsightEvent]]:
    seed = sum(map(ord, symbol))
    rows = []
    for i in range(BARS):
        b = bar(i, round(100 + 8 * math.sin((i + seed) / 2.5) + (seed % 7), 2), symbol)
        rows.append((b, insight(b, bias=BIASES[(i + seed) % 7], confidence=0.5 + (i % 4) / 10)))  # type: ignore[arg-type]
    return rows


def expected(config: Path, upto: int = BARS) -> list[bytes]:
    out: list[bytes] = []
    for inst in load_config(config):
        for symbol in SYMBOLS:
            if inst.runs_on(symbol):
                needs = inst.strategy.requires_insights
                rows = [(b, i if needs else None) for b, i in feed(symbol)[:upto]]
                for n, decision in run(inst.strategy, rows):
                    out.append(build_signal(inst.strategy, rows[n][0], rows[n][1], decision).to_json())
    return sorted(out)


class Workers:
    """``python -m services.strategy`` processes, killed at the end of the test."""

    def __init__(self, nats_url: str, tmp: Path, config: Path) -> None:
        self.nats_url, self.tmp, self.config = nats_url, tmp, config
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        env = dict(os.environ)
        env.update(
            BASTION_NATS_URL=self.nats_url,
            BASTION_DATA_DIR=str(self.tmp / "data"),
            BASTION_HOME=str(self.tmp / "home"),
            BASTION_STRATEGY_WORKER=name,
            BASTION_STRATEGY_CONFIG=str(self.config),
            BASTION_LOG_LEVEL=os.environ.get("STRATEGY_TEST_LOG_LEVEL", "warning"),
        )
        log = (self.tmp / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "services.strategy"], cwd=ROOT, env=env, stdout=log, stderr=log
        )

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def close(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def workers(nats_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Workers]:
    config = tmp_path / "strategies.yaml"
    config.write_text(getattr(request, "param", PRICE_ONLY))
    w = Workers(nats_url, tmp_path, config)
    yield w
    w.close()


async def feeder(nats_url: str) -> Bus:
    bus = await Bus.connect(RuntimeSettings(service="feeder", nats_url=nats_url))
    await bus.ensure_streams(["MARKETDATA", "ANALYTICS", "SIGNALS"])
    return bus


async def publish_bars(bus: Bus, start: int, stop: int) -> None:
    rows = [feed(s)[i][0] for i in range(start, stop) for s in SYMBOLS]  # time order across symbols
    await bus.publish_many([(b.subject(), b) for b in rows])


async def signals_in_stream(nc: NATS, want: int) -> list[SignalEvent]:
    """Every message of the SIGNALS stream, in stream order, once the stream holds ``want`` of them."""
    js = nc.jetstream()

    async def count() -> bool:
        try:
            return (await js.stream_info("SIGNALS")).state.messages >= want
        except NotFoundError:
            return False

    await eventually(count, timeout=60, interval=0.1, what=f"{want} signals in SIGNALS")
    total = (await js.stream_info("SIGNALS")).state.messages
    sub = await js.subscribe("strategy.v1.signal.>", stream="SIGNALS", ordered_consumer=True)
    got = [SignalEvent.from_json((await sub.next_msg(timeout=5)).data) for _ in range(total)]
    await sub.unsubscribe()
    return got


async def ownership(nc: NATS) -> dict[str, list[str]]:
    try:
        kv = await nc.jetstream().key_value("SNAPSHOTS")
        doc: dict[str, Any] = json.loads((await kv.get("strategy.workers")).value or b"{}")
    except NotFoundError:
        return {}
    except BucketNotFoundError:
        return {}
    assert {"kind", "version", "producer", "updated_at"} <= set(doc)
    return {w: v["symbols"] for w, v in doc["workers"].items()}


async def wait_split(nc: NATS, names: set[str]) -> dict[str, list[str]]:
    """Wait until exactly ``names`` are live and every symbol is run by exactly one of them."""

    async def split() -> dict[str, list[str]] | None:
        view = await ownership(nc)
        held = sorted(s for symbols in view.values() for s in symbols)
        good = set(view) == names and held == sorted(SYMBOLS) and all(view.values())
        return view if good else None

    return await eventually(split, timeout=45, interval=0.1, what=f"symbols split over {sorted(names)}")


def assert_same_signals(got: list[SignalEvent], want: list[bytes]) -> None:
    extra = sorted(set(s.to_json() for s in got) - set(want))
    missing = sorted(set(want) - set(s.to_json() for s in got))
    assert not missing, missing[:3]
    assert not extra, extra[:3]
    assert len(got) == len(want), "lost or duplicated signals"
    assert sorted(s.to_json() for s in got) == want
    for key in {(s.symbol, s.strategy_id) for s in got}:  # per-symbol order of each instance in the stream
        times = [s.bar_timestamp for s in got if (s.symbol, s.strategy_id) == key]
        assert times == sorted(times), key


@pytest.mark.parametrize("names", [["solo"], ["a", "b"]])
async def test_one_or_two_workers_split_the_symbols_and_publish_exactly_the_reference_signals(
    workers: Workers, nc: NATS, nats_url: str, names: list[str]
) -> None:
    bus = await feeder(nats_url)
    try:
        await publish_bars(bus, 0, BARS)  # symbols are discovered from the stream
        for name in names:
            workers.start(name)
        view = await wait_split(nc, set(names))
        got = await signals_in_stream(nc, len(expected(workers.config)))
    finally:
        await bus.close()
    assert_same_signals(got, expected(workers.config))  # the same bytes whatever the worker count
    assert sum(len(v) for v in view.values()) == len(SYMBOLS)


async def test_three_workers_lose_one_to_sigkill_and_then_get_it_back_with_no_signal_lost_or_repeated(
    workers: Workers, nc: NATS, nats_url: str
) -> None:
    bus = await feeder(nats_url)
    try:
        await publish_bars(bus, 0, 1)
        for name in ("w1", "w2", "w3"):
            workers.start(name)
        await wait_split(nc, {"w1", "w2", "w3"})
        await publish_bars(bus, 1, 18)
        workers.kill("w2")  # mid-stream: its batch in hand is neither lost nor repeated
        await publish_bars(bus, 18, 26)
        await wait_split(nc, {"w1", "w3"})
        await signals_in_stream(nc, len(expected(workers.config, 26)))
        workers.start("w2")  # resumes under the same name once its old lease has expired
        await wait_split(nc, {"w1", "w2", "w3"})
        await publish_bars(bus, 26, BARS)
        got = await signals_in_stream(nc, len(expected(workers.config)))
    finally:
        await bus.close()
    assert_same_signals(got, expected(workers.config))
    assert (workers.tmp / "data" / "strategy-w2.duckdb").exists()


@pytest.mark.parametrize("workers", [WITH_INSIGHTS], indirect=True)
async def test_bars_meet_their_insights_whichever_worker_runs_the_symbol(
    workers: Workers, nc: NATS, nats_url: str
) -> None:
    bus = await feeder(nats_url)
    try:
        workers.start("a")
        workers.start("b")
        insights = [(i.subject(), i) for s in SYMBOLS[:3] for _, i in feed(s)]
        await bus.publish_many(insights)  # S01, S02: insights before their bars
        await publish_bars(bus, 0, BARS)
        await wait_split(nc, {"a", "b"})
        insights = [(i.subject(), i) for s in SYMBOLS[3:] for _, i in feed(s)]
        await bus.publish_many(insights)  # S03, S04: bars wait for their insights
        got = await signals_in_stream(nc, len(expected(workers.config)))
    finally:
        await bus.close()
    assert_same_signals(got, expected(workers.config))
    assert {s.strategy_id for s in got} == {"sma", "cc"}
