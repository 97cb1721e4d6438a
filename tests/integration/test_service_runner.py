"""ServiceRunner: heartbeat in KV, consumers wired, Prometheus metrics, clean drain on stop."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Sequence

from bastion.natsd import free_port
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


async def _stream_exists(bus: Bus) -> bool:
    try:
        await bus.js.stream_info("MARKETDATA")
    except Exception:
        return False
    return True
