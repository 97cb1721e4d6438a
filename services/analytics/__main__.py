"""``python -m services.analytics``: bars in (``md.v1.bar.>``, durable), insights out.

Environment: the shared runtime's (``BASTION_NATS_URL``, ``BASTION_DATA_DIR``, ...; see
shared/runtime/settings.py) plus ``BASTION_ANALYTICS_CONFIG`` (optional YAML of the confluence rules) and
``BASTION_ANALYTICS_BATCH`` (bars per consumer fetch and DuckDB transaction, default 200) and
``BASTION_ANALYTICS_ACK_WAIT`` (seconds before the server redelivers bars a crashed process had fetched,
default 10).

``bastion analytics update`` while the service runs: the service answers ``RecomputeInsights`` on
``ctl.v1.analytics.recompute`` (``adapters.control``).

Snapshots ``analytics.<SYM>`` are written in the background, each at most every ``SNAPSHOT_INTERVAL``
seconds during a backlog and always with the final state (see ``handlers``), so they do not delay acks.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import structlog

from services.analytics.adapters.control import ControlServer
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
from shared.runtime.settings import RuntimeSettings, SettingsError, whole_number_env

SERVICE = "analytics"
STREAMS = ["MARKETDATA", "ANALYTICS", "DLQ"]
CONSUMER = "analytics-bars"
SNAPSHOT_INTERVAL = 0.1  # seconds between two snapshots of one symbol (the dashboard wants ~1/s)


def make_runner(
    settings: RuntimeSettings,
    config: ConfluenceConfig,
    *,
    batch: int = 200,
    ack_wait: float = 10.0,
    snapshot_interval: float = SNAPSHOT_INTERVAL,
) -> ServiceRunner:
    async def setup(bus: Bus) -> ServiceParts:
        store = AnalyticsStore.open(settings.db_path(SERVICE))

        async def publish(insights: Sequence[InsightEvent]) -> None:
            if insights:
                await bus.publish_many([(i.subject(), i) for i in insights])

        async def publish_encoded(insights: Sequence[tuple[InsightEvent, bytes]]) -> None:
            if insights:
                await bus.publish_encoded([(i.subject(), body, str(i.event_id)) for i, body in insights])

        async def put_snapshot(key: str, value: dict[str, Any] | bytes) -> None:
            await bus.put_snapshot(key, value)

        service = AnalyticsService(
            store,
            publish,
            put_snapshot,
            config,
            publish_encoded=publish_encoded,
            put_snapshot_bytes=put_snapshot,
            snapshot_interval=snapshot_interval,
        )

        async def on_bars(deliveries: Sequence[Delivery]) -> None:
            await service.on_bars([d.event for d in deliveries])

        control = ControlServer(bus, service)
        await control.start()

        async def on_stop() -> None:
            await control.stop()
            try:
                await service.flush_snapshots()
            except Exception as exc:  # NATS gone at shutdown: the next start rewrites them
                structlog.get_logger().warning("analytics.final_snapshots_failed", error=repr(exc))
            store.close()

        spec = ConsumerSpec(
            CONSUMER, "MARKETDATA", [ALL_BARS], decoder_for(OHLCVBar), on_bars, batch=batch, ack_wait=ack_wait
        )
        return ServiceParts(
            consumers=[spec], tasks=[service.run_snapshots], on_stop=on_stop, detail=service.detail
        )

    return ServiceRunner(settings=settings, setup=setup, streams=STREAMS)


def main() -> int:
    try:
        config = load_config()
        batch = whole_number_env("BASTION_ANALYTICS_BATCH", 200, high=10_000)
        ack_wait = whole_number_env("BASTION_ANALYTICS_ACK_WAIT", 10, high=3600)
        settings = RuntimeSettings.from_env(SERVICE)
    except (AnalyticsConfigError, SettingsError) as exc:
        print(f"analytics: {exc}", file=sys.stderr, flush=True)
        return 2
    return make_runner(settings, config, batch=batch, ack_wait=ack_wait).main()


if __name__ == "__main__":
    raise SystemExit(main())
