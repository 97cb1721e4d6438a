"""Fault injection on the whole pipeline (marketdata, analytics, strategy, execution, auth as real
``python -m services.<svc>`` processes): SIGKILL each service in turn mid-stream, SIGKILL execution six
times, and pause execution for 30 s while bars keep coming. Each must end with exactly the figures of an
uninterrupted run: nothing lost, nothing doubled, nothing dead-lettered."""

from __future__ import annotations

import asyncio
import os
import signal as os_signal
from pathlib import Path

import pytest

from bastion.natsd import NatsServer
from shared.contracts import subjects
from shared.runtime.bus import Bus
from shared.runtime.settings import RuntimeSettings
from tests.integration.fault_support import count_subject
from tests.integration.pipeline_support import (
    SERVICES,
    STREAMS,
    Figures,
    Pipeline,
    consumer_state,
    consumers,
    feed,
    figures,
    publish_bars,
    wait_drained,
)
from tests.support.wait import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PER_SYMBOL = 2_500  # x 4 symbols = 10,000 bars
PAUSE = 30.0


async def feeder(nats_url: str) -> Bus:
    bus = await Bus.connect(RuntimeSettings(service="feeder", nats_url=nats_url))
    await bus.ensure_streams(STREAMS)
    return bus


#: each reference run's figures, by bars per symbol: the services are deterministic, so the tests of the
#: same bars share one run instead of repeating it (~15 s each)
_CLEAN: dict[int, Figures] = {}


async def clean_run(tmp: Path, per_symbol: int) -> Figures:
    """The reference: the same bars through the same services on their own server, nothing interrupted
    (run once per ``per_symbol`` in a session)."""
    if per_symbol not in _CLEAN:
        _CLEAN[per_symbol] = await _clean_run(tmp, per_symbol)
    return _CLEAN[per_symbol]


async def _clean_run(tmp: Path, per_symbol: int) -> Figures:
    server = NatsServer(store_dir=tmp / "jetstream", log_file=tmp / "nats.log").start()
    pipeline = Pipeline(server.url, tmp)
    bus = await feeder(server.url)
    try:
        pipeline.start_all()
        items = feed(per_symbol)
        await publish_bars(bus.nc, items)
        await wait_drained(bus, pipeline, len(items), timeout=120)
        return await figures(bus.nc)
    finally:
        codes = await pipeline.stop()
        await bus.close()
        server.stop()
        assert set(codes.values()) == {0}, (codes, pipeline.logs())


def assert_same(run: Figures, ref: Figures) -> None:
    missing = {k: sorted(ref.keys[k] - run.keys[k])[:5] for k in ref.keys if ref.keys[k] - run.keys[k]}
    extra = {k: sorted(run.keys[k] - ref.keys[k])[:5] for k in run.keys if run.keys[k] - ref.keys[k]}
    assert run.counts == ref.counts, (run.counts, ref.counts, {"missing": missing, "extra": extra})
    assert run.unique == run.counts, f"duplicates: {run.unique} of {run.counts}"
    assert run.keys == ref.keys
    for kind in ("signals", "orders", "trades"):
        assert ref.counts[kind] > 0, ref.counts
    assert run.dead == ref.dead == 0


async def progress(bus: Bus, name: str) -> int:
    """How far ``name`` has got, in outputs (services without a stream output report 1)."""
    where = {
        "analytics": ("ANALYTICS", subjects.ALL_INSIGHTS),
        "strategy": ("SIGNALS", subjects.ALL_SIGNALS),
        "execution": ("EXECUTION", "risk.v1.decision.>"),
    }.get(name)
    return await count_subject(bus.nc, *where) if where else 1


async def test_sigkill_of_each_service_in_turn_mid_stream_loses_and_doubles_nothing(
    nats_url: str, tmp_path: Path
) -> None:
    reference = await clean_run(tmp_path / "clean", PER_SYMBOL)
    items = feed(PER_SYMBOL)
    pipeline = Pipeline(nats_url, tmp_path / "faulty")
    bus = await feeder(nats_url)
    chunk = len(items) // len(SERVICES)
    kills: list[str] = []
    try:
        pipeline.start_all()
        for i, name in enumerate(SERVICES):
            await publish_bars(bus.nc, items[i * chunk : (i + 1) * chunk])
            before = await progress(bus, name)

            async def moved(name: str = name, before: int = before) -> bool:
                pipeline.alive()
                if name not in ("analytics", "execution", "strategy"):
                    return True
                return await progress(bus, name) > before

            await eventually(moved, timeout=60, interval=0.05, what=f"{name} at work")
            kills.append(f"{name}@{await progress(bus, name)}")
            await pipeline.kill_and_restart(name)
        await publish_bars(bus.nc, items[len(SERVICES) * chunk :])
        await wait_drained(bus, pipeline, len(items), timeout=150)
        run = await figures(bus.nc)
    finally:
        codes = await pipeline.stop()
        await bus.close()
    print(f"\nkill-each: {len(items)} bars, killed {', '.join(kills)}")
    for kind in run.counts:
        print(
            f"kill-each: {kind} {run.counts[kind]}/{reference.counts[kind]} "
            f"(unique {run.unique[kind]}/{reference.unique[kind]})"
        )
    assert set(codes.values()) == {0}, (codes, pipeline.logs())
    assert_same(run, reference)


