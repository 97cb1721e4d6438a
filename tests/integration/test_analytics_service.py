"""The analytics service on a real nats-server: bars in, insights out, snapshot in KV, bad bars recorded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.analytics.__main__ import make_runner
from services.analytics.adapters.store import AnalyticsStore
from services.analytics.domain.confluence import ConfluenceConfig
from services.analytics.domain.indicators import SNAPSHOT_NAMES, compute_all, rows_of
from services.analytics.domain.insight import BarRow, build_insight
from shared.contracts.market_data import OHLCVBar
from shared.runtime.bus import Bus
from shared.runtime.settings import RuntimeSettings
from tests.support.wait import eventually
from tests.unit.analytics.support import bars


def expected_payloads(series: list[OHLCVBar]) -> list[bytes]:
    """What an uninterrupted run must publish: the batch computation of the same bars."""
    rows = [BarRow.of(b) for b in series]
    values = rows_of(compute_all([r.high for r in rows], [r.low for r in rows], [r.close for r in rows]))
    return [build_insight(r, v, ConfluenceConfig()).to_json() for r, v in zip(rows, values, strict=True)]


async def stream_payloads(bus: Bus, stream: str = "ANALYTICS") -> dict[str, list[bytes]]:
    """Every message of ``stream`` in stream order, grouped by symbol."""
    info = await bus.js.stream_info(stream)
    out: dict[str, list[bytes]] = {}
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await bus.js.get_msg(stream, seq)
        out.setdefault((msg.subject or "").rsplit(".", 1)[-1], []).append(msg.data or b"")
    return out


async def stream_count(bus: Bus, stream: str = "ANALYTICS") -> int:
    try:
        return int((await bus.js.stream_info(stream)).state.messages)
    except Exception:
        return 0


@pytest.fixture
async def feeder(nats_url: str) -> AsyncIterator[Bus]:
    bus = await Bus.connect(RuntimeSettings(service="feeder", nats_url=nats_url))
    await bus.ensure_streams(["MARKETDATA", "ANALYTICS", "DLQ"])
    yield bus
    await bus.close()


async def test_bars_in_give_insights_out_a_snapshot_and_ignored_bars_are_recorded(
    nats_url: str, feeder: Bus, tmp_path: Path
) -> None:
    infy, tcs = bars("INFY", 120, seed=3), bars("TCS", 60, seed=4)
    settings = RuntimeSettings(service="analytics", nats_url=nats_url, data_dir=tmp_path, instance="a1")
    runner = make_runner(settings, ConfluenceConfig(), batch=25)
    runner.heartbeat_interval = 0.1
    task = asyncio.create_task(runner.run())
    await feeder.publish_many([(b.subject(), b) for b in infy + tcs])
    await eventually(lambda: _has(feeder, 180), timeout=30, what="180 insights")

    late = late_bar(infy[50])
    await feeder.publish(late)  # older than the last INFY bar: out of order
    await feeder.publish_raw(infy[-1].subject(), infy[-1].to_json(), msg_id="resend")  # a redelivered copy
    await eventually(lambda: ignored_in_heartbeat(feeder), timeout=15, what="out-of-order bar recorded")

    got = await stream_payloads(feeder)
    assert got == {"INFY": expected_payloads(infy), "TCS": expected_payloads(tcs)}

    entry = await (await feeder.snapshots()).get("analytics.INFY")
    assert len(entry.value or b"") < 200_000
    snap = json.loads(entry.value or b"{}")
    assert (snap["kind"], snap["version"], snap["producer"], snap["symbol"]) == (
        "analytics.symbol",
        1,
        "analytics",
        "INFY",
    )
    assert len(snap["bars"]) == 120
    assert set(snap["indicators"]) == set(SNAPSHOT_NAMES)
    assert all(len(series) == 120 for series in snap["indicators"].values())
    assert snap["insight"]["bar_event_id"] == str(infy[-1].event_id)
    assert snap["updated_at"] == infy[-1].timestamp.isoformat()

    runner.stop.set()
    assert await asyncio.wait_for(task, 20) == 0
    store = AnalyticsStore.open(tmp_path / "analytics.duckdb")
    ignored = store.ignored()
    store.close()
    assert [(i.symbol, i.reason, i.event_id) for i in ignored] == [("INFY", "out_of_order", late.event_id)]


def late_bar(like: OHLCVBar) -> OHLCVBar:
    """A bar at ``like``'s time from another source (so another event id)."""
    fields = like.model_dump(
        include={"symbol", "interval", "timestamp", "open", "high", "low", "close", "volume"}
    )
    return OHLCVBar.build(
        producer="marketdata", key="late", occurred_at=like.timestamp, source="late", **fields
    )


async def ignored_in_heartbeat(bus: Bus) -> bool:
    try:
        entry = await (await bus.snapshots()).get("health.analytics")
    except Exception:
        return False
    return bool(json.loads(entry.value or b"{}").get("detail", {}).get("ignored_bars", "0") != "0")


async def _has(bus: Bus, n: int) -> bool:
    return await stream_count(bus) >= n
