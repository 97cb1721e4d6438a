"""`python -m services.marketdata`: heartbeat, the `marketdata.symbols` snapshot, the live ticker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import nats
from nats.aio.client import Client as NATS

from services.marketdata.__main__ import make_runner
from services.marketdata.adapters.store import BarStore
from services.marketdata.domain.bars import SYNTHETIC, to_bars
from services.marketdata.domain.synthetic import generate
from services.marketdata.service import LiveConfig
from shared.runtime.service import ServiceRunner
from shared.runtime.settings import RuntimeSettings
from tests.support.wait import eventually

T = TypeVar("T")


def settings(nats_url: str, data: Path) -> RuntimeSettings:
    return RuntimeSettings(service="marketdata", nats_url=nats_url, data_dir=data, instance="md-test")


def seed_bars(data: Path, symbol: str, count: int, seed: int = 7) -> None:
    frame = generate(symbol, count, seed)
    BarStore(data / "marketdata.duckdb").save(to_bars(frame, symbol, "1m", SYNTHETIC))


async def kv_json(nc: NATS, key: str) -> dict[str, Any] | None:
    try:
        kv = await nc.jetstream().key_value("SNAPSHOTS")
        entry = await kv.get(key)
    except Exception:
        return None
    value: dict[str, Any] = json.loads(entry.value or b"{}")
    return value


async def until(probe: Callable[[], Awaitable[T | None]], what: str) -> T:
    """``eventually`` with a type mypy can follow for async probes."""
    return cast(T, await eventually(probe, what=what))


async def start(runner: ServiceRunner) -> asyncio.Task[int]:
    runner.heartbeat_interval = 0.1
    return asyncio.create_task(runner.run())


async def stop(runner: ServiceRunner, task: asyncio.Task[int]) -> None:
    runner.stop.set()
    assert await asyncio.wait_for(task, timeout=10) == 0


async def test_service_heartbeats_and_snapshots_the_stored_symbols(nats_url: str, tmp_path: Path) -> None:
    seed_bars(tmp_path, "INFY", 30)
    runner = make_runner(settings(nats_url, tmp_path), LiveConfig(seconds=0), snapshot_seconds=0.05)
    task = await start(runner)
    nc = await nats.connect(nats_url)
    try:
        beat = await until(lambda: kv_json(nc, "health.marketdata"), what="heartbeat")
        assert beat["status"] in {"starting", "ok"}
        assert beat["service"] == "marketdata"
        snap = await until(lambda: kv_json(nc, "marketdata.symbols"), what="symbols snapshot")
        assert (snap["kind"], snap["producer"], snap["version"]) == ("marketdata.symbols", "marketdata", 1)
        infy = snap["symbols"]["INFY"]
        frame = generate("INFY", 30, 7)
        assert (infy["bars"], infy["interval"], infy["synthetic"]) == (30, "1m", True)
        assert infy["last_close"] == frame["close"].iloc[-1]
        assert infy["prev_close"] == frame["close"].iloc[-2]
        assert infy["first"] == "2026-01-05T03:45:00+00:00"
        assert snap["updated_at"] == infy["last"]
        assert (await nc.jetstream().stream_info("MARKETDATA")).config.subjects == ["md.>"]

        await asyncio.to_thread(seed_bars, tmp_path, "TCS", 10)  # e.g. `bastion feed` beside the service

        async def with_tcs() -> dict[str, Any] | None:
            value = await kv_json(nc, "marketdata.symbols")
            return value if value and "TCS" in value["symbols"] else None

        snap = await until(with_tcs, what="snapshot to pick up TCS")
        assert snap["symbols"]["TCS"]["bars"] == 10
        beat = await until(lambda: _beat_with(nc, "bars", "40"), what="heartbeat detail counting the bars")
        assert beat["detail"]["symbols"] == "2"
    finally:
        await nc.close()
        await stop(runner, task)


async def _beat_with(nc: NATS, key: str, value: str) -> dict[str, Any] | None:
    beat = await kv_json(nc, "health.marketdata")
    return beat if beat and beat["detail"].get(key) == value else None


async def test_live_ticker_stores_and_publishes_the_next_bar_of_each_symbol(
    nats_url: str, tmp_path: Path
) -> None:
    seed_bars(tmp_path, "INFY", 5)
    live = LiveConfig(seconds=0.05, symbols=("INFY", "TCS"), interval="1m")
    runner = make_runner(settings(nats_url, tmp_path), live, snapshot_seconds=0.05)
    task = await start(runner)
    nc = await nats.connect(nats_url)
    try:

        async def moved() -> dict[str, Any] | None:
            value = await kv_json(nc, "marketdata.symbols")
            syms = value["symbols"] if value else {}
            return value if syms.get("INFY", {}).get("bars", 0) >= 8 and "TCS" in syms else None

        snap = await until(moved, what="live bars for INFY and TCS")
        assert snap["symbols"]["INFY"]["synthetic"] is True

        async def published() -> int:
            info = await nc.jetstream().stream_info("MARKETDATA", subjects_filter="md.v1.bar.INFY")
            return sum((info.state.subjects or {}).values())

        assert await until(published, what="live INFY bars on the stream") >= 3
    finally:
        await nc.close()
        await stop(runner, task)
    store = BarStore(tmp_path / "marketdata.duckdb")
    times = [s for s in store.summaries() if s.symbol == "INFY"]
    assert times[0].last > times[0].first