async def test_execution_killed_six_times_mid_stream_still_trades_exactly_like_an_uninterrupted_run(
    nats_url: str, tmp_path: Path
) -> None:
    """Each SIGKILL leaves a partial batch of bars or signals unacked; the restarted process must still
    handle them before the newer ones (the server hands those out first), or decisions see the wrong
    position and orders go missing."""
    reference = await clean_run(tmp_path / "clean", PER_SYMBOL)
    items = feed(PER_SYMBOL)
    pipeline = Pipeline(nats_url, tmp_path / "faulty")
    bus = await feeder(nats_url)
    kills = 6
    chunk = len(items) // (kills + 1)
    try:
        pipeline.start_all()
        for k in range(kills):
            before = await progress(bus, "execution")
            await publish_bars(bus.nc, items[k * chunk : (k + 1) * chunk])

            async def moved(before: int = before) -> bool:
                pipeline.alive()
                return await progress(bus, "execution") > before

            await eventually(moved, timeout=60, interval=0.05, what="execution at work")
            await pipeline.kill_and_restart("execution")
        await publish_bars(bus.nc, items[kills * chunk :])
        await wait_drained(bus, pipeline, len(items), timeout=150)
        run = await figures(bus.nc)
    finally:
        codes = await pipeline.stop()
        await bus.close()
    print(f"\nkill-execution x{kills}: {run.line()}")
    assert set(codes.values()) == {0}, (codes, pipeline.logs())
    assert_same(run, reference)


async def backlog(bus: Bus) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, stream in consumers():
        if name.startswith("execution"):
            state = await consumer_state(bus, stream, name)
            out[name] = sum(state) if state else -1
    return out


async def test_execution_paused_for_30s_catches_up_and_drops_nothing(
    nats_server: NatsServer, nats_url: str, tmp_path: Path
) -> None:
    per_symbol = 1_000
    reference = await clean_run(tmp_path / "clean", per_symbol)
    items = feed(per_symbol)
    pipeline = Pipeline(nats_url, tmp_path / "paused")
    bus = await feeder(nats_url)
    loop = asyncio.get_running_loop()
    try:
        pipeline.start_all()
        first, rest = items[: len(items) // 5], items[len(items) // 5 :]
        await publish_bars(bus.nc, first)
        execution = pipeline.procs["execution"]

        async def deciding() -> bool:
            pipeline.alive()
            return await progress(bus, "execution") > 0

        await eventually(deciding, timeout=60, what="execution deciding")
        os.kill(execution.pid, os_signal.SIGSTOP)
        paused_at = loop.time()
        step = max(1, len(rest) // 30)
        for start in range(0, len(rest), step):  # bars keep coming through the pause
            await publish_bars(bus.nc, rest[start : start + step])
            await asyncio.sleep(max(0.0, paused_at + PAUSE * (start + step) / len(rest) - loop.time()))
        await asyncio.sleep(max(0.0, paused_at + PAUSE - loop.time()))  # the scenario: a 30 s stall
        held = await backlog(bus)
        os.kill(execution.pid, os_signal.SIGCONT)
        resumed = loop.time()
        await wait_drained(bus, pipeline, len(items), timeout=120)
        caught_up = loop.time() - resumed
        run = await figures(bus.nc)
    finally:
        codes = await pipeline.stop()
        await bus.close()
    print(f"\nslow consumer: paused {resumed - paused_at:.1f}s, backlog at resume {held}")
    print(f"slow consumer: caught up in {caught_up:.1f}s; {run.line()}")
    print(f"slow consumer: reference {reference.line()}")
    assert set(codes.values()) == {0}, (codes, pipeline.logs())
    assert sum(held.values()) > 0, "execution had no backlog: the pause did not stall it"
    assert_same(run, reference)
