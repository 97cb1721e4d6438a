"""``python -m services.analytics``: bars in (``md.v1.bar.>``, durable), insights out.

Environment: the shared runtime's (``BASTION_NATS_URL``, ``BASTION_DATA_DIR``, ...; see
shared/runtime/settings.py) plus ``BASTION_ANALYTICS_CONFIG`` (optional YAML of the confluence rules) and
``BASTION_ANALYTICS_BATCH`` (bars per consumer fetch and DuckDB transaction, default 200) and
``BASTION_ANALYTICS_ACK_WAIT`` (seconds before the server redelivers bars a crashed process had fetched,
default 10).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from services.analytics.adapters.store import AnalyticsStore
from services.analytics.config import AnalyticsConfigError, load_config
from services.analytics.domain.confluence import ConfluenceConfig
from services.analytics.handlers import AnalyticsService
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar
from shared.contracts.subjects import ALL_BARS
from shared.runtime.bus import Bus
from shared.runtime.consumer import ConsumerSpec, Delivery, decoder_for
from shared.runtime.service import ServiceParts, ServiceRunner
from shared.runtime.settings import RuntimeSettings

SERVICE = "analytics"
STREAMS = ["MARKETDATA", "ANALYTICS", "DLQ"]
CONSUMER = "analytics-bars"


def make_runner(
    settings: RuntimeSettings, config: ConfluenceConfig, *, batch: int = 200, ack_wait: float = 10.0
) -> ServiceRunner:
    async def setup(bus: Bus) -> ServiceParts:
        store = AnalyticsStore.open(settings.db_path(SERVICE))

        async def publish(insights: Sequence[InsightEvent]) -> None:
            if insights:
                await bus.publish_many([(i.subject(), i) for i in insights])

        async def put_snapshot(key: str, value: dict[str, Any]) -> None:
            await bus.put_snapshot(key, value)

        service = AnalyticsService(store, publish, put_snapshot, config)

        async def on_bars(deliveries: Sequence[Delivery]) -> None:
            await service.on_bars([d.event for d in deliveries])

        async def on_stop() -> None:
            store.close()

        spec = ConsumerSpec(
            CONSUMER, "MARKETDATA", [ALL_BARS], decoder_for(OHLCVBar), on_bars, batch=batch, ack_wait=ack_wait
        )
        return ServiceParts(consumers=[spec], on_stop=on_stop, detail=service.detail)

    return ServiceRunner(settings=settings, setup=setup, streams=STREAMS)


def _int_env(name: str, default: int, top: int) -> int:
    raw = os.environ.get(name, "").strip() or str(default)
    if not raw.isdigit() or not 1 <= int(raw) <= top:
        raise AnalyticsConfigError(f"{name} must be a whole number 1..{top}, not {raw!r}")
    return int(raw)


def main() -> int:
    try:
        config = load_config()
        batch = _int_env("BASTION_ANALYTICS_BATCH", 200, 10_000)
        ack_wait = _int_env("BASTION_ANALYTICS_ACK_WAIT", 10, 3600)
    except AnalyticsConfigError as exc:
        print(f"analytics: {exc}", file=sys.stderr, flush=True)
        return 2
    return make_runner(RuntimeSettings.from_env(SERVICE), config, batch=batch, ack_wait=ack_wait).main()


if __name__ == "__main__":
    raise SystemExit(main())
