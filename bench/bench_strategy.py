"""Strategy throughput: the pure strategies, the engine alone, and 1 and 2 real workers on a nats-server.

* pure: ``on_bar`` calls/s of the four strategies on the same data, no I/O;
* engine: the per-symbol join and state serialisation with an in-memory state store and a publisher that
  drops the signals (what one worker's CPU does per bar, without NATS);
* workers: ``python -m services.strategy`` processes (1, then 2) on a fresh nats-server with a backlog of
  bars over many symbols published after the workers split the symbols; signals/s from the first bar
  published to the last signal stored (state in the ``STRATEGY_STATE`` bucket, signals in SIGNALS);
* the reference for the workers: a raw relay process with one durable pull consumer (batch 100) over the
  same bars that republishes each one to JetStream, measured in the same way in the same run.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nats
import nats.errors
import yaml
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError

from bastion.natsd import NatsServer
from bench.support import bar
from services.strategy.config import parse_config
from services.strategy.domain import StrategyContext
from services.strategy.domain.signals import build_signal
from services.strategy.handlers import StateConflict, StrategyEngine
from shared.contracts.analytics import ConfluenceInsight, InsightEvent, Regime
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import SignalEvent, Target
from shared.runtime.bus import MSG_ID, Bus

SYMBOLS = [f"SYM{i:03d}" for i in range(40)]
BARS = 250
BATCH = 100  # the ConsumerSpec default
T0 = datetime(2026, 1, 5, 9, 15, tzinfo=UTC)
CONFIG = {
    "instances": [
        {"name": "sma_cross", "id": "sma", "params": {"fast": 5, "slow": 20, "allow_short": True}},
        {"name": "ehma_pivot", "id": "ehma", "params": {"period": 16}},
        {"name": "confluence_consumer", "id": "cc", "params": {"allow_short": True}},
        {"name": "regime_adaptive", "id": "ra", "params": {"allow_short": True}},
    ]
}
REGIMES: list[Regime] = ["trending_up", "ranging", "trending_down", "volatile"]


class MemoryStates:
    """A ``StateStore`` in a dict: the engine measured without NATS (the services use ``KvStates``)."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[bytes, int]] = {}

    async def load(self, symbol: str) -> tuple[bytes | None, int]:
        value, revision = self.values.get(symbol, (None, 0))
        return value, revision

    async def save(self, symbol: str, value: bytes, revision: int) -> int:
        if self.values.get(symbol, (b"", 0))[1] != revision:
            raise StateConflict(symbol)
        self.values[symbol] = (value, revision + 1)
        return revision + 1


