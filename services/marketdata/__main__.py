"""``python -m services.marketdata``: the market data service.

It ensures the ``MARKETDATA`` stream, heartbeats to KV ``health.marketdata``, and keeps the
``marketdata.symbols`` snapshot in step with ``marketdata.duckdb`` (written by ``bastion feed`` and by the
live ticker). Environment, besides the shared runtime's (shared/runtime/settings.py):

| variable | meaning | default |
|---|---|---|
| BASTION_MD_SNAPSHOT_SECONDS | how often to look for new bars and refresh the snapshot | 2 |
| BASTION_MD_LIVE_SECONDS | every N seconds, store and publish the next synthetic bar per symbol | 0 (off) |
| BASTION_MD_LIVE_SYMBOLS | symbols the live ticker moves | INFY,TCS,RELIANCE |
| BASTION_MD_LIVE_INTERVAL | interval of live bars | 1m |
"""

from __future__ import annotations

import os
import sys

from services.marketdata.adapters.store import BarStore
from services.marketdata.service import LiveConfig, MarketDataService
from shared.runtime.bus import Bus
from shared.runtime.service import ServiceParts, ServiceRunner, Task
from shared.runtime.settings import RuntimeSettings

STREAMS = ["MARKETDATA", "DLQ"]


def make_runner(settings: RuntimeSettings, live: LiveConfig, snapshot_seconds: float = 2.0) -> ServiceRunner:
    async def setup(bus: Bus) -> ServiceParts:
        service = MarketDataService(
            bus, BarStore(settings.db_path("marketdata")), snapshot_seconds=snapshot_seconds, live=live
        )
        tasks: list[Task] = [service.snapshot_task]
        if live.seconds > 0:
            tasks.append(service.live_task)
        return ServiceParts(tasks=tasks, detail=service.detail)

    return ServiceRunner(settings=settings, setup=setup, streams=STREAMS, heartbeat_key="health.marketdata")


def main() -> int:
    try:
        live = LiveConfig.from_env()
        snapshot_seconds = float(os.environ.get("BASTION_MD_SNAPSHOT_SECONDS", "").strip() or "2")
        settings = RuntimeSettings.from_env("marketdata")
    except ValueError as exc:
        print(f"marketdata: bad setting: {exc}", file=sys.stderr, flush=True)
        return 2
    return make_runner(settings, live, snapshot_seconds).main()


if __name__ == "__main__":
    raise SystemExit(main())
