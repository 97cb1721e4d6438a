"""Throttled ``analytics.<SYM>`` snapshots and the fast snapshot encoding, on a real DuckDB file (no broker):
the service's way writes in the background, each symbol at most once per interval, never loses the final
state; ``snapshot_json`` is byte for byte ``json.dumps(snapshot())``; the checkpoint UPDATE path."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from services.analytics.adapters.store import AnalyticsStore
from services.analytics.domain.confluence import ConfluenceConfig
from services.analytics.handlers import AnalyticsService
from shared.contracts.analytics import InsightEvent
from tests.support.wait import eventually
from tests.unit.analytics.support import bars


def dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


class Puts:
    def __init__(self, fail: int = 0) -> None:
        self.writes: list[tuple[str, bytes, float]] = []
        self.fail = fail

    async def put(self, key: str, value: bytes) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("kv down")
        self.writes.append((key, value, time.monotonic()))

    def last(self, key: str) -> bytes | None:
        found = [v for k, v, _ in self.writes if k == key]
        return found[-1] if found else None

    def count(self, key: str) -> int:
        return sum(1 for k, _, _ in self.writes if k == key)


async def no_publish(_events: object) -> None:
    return None


async def no_dict_put(_key: str, _value: object) -> None:
    raise AssertionError("the throttled service writes bytes")


def throttled(path: Path, puts: Puts, interval: float) -> AnalyticsService:
    return AnalyticsService(
        AnalyticsStore.open(path),
        no_publish,
        no_dict_put,
        ConfluenceConfig(),
        put_snapshot_bytes=puts.put,
        snapshot_interval=interval,
    )


async def test_snapshot_json_is_the_dict_snapshot_byte_for_byte_across_the_window_and_a_restart(
    tmp_path: Path,
) -> None:
    async def ignore(_key: str, _value: object) -> None:
        return None

    series = bars("INFY", 650, seed=7)
    svc = AnalyticsService(AnalyticsStore.open(tmp_path / "a.duckdb"), no_publish, ignore, ConfluenceConfig())
    done = 0
    for upto in (1, 2, 150, 299, 300, 301, 480, 650):
        await svc.on_bars(series[done:upto])
        done = upto
        assert svc.snapshot_json("INFY") == dumps(svc.snapshot("INFY")), upto
    assert len(json.loads(svc.snapshot_json("INFY"))["bars"]) == 300
    svc.store.close()
    again = AnalyticsService(
        AnalyticsStore.open(tmp_path / "a.duckdb"), no_publish, ignore, ConfluenceConfig()
    )
    assert again.snapshot_json("INFY") == dumps(again.snapshot("INFY"))  # rebuilt from the checkpoint
    again.store.close()


async def test_throttled_snapshots_are_written_in_the_background_once_per_interval_with_the_final_state(
    tmp_path: Path,
) -> None:
    puts, interval = Puts(), 0.25
    svc = throttled(tmp_path / "a.duckdb", puts, interval)
    stop = asyncio.Event()
    writer = asyncio.create_task(svc.run_snapshots(stop))
    infy, tcs = bars("INFY", 400, seed=1), bars("TCS", 400, seed=2)
    started = time.monotonic()
    for i in range(0, 400, 5):
        await svc.on_bars([*infy[i : i + 5], *tcs[i : i + 5]])
        await asyncio.sleep(0)  # let the writer run between batches, as in the service
    elapsed = time.monotonic() - started
    for key in ("analytics.INFY", "analytics.TCS"):
        assert 1 <= puts.count(key) <= elapsed / interval + 2, (key, puts.count(key), elapsed)
    # the final state lands within the interval, though no more bars come
    for sym in ("INFY", "TCS"):
        final = svc.snapshot_json(sym)

        def landed(s: str = sym, f: bytes = final) -> bool:
            return puts.last(f"analytics.{s}") == f

        await eventually(landed, timeout=5, what="final")
    snap = json.loads(puts.last("analytics.INFY") or b"{}")
    assert snap["updated_at"] == infy[-1].timestamp.isoformat()
    assert snap["insight"]["bar_event_id"] == str(infy[-1].event_id)
    gaps = [
        b[2] - a[2]
        for a, b in zip(puts.writes, puts.writes[1:], strict=False)
        if a[0] == b[0] == "analytics.TCS"
    ]
    assert all(gap >= interval * 0.9 for gap in gaps), gaps
    stop.set()
    await asyncio.wait_for(writer, 5)
    svc.store.close()


async def test_on_bars_does_not_wait_for_the_snapshot_and_the_stop_flush_writes_what_is_left(
    tmp_path: Path,
) -> None:
    puts = Puts()
    svc = throttled(tmp_path / "a.duckdb", puts, interval=60.0)
    series = bars("INFY", 50, seed=3)
    await svc.on_bars(series[:10])
    assert puts.writes == []  # the ack path is free of KV writes
    stop = asyncio.Event()
    writer = asyncio.create_task(svc.run_snapshots(stop))
    await eventually(lambda: puts.count("analytics.INFY") == 1, what="first snapshot")
    await svc.on_bars(series[10:])
    await asyncio.sleep(0.2)
    assert puts.count("analytics.INFY") == 1  # throttled: the interval has not passed
    stop.set()
    await asyncio.wait_for(writer, 5)
    await svc.flush_snapshots()  # what the service's on_stop does
    assert puts.last("analytics.INFY") == svc.snapshot_json("INFY")
    assert json.loads(puts.last("analytics.INFY") or b"{}")["updated_at"] == series[-1].timestamp.isoformat()
    await svc.flush_snapshots()
    assert puts.count("analytics.INFY") == 2  # nothing dirty: nothing rewritten
    svc.store.close()


async def test_a_failed_snapshot_write_is_retried_with_the_latest_state(tmp_path: Path) -> None:
    puts = Puts(fail=2)
    svc = throttled(tmp_path / "a.duckdb", puts, interval=0.05)
    stop = asyncio.Event()
    writer = asyncio.create_task(svc.run_snapshots(stop))
    series = bars("INFY", 30, seed=4)
    await svc.on_bars(series[:20])
    await svc.on_bars(series[20:])
    await eventually(lambda: puts.last("analytics.INFY") == svc.snapshot_json("INFY"), what="retried")
    assert puts.fail == 0
    stop.set()
    await asyncio.wait_for(writer, 5)
    svc.store.close()


@pytest.mark.parametrize("tamper", ["none", "row deleted"])
async def test_checkpoints_are_updated_in_place_and_a_restart_still_uses_them(
    tmp_path: Path, tamper: str
) -> None:
    published: list[InsightEvent] = []

    async def publish(events: Sequence[InsightEvent]) -> None:
        published.extend(events)

    async def ignore(_key: str, _value: object) -> None:
        return None

    series = bars("INFY", 90, seed=5)
    first = AnalyticsService(AnalyticsStore.open(tmp_path / "a.duckdb"), publish, ignore, ConfluenceConfig())
    await first.on_bars(series[:30])
    if tamper == "row deleted":
        first.store.conn.execute("DELETE FROM checkpoints")
    await first.on_bars(series[30:60])  # an UPDATE of the existing row (or an insert if it vanished)
    rows = first.store.conn.execute("SELECT symbol, ts FROM checkpoints").fetchall()
    assert [(s, ts) for s, ts in rows] == [("INFY", series[59].timestamp)]
    first.store.close()
    second = AnalyticsService(AnalyticsStore.open(tmp_path / "a.duckdb"), publish, ignore, ConfluenceConfig())
    second.store.bars = None  # type: ignore[assignment]  # a replay would fail: the checkpoint is used
    await second.on_bars(series[60:])
    second.store.close()
    straight: list[InsightEvent] = []

    async def collect(events: Sequence[InsightEvent]) -> None:
        straight.extend(events)

    ref = AnalyticsService(AnalyticsStore.open(tmp_path / "b.duckdb"), collect, ignore, ConfluenceConfig())
    await ref.on_bars(series)
    ref.store.close()
    assert [i.to_json() for i in published] == [i.to_json() for i in straight]


async def test_a_restarted_service_rewrites_every_stored_symbol_before_any_new_bar(tmp_path: Path) -> None:
    puts = Puts()
    first = throttled(tmp_path / "a.duckdb", puts, interval=60.0)
    await first.on_bars([*bars("INFY", 40, seed=1), *bars("TCS", 30, seed=2)])
    first.store.close()  # killed before its (throttled) snapshot writes: none was written
    assert puts.writes == []
    second = throttled(tmp_path / "a.duckdb", puts, interval=60.0)
    stop = asyncio.Event()
    writer = asyncio.create_task(second.run_snapshots(stop))
    await eventually(lambda: puts.count("analytics.INFY") == puts.count("analytics.TCS") == 1, what="both")
    assert puts.last("analytics.TCS") == second.snapshot_json("TCS")
    assert (
        json.loads(puts.last("analytics.INFY") or b"{}")["bars"][-1]["c"]
        == bars("INFY", 40, seed=1)[-1].close
    )
    stop.set()
    await asyncio.wait_for(writer, 5)
    second.store.close()