def data(symbol: str, seed: int) -> list[tuple[OHLCVBar, InsightEvent]]:
    rows = []
    for i in range(BARS):
        ts = T0 + timedelta(minutes=i)
        close = 100 + 10 * math.sin((i + seed) / 9) + 3 * math.sin((i * 7 + seed) / 4)
        b = bar(symbol, ts, close)
        score = math.sin((i + seed) / 5)
        ins = InsightEvent.build(
            producer="bench",
            key=str(b.event_id),
            occurred_at=ts,
            bar_event_id=b.event_id,
            insight=ConfluenceInsight(
                symbol=symbol,
                interval="1m",
                as_of=ts,
                bias="bullish" if score > 0.3 else "bearish" if score < -0.3 else "neutral",
                confidence=abs(score),
                score=score,
                regime=REGIMES[(i // 25 + seed) % 4],
                components=(),
            ),
            indicators={"rsi_14": 50 + 45 * math.sin((i + seed) / 3)},
        )
        rows.append((b, ins))
    return rows


def bench_pure(feeds: dict[str, list[tuple[OHLCVBar, InsightEvent]]]) -> tuple[float, int]:
    instances = parse_config(CONFIG)
    calls = signals = 0
    started = time.perf_counter()
    for symbol, rows in feeds.items():
        for inst in instances:
            s = inst.strategy
            target: Target = "flat"
            state: dict[str, Any] = {}
            for b, ins in rows:
                decision, state = s.on_bar(
                    b,
                    ins if s.requires_insights else None,
                    StrategyContext(symbol, s.instance_id, target, state),
                )
                calls += 1
                if decision is not None:
                    signals, target = signals + 1, decision.target
    return calls / (time.perf_counter() - started), signals


async def bench_engine(feeds: dict[str, list[tuple[OHLCVBar, InsightEvent]]]) -> tuple[float, float, int]:
    sent: list[int] = [0]

    async def publish(batch: Sequence[SignalEvent]) -> None:
        sent[0] += len(batch)

    engine = StrategyEngine(parse_config(CONFIG), MemoryStates(), publish)
    started = time.perf_counter()
    for symbol, rows in feeds.items():  # per-symbol consumers: batches of one symbol, each stream in turn
        for start in range(0, len(rows), BATCH):
            await engine.on_bars(symbol, [b for b, _ in rows[start : start + BATCH]])
            await engine.on_insights(symbol, [i for _, i in rows[start : start + BATCH]])
    elapsed = time.perf_counter() - started
    bars = sum(len(rows) for rows in feeds.values())
    return bars / elapsed, sent[0] / elapsed, sent[0]


# -- real workers on a nats-server -------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
NATS_SYMBOLS = [f"N{i:03d}" for i in range(120)]
NATS_BARS = 100
NATS_CONFIG = {
    "instances": [
        {"name": "sma_cross", "id": "sma", "params": {"fast": 3, "slow": 8, "allow_short": True}},
        {"name": "ehma_pivot", "id": "ehma", "params": {"period": 8, "pivot": 1, "allow_short": True}},
    ]
}


def nats_feed() -> tuple[list[OHLCVBar], int]:
    """Bars in time order across symbols, and how many signals the pure strategies give on them."""
    rows = {s: [b for b, _ in data(s, n)[:NATS_BARS]] for n, s in enumerate(NATS_SYMBOLS)}
    signals = 0
    for inst in parse_config(NATS_CONFIG):
        for symbol, bars in rows.items():
            target: Target = "flat"
            state: dict[str, Any] = {}
            for b in bars:
                ctx = StrategyContext(symbol, inst.strategy.instance_id, target, state)
                decision, state = inst.strategy.on_bar(b, None, ctx)
                if decision is not None:
                    build_signal(inst.strategy, b, None, decision)
                    signals, target = signals + 1, decision.target
    return [rows[s][i] for i in range(NATS_BARS) for s in NATS_SYMBOLS], signals


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env)


async def split_done(bus: Bus, n: int) -> bool:
    """Whether every symbol runs on exactly one of ``n`` workers (the ``strategy.workers`` snapshot)."""
    try:
        doc = json.loads((await (await bus.snapshots()).get("strategy.workers")).value or b"{}")
    except NotFoundError:
        return False
    held = [s for w in doc["workers"].values() for s in w["symbols"]]
    return len(doc["workers"]) == n and sorted(held) == NATS_SYMBOLS


async def count_in(js: Any, stream: str, want: int, procs: list[subprocess.Popen[bytes]]) -> float:
    deadline = time.monotonic() + 300
    while (await js.stream_info(stream)).state.messages < want:
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            raise RuntimeError(
                f"{stream}: fewer than {want} messages (processes: {[p.poll() for p in procs]})"
            )
        await asyncio.sleep(0.02)
    return time.perf_counter()


async def publish_bars(bus: Bus, bars: list[OHLCVBar]) -> None:
    await bus.publish_many([(b.subject(), b) for b in bars])


async def workers_case(
    url: str, tmp: Path, n: int, bars: list[OHLCVBar], signals: int
) -> tuple[float, float]:
    bus = Bus(await nats.connect(url), "bench")
    await bus.ensure_streams(["MARKETDATA", "ANALYTICS", "SIGNALS"])
    await publish_bars(bus, bars[: len(NATS_SYMBOLS)])  # the first bar of every symbol: they get split
    config = tmp / "strategies.yaml"
    config.write_text(yaml.safe_dump(NATS_CONFIG))
    procs = []
    for i in range(n):
        env = os.environ | {
            "BASTION_NATS_URL": url,
            "BASTION_DATA_DIR": str(tmp / "data"),
            "BASTION_HOME": str(tmp / "home"),
            "BASTION_STRATEGY_WORKER": f"bench{i + 1}",
            "BASTION_STRATEGY_CONFIG": str(config),
            "BASTION_LOG_LEVEL": "warning",
        }
        procs.append(spawn(["-m", "services.strategy"], env))
    try:
        deadline = time.monotonic() + 120
        while not await split_done(bus, n):
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not split the symbols")
            await asyncio.sleep(0.1)
        started = time.perf_counter()
        await publish_bars(bus, bars[len(NATS_SYMBOLS) :])
        finished = await count_in(bus.js, "SIGNALS", signals, procs)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
        await bus.close()
    elapsed = finished - started
    return signals / elapsed, (len(bars) - len(NATS_SYMBOLS)) / elapsed


async def relay_case(url: str, bars: list[OHLCVBar]) -> float:
    nc = await nats.connect(url)
    bus = Bus(nc, "bench")
    await bus.ensure_streams(["MARKETDATA"])
    await bus.ensure_stream("RELAY", ["relay.>"])
    proc = spawn([str(Path(__file__)), "--relay", url], dict(os.environ))
    try:
        started = time.perf_counter()
        await publish_bars(bus, bars)
        finished = await count_in(bus.js, "RELAY", len(bars), [proc])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        await bus.close()
    return len(bars) / (finished - started)


async def relay(url: str) -> None:
    """The reference: one durable pull consumer over the bars, republish each to JetStream, then ack."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    config = ConsumerConfig(durable_name="relay", ack_policy=AckPolicy.EXPLICIT, max_ack_pending=BATCH)
    await js.add_consumer("MARKETDATA", config)
    sub = await js.pull_subscribe_bind(durable="relay", stream="MARKETDATA")
    while True:
        try:
            msgs = await sub.fetch(BATCH, timeout=0.5)
        except nats.errors.TimeoutError:
            continue
        futs = [
            await js.publish_async("relay." + m.subject, m.data, headers={MSG_ID: m.headers[MSG_ID]})
            for m in msgs
            if m.headers
        ]
        await asyncio.gather(*futs)
        for m in msgs:
            await m.ack()


def on_server(case: Any) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(store_dir=Path(tmp) / "js", log_file=Path(tmp) / "nats.log").start()
        try:
            return asyncio.run(case(server.url, Path(tmp)))
        finally:
            server.stop()


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--relay":
        asyncio.run(relay(sys.argv[2]))
        return 0
    feeds = {s: data(s, n) for n, s in enumerate(SYMBOLS)}
    calls_per_s, pure_signals = bench_pure(feeds)
    bars_per_s, signals_per_s, sent = asyncio.run(bench_engine(feeds))
    assert sent == pure_signals, (sent, pure_signals)
    print(f"pure strategies: {calls_per_s:,.0f} on_bar calls/s ({pure_signals} signals)")
    print(f"engine (no NATS, in-memory state): {bars_per_s:,.0f} bars/s, {signals_per_s:,.0f} signals/s")
    bars, want = nats_feed()
    relay_rate = on_server(lambda url, _tmp: relay_case(url, bars))
    rates = {n: on_server(lambda url, tmp, n=n: workers_case(url, tmp, n, bars, want)) for n in (1, 2)}
    print(f"raw relay: {relay_rate:,.0f} msgs/s ({len(bars)} bars)")
    for n, (rate, bar_rate) in rates.items():
        print(
            f"{n} worker(s): {rate:,.0f} signals/s, {bar_rate:,.0f} bars/s "
            f"({want} signals from {len(bars)} bars, {len(NATS_SYMBOLS)} symbols)"
        )
    ref = f"pure {calls_per_s / 4:,.0f} bars/s (4 strategies)"
    result = {"name": "strategy engine, no NATS", "value": bars_per_s, "unit": "bars/s", "reference": ref}
    result |= {"ratio": bars_per_s / (calls_per_s / 4), "goal": ""}
    print("RESULT " + json.dumps(result))
    for n, (rate, bar_rate) in rates.items():
        row = {
            "name": f"strategy signals, {n} worker(s)",
            "value": rate,
            "unit": "signals/s",
            "reference": f"{bar_rate:,.0f} bars/s vs raw relay {relay_rate:,.0f} msgs/s (ratio: bars)",
            "ratio": bar_rate / relay_rate,
            "goal": "",
        }
        print("RESULT " + json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
