"""SIGKILL the analytics service mid-stream, restart it: the insights equal an uninterrupted run's."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from shared.runtime.bus import Bus
from shared.runtime.settings import RuntimeSettings
from tests.integration.test_analytics_service import expected_payloads, stream_count, stream_payloads
from tests.support.wait import eventually
from tests.unit.analytics.support import bars

ROOT = Path(__file__).resolve().parents[2]


def start_service(nats_url: str, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BASTION_NATS_URL": nats_url,
        "BASTION_DATA_DIR": str(data_dir),
        "BASTION_HOME": str(data_dir / "home"),
        "BASTION_ANALYTICS_BATCH": "25",
        "BASTION_ANALYTICS_ACK_WAIT": "1",  # bars the killed process had fetched come back after 1 s
        "BASTION_LOG_LEVEL": "warning",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "services.analytics"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir / "analytics.log", "ab"),
    )


async def test_sigkill_mid_stream_then_restart_gives_no_gap_and_no_duplicate(
    nats_url: str, tmp_path: Path
) -> None:
    feeder = await Bus.connect(RuntimeSettings(service="feeder", nats_url=nats_url))
    await feeder.ensure_streams(["MARKETDATA", "ANALYTICS", "DLQ"])
    infy, tcs = bars("INFY", 400, seed=11), bars("TCS", 400, seed=12)
    interleaved = [b for pair in zip(infy, tcs, strict=True) for b in pair]
    await feeder.publish_many([(b.subject(), b) for b in interleaved[:300]])

    first = start_service(nats_url, tmp_path)
    feeding = asyncio.create_task(feeder.publish_many([(b.subject(), b) for b in interleaved[300:]]))
    try:
        await eventually(lambda: _at_least(feeder, 150), timeout=60, what="150 insights before the kill")
        first.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait, 10)
        killed_at = await stream_count(feeder)
        assert killed_at < len(interleaved), "the service finished before it was killed: not mid-stream"
        await feeding
        second = start_service(nats_url, tmp_path)
        try:
            await eventually(
                lambda: _at_least(feeder, 800), timeout=90, what="all 800 insights after restart"
            )
        finally:
            second.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(second.wait, 20) == 0
    finally:
        if first.poll() is None:
            first.kill()
    got = await stream_payloads(feeder)
    assert got == {"INFY": expected_payloads(infy), "TCS": expected_payloads(tcs)}
    assert await stream_count(feeder) == 800
    await feeder.close()


async def _at_least(bus: Bus, n: int) -> bool:
    return await stream_count(bus) >= n
