"""``bastion analytics update`` while the analytics service runs (it holds analytics.duckdb): the CLI asks
the service over NATS (``RecomputeInsights``), the service recomputes with its own rules, republishes
(every insight a duplicate), answers, and goes on processing bars. Refusals are clear, never a traceback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from services.analytics.__main__ import make_runner
from services.analytics.domain.confluence import ConfluenceConfig
from shared.contracts.subjects import ANALYTICS_RECOMPUTE
from shared.runtime.bus import Bus
from shared.runtime.settings import RuntimeSettings
from tests.integration.test_analytics_service import expected_payloads, stream_count, stream_payloads
from tests.support.wait import eventually
from tests.unit.analytics.support import bars

ROOT = Path(__file__).resolve().parents[2]


def cli(nats_url: str, data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env |= {"BASTION_NATS_URL": nats_url, "BASTION_DATA_DIR": str(data), "BASTION_HOME": str(data / "home")}
    return subprocess.run(
        [sys.executable, "-m", "bastion", "analytics", "update", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )


async def _insights_at_least(bus: Bus, n: int) -> bool:
    return await stream_count(bus) >= n


async def test_update_while_the_service_runs_is_done_by_the_service(nats_url: str, tmp_path: Path) -> None:
    infy, tcs = bars("INFY", 150, seed=5), bars("TCS", 60, seed=6)
    feeder = await Bus.connect(RuntimeSettings(service="feeder", nats_url=nats_url))
    await feeder.ensure_streams(["MARKETDATA", "ANALYTICS", "DLQ"])
    settings = RuntimeSettings(service="analytics", nats_url=nats_url, data_dir=tmp_path, instance="a1")
    runner = make_runner(settings, ConfluenceConfig(), batch=25)
    task = asyncio.create_task(runner.run())
    try:
        await feeder.publish_many([(b.subject(), b) for b in infy[:140] + tcs])
        await eventually(lambda: _insights_at_least(feeder, 200), timeout=30, what="200 insights")

        done = await asyncio.to_thread(cli, nats_url, tmp_path)
        said = " ".join(done.stdout.split())
        assert done.returncode == 0, done.stdout + done.stderr
        assert "updated 2 symbol(s), 200 insight(s) (by the running analytics service)" in said
        assert "published 200 insight(s), 0 new" in said

        one = await asyncio.to_thread(cli, nats_url, tmp_path, "--symbol", "tcs", "--no-publish")
        assert one.returncode == 0, one.stdout + one.stderr
        assert "updated 1 symbol(s), 60 insight(s)" in " ".join(one.stdout.split())

        unknown = await asyncio.to_thread(cli, nats_url, tmp_path, "--symbol", "WIPRO")
        assert unknown.returncode == 2
        assert "no stored bars for WIPRO; known: INFY, TCS" in " ".join(unknown.stderr.split())
        assert "Traceback" not in unknown.stderr

        rules = tmp_path / "rules.yaml"
        rules.write_text("{}\n")
        configured = await asyncio.to_thread(cli, nats_url, tmp_path, "--config", str(rules))
        assert configured.returncode == 2
        assert "--config applies only with the analytics service stopped" in " ".join(
            configured.stderr.split()
        )

        bad = await feeder.nc.request(ANALYTICS_RECOMPUTE, b'{"symbol": "INFY", "force": true}', timeout=10)
        assert b'"ok":false' in bad.data
        assert b"bad request: force: Extra inputs are not permitted" in bad.data

        await feeder.publish_many([(b.subject(), b) for b in infy[140:]])  # and it goes on with live bars
        await eventually(lambda: _insights_at_least(feeder, 210), timeout=30, what="the later bars' insights")
        assert await stream_payloads(feeder) == {
            "INFY": expected_payloads(infy),
            "TCS": expected_payloads(tcs),
        }
    finally:
        runner.stop.set()
        code = await asyncio.wait_for(task, 20)
        await feeder.close()
    assert code == 0


HOLD = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(600)"


def test_update_says_so_when_the_file_is_held_and_no_service_answers(nats_url: str, tmp_path: Path) -> None:
    db = tmp_path / "analytics.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        done = cli(nats_url, tmp_path, "--timeout", "5")
    finally:
        holder.kill()
        holder.wait(10)
    assert done.returncode == 1, done.stdout + done.stderr
    said = " ".join(done.stderr.split())
    assert "is in use and the analytics service did not answer" in said
    assert "Traceback" not in done.stderr
