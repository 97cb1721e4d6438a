"""``python -m services.strategy``: a strategy worker.

Environment (besides the shared runtime's): ``BASTION_STRATEGY_CONFIG`` (default deploy/strategies.yaml),
``BASTION_STRATEGY_WORKER`` (stable worker name, default ``0``: names the DuckDB file
``strategy-<worker>.duckdb`` and the durable consumers, so a restarted worker resumes where it stopped).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from services.strategy.adapters.store import StrategyStore
from services.strategy.config import load_config
from services.strategy.domain.registry import StrategyConfigError
from services.strategy.handlers import StrategyEngine
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import SignalEvent
from shared.contracts.subjects import ALL_BARS, ALL_INSIGHTS
from shared.runtime.bus import Bus
from shared.runtime.consumer import ConsumerSpec, Delivery, decoder_for
from shared.runtime.service import ServiceParts, ServiceRunner
from shared.runtime.settings import RuntimeSettings

STREAMS = ["MARKETDATA", "ANALYTICS", "SIGNALS", "DLQ"]


def worker_name() -> str:
    return os.environ.get("BASTION_STRATEGY_WORKER", "").strip() or "0"


def config_path() -> Path:
    return Path(os.environ.get("BASTION_STRATEGY_CONFIG", "").strip() or "deploy/strategies.yaml")


def make_runner(settings: RuntimeSettings, config: Path, worker: str) -> ServiceRunner:
    instances = load_config(config)  # a bad config fails before connecting, with a clear message

    async def setup(bus: Bus) -> ServiceParts:
        store = StrategyStore.open(settings.db_path(f"strategy-{worker}"))

        async def publish(signals: Sequence[SignalEvent]) -> None:
            await bus.publish_many([(s.subject(), s) for s in signals])

        engine = StrategyEngine(store, instances, publish)
        await engine.flush()  # signals committed but not acked before a crash

        async def on_bars(batch: Sequence[Delivery]) -> None:
            await engine.on_bars([d.event for d in batch])

        async def on_insights(batch: Sequence[Delivery]) -> None:
            await engine.on_insights([d.event for d in batch])

        async def on_stop() -> None:
            store.close()

        consumers = [
            ConsumerSpec(f"strategy-{worker}-bars", "MARKETDATA", [ALL_BARS], decoder_for(OHLCVBar), on_bars),
            ConsumerSpec(
                f"strategy-{worker}-insights",
                "ANALYTICS",
                [ALL_INSIGHTS],
                decoder_for(InsightEvent),
                on_insights,
            ),
        ]
        return ServiceParts(consumers=consumers, on_stop=on_stop)

    return ServiceRunner(
        settings=settings, setup=setup, streams=STREAMS, heartbeat_key=f"health.strategy.{worker}"
    )


def main() -> int:
    try:
        runner = make_runner(RuntimeSettings.from_env("strategy"), config_path(), worker_name())
    except StrategyConfigError as exc:
        print(f"strategy: {exc}", file=sys.stderr, flush=True)
        return 2
    return runner.main()


if __name__ == "__main__":
    raise SystemExit(main())
