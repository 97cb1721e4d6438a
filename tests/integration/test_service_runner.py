"""ServiceRunner: heartbeat in KV, consumers wired, Prometheus metrics, clean drain on stop."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import pytest

from bastion.natsd import NatsServer, free_port
from shared.contracts import OHLCVBar
from shared.runtime.bus import Bus
from shared.runtime.consumer import ConsumerSpec, Delivery, decoder_for
from shared.runtime.service import ServiceParts, ServiceRunner
from shared.runtime.settings import RuntimeSettings
from tests.contracts.samples import bar
from tests.support.wait import eventually


async def test_service_heartbeats_processes_exposes_metrics_and_drains_on_stop(nats_url: str) -> None:
    seen: list[OHLCVBar] = []
    stopped = asyncio.Event()

    async def handler(batch: Sequence[Delivery]) -> None:
        seen.extend(d.event for d in batch)

    async def setup(bus: Bus) -> ServiceParts:
        spec = ConsumerSpec("svc-bars", "MARKETDATA", ["md.v1.bar.>"], decoder_for(OHLCVBar), handler)

        async def on_stop() -> None:
            stopped.set()

        return ServiceParts(consumers=[spec], on_stop=on_stop, detail=lambda: {"symbols": str(len(seen))})

    port = free_port()
    settings = RuntimeSettings(service="svc", nats_url=nats_url, metrics_port=port, instance="svc-1")
    runner = ServiceRunner(settings, setup, streams=["MARKETDATA", "DLQ"], heartbeat_interval=0.1)
    task = asyncio.create_task(runner.run())

    client = await Bus.connect(RuntimeSettings(service="probe", nats_url=nats_url))
    await eventually(lambda: _stream_exists(client), what="MARKETDATA stream")
    await client.publish(bar())
    await eventually(lambda: len(seen) == 1, what="bar handled")

    async def beat() -> dict[str, object] | None:
        try:
            entry = await (await client.snapshots()).get("health.svc")
        except Exception:
            return None
        data: dict[str, object] = json.loads(entry.value or b"{}")
        return data if data.get("processed") == 1 else None

    heartbeat = await eventually(beat, what="heartbeat with processed=1")
    assert heartbeat["status"] == "ok"
    assert heartbeat["detail"] == {"symbols": "1"}

    body = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read())
    assert b'bastion_messages_processed_total{consumer="svc-bars",service="svc"} 1.0' in body

    runner.stop.set()
    assert await asyncio.wait_for(task, 10) == 0
    assert stopped.is_set()
    final = json.loads((await (await client.snapshots()).get("health.svc")).value or b"{}")
    assert final["status"] == "stopping"
    await client.close()


async def test_a_stop_after_nats_is_gone_is_quick_and_clean(nats_server: NatsServer) -> None:
    """As when ``bastion up`` is killed and its nats-server and services all get SIGTERM: the service cannot
    announce "stopping" nor drain, and stops anyway, at once, its ``on_stop`` run. It used to raise nats'
    timeout from the last heartbeat (a traceback, exit 1, ``on_stop`` skipped) after ~10 s."""
    stopped = asyncio.Event()

    async def setup(bus: Bus) -> ServiceParts:
        async def on_stop() -> None:
            stopped.set()

        return ServiceParts(on_stop=on_stop)

    settings = RuntimeSettings(
        service="svc", nats_url=nats_server.url, metrics_port=free_port(), instance="svc-1"
    )
    runner = ServiceRunner(settings, setup, streams=["DLQ"], heartbeat_interval=0.1)
    task = asyncio.create_task(runner.run())
    client = await Bus.connect(RuntimeSettings(service="probe", nats_url=nats_server.url))

    async def beating() -> bool:
        try:
            return (await (await client.snapshots()).get("health.svc")).value is not None
        except Exception:
            return False

    await eventually(beating, what="a heartbeat")
    await client.close()
    nats_server.kill()
    runner.stop.set()
    assert await asyncio.wait_for(task, 3) == 0
    assert stopped.is_set()


async def _stream_exists(bus: Bus) -> bool:
    try:
        await bus.js.stream_info("MARKETDATA")
    except Exception:
        return False
    return True


@pytest.mark.parametrize(
    ("service", "file"),
    [
        ("analytics", "analytics.duckdb"),
        ("execution", "execution.duckdb"),
        ("auth", "auth.duckdb"),
        ("marketdata", "marketdata.duckdb"),
        ("strategy", "strategy-w1.duckdb"),
    ],
)
def test_a_service_whose_duckdb_file_is_damaged_says_so_in_one_line_and_exits_2(
    nats_url: str, tmp_path: Path, service: str, file: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / file).write_bytes(b"not a database\n" * 100)
    env = os.environ | {
        "BASTION_NATS_URL": nats_url,
        "BASTION_DATA_DIR": str(data),
        "BASTION_HOME": str(tmp_path / "home"),
        "BASTION_STRATEGY_WORKER": "w1",
    }
    done = subprocess.run(
        [sys.executable, "-m", f"services.{service}"], env=env, capture_output=True, text=True, timeout=60
    )
    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert "Traceback" not in said
    [line] = [json.loads(x) for x in said.splitlines() if "service.database_unusable" in x]
    assert line["error"].startswith(f"cannot open {data / file}: The file ")
    assert "is not a valid DuckDB database file! Restore it from a backup" in line["error"]
    assert (data / file).read_bytes() == b"not a database\n" * 100  # left as it was, for a person to look at


def test_a_command_that_opens_a_damaged_file_says_so_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "auth.duckdb").write_text("not a database\n")
    done = subprocess.run(
        [sys.executable, "-m", "bastion", "users", "list", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"error: cannot open {tmp_path / 'auth.duckdb'}: The file "), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
