"""AnalyticsService on a real DuckDB file, no broker: restart rebuild, duplicates, bad bars, failures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from services.analytics.adapters.store import AnalyticsStore
from services.analytics.domain.confluence import ConfluenceConfig
from services.analytics.handlers import AnalyticsService
from shared.contracts.analytics import InsightEvent
from tests.integration.test_analytics_service import expected_payloads, late_bar
from tests.unit.analytics.support import bars


class Sink:
    def __init__(self) -> None:
        self.insights: list[InsightEvent] = []
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.fail_publish = False

    async def publish(self, events: Sequence[InsightEvent]) -> None:
        if self.fail_publish:
            raise ConnectionError("broker down")
        self.insights.extend(events)

    async def put(self, key: str, value: dict[str, Any]) -> None:
        self.snapshots[key] = value


def service(path: Path, sink: Sink) -> AnalyticsService:
    return AnalyticsService(AnalyticsStore.open(path), sink.publish, sink.put, ConfluenceConfig())


@pytest.mark.parametrize("rebuild", ["checkpoint", "replay", "stale checkpoint"])
async def test_a_restarted_service_continues_exactly_where_the_file_stops(
    tmp_path: Path, rebuild: str
) -> None:
    series, sink = bars("INFY", 120, seed=2), Sink()
    first = service(tmp_path / "a.duckdb", sink)
    await first.on_bars(series[:40])
    await first.on_bars(series[40:70])
    if rebuild == "replay":
        first.store.conn.execute("DELETE FROM checkpoints")
    if rebuild == "stale checkpoint":
        first.store.conn.execute("UPDATE checkpoints SET ts = ts - INTERVAL 1 MINUTE")
    first.store.close()
    second = service(tmp_path / "a.duckdb", sink)
    if rebuild == "checkpoint":
        second.store.bars = None  # type: ignore[assignment]  # a replay would fail
    await second.on_bars(series[70:])
    assert [i.to_json() for i in sink.insights] == expected_payloads(series)
    second.store.close()
    straight = Sink()
    uninterrupted = service(tmp_path / "b.duckdb", straight)
    await uninterrupted.on_bars(series[:70])
    await uninterrupted.on_bars(series[70:])
    uninterrupted.store.close()
    assert sink.snapshots == straight.snapshots


async def test_redelivered_bars_republish_their_stored_insight_and_are_not_counted_twice(
    tmp_path: Path,
) -> None:
    series, sink = bars("INFY", 40, seed=2), Sink()
    svc = service(tmp_path / "a.duckdb", sink)
    await svc.on_bars(series[:30])
    await svc.on_bars([series[29], series[10], series[30], series[30]])
    ids = [i.bar_event_id for i in sink.insights]
    assert ids == [b.event_id for b in series[:30]] + [
        series[29].event_id,
        series[10].event_id,
        series[30].event_id,
    ]
    assert svc.store.ignored() == []
    assert len(svc.store.bars("INFY")) == 31
    svc.store.close()


async def test_out_of_order_and_other_interval_bars_are_recorded_not_processed(tmp_path: Path) -> None:
    series, sink = bars("INFY", 20, seed=2), Sink()
    other = bars("INFY", 25, seed=2, interval="5m")[-1]
    svc = service(tmp_path / "a.duckdb", sink)
    await svc.on_bars(series)
    late = late_bar(series[5])
    await svc.on_bars([late, other])
    assert [(i.reason, i.event_id) for i in svc.store.ignored()] == [
        ("out_of_order", late.event_id),
        ("interval_mismatch", other.event_id),
    ]
    assert len(sink.insights) == 20
    assert svc.detail()["ignored_bars"] == "2"
    svc.store.close()


async def test_a_failed_publish_is_retried_with_the_same_insights(tmp_path: Path) -> None:
    series, sink = bars("INFY", 30, seed=2), Sink()
    svc = service(tmp_path / "a.duckdb", sink)
    await svc.on_bars(series[:20])
    sink.fail_publish = True
    with pytest.raises(ConnectionError):
        await svc.on_bars(series[20:])
    sink.fail_publish = False
    await svc.on_bars(series[20:])  # the consumer loop redelivers the batch
    assert [i.to_json() for i in sink.insights] == expected_payloads(series)
    svc.store.close()


async def test_the_snapshot_is_bounded_to_300_bars(tmp_path: Path) -> None:
    series, sink = bars("INFY", 340, seed=2), Sink()
    svc = service(tmp_path / "a.duckdb", sink)
    for i in range(0, 340, 100):
        await svc.on_bars(series[i : i + 100])
    snap = sink.snapshots["analytics.INFY"]
    assert len(snap["bars"]) == 300
    assert snap["bars"][0]["t"] == series[40].timestamp.isoformat()
    assert all(len(v) == 300 for v in snap["indicators"].values())
    assert snap["insight"]["event_id"] == str(sink.insights[-1].event_id)
    svc.store.close()
