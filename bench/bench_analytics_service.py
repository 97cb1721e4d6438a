"""Analytics service throughput through JetStream: bars/s from ``md.v1.bar.>`` to published insights
(DuckDB commit, insight publish, snapshot included), next to the raw relay figure of the same server in
the same run (a durable pull consumer that only fetches and acks the same bars).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nats.js.api import AckPolicy, ConsumerConfig

from bastion.natsd import NatsServer
from services.analytics.__main__ import make_runner
from services.analytics.domain.confluence import ConfluenceConfig
from shared.contracts.market_data import OHLCVBar
from shared.runtime.bus import Bus
from shared.runtime.settings import RuntimeSettings
from tests.unit.analytics.support import bars

SYMBOLS = [f"SYM{i:02d}" for i in range(10)]
PER_SYMBOL = 600
BATCH = 200


async def raw_relay(bus: Bus, total: int) -> float:
    config = ConsumerConfig(durable_name="raw", ack_policy=AckPolicy.EXPLICIT, max_ack_pending=BATCH)
    await bus.js.add_consumer("MARKETDATA", config)
    sub = await bus.js.pull_subscribe_bind(durable="raw", stream="MARKETDATA")
    started, seen = time.perf_counter(), 0
    while seen < total:
        for msg in await sub.fetch(BATCH, timeout=5):
            OHLCVBar.from_json(msg.data)
            await msg.ack()
            seen += 1
    return total / (time.perf_counter() - started)


async def service(bus: Bus, url: str, data_dir: Path, total: int) -> float:
    runner = make_runner(
        RuntimeSettings(service="analytics", nats_url=url, data_dir=data_dir), ConfluenceConfig(), batch=BATCH
    )
    started = time.perf_counter()
    task = asyncio.create_task(runner.run())
    while (await bus.js.stream_info("ANALYTICS")).state.messages < total:
        await asyncio.sleep(0.05)
    rate = total / (time.perf_counter() - started)
    runner.stop.set()
    await task
    return rate


async def run(url: str, data_dir: Path) -> None:
    bus = await Bus.connect(RuntimeSettings(service="bench", nats_url=url))
    await bus.ensure_streams(["MARKETDATA", "ANALYTICS", "DLQ"])
    series = [bars(sym, PER_SYMBOL, seed=i) for i, sym in enumerate(SYMBOLS)]
    interleaved = [b for row in zip(*series, strict=True) for b in row]
    await bus.publish_many([(b.subject(), b) for b in interleaved])
    total = len(interleaved)
    relay = await raw_relay(bus, total)
    rate = await service(bus, url, data_dir, total)
    await bus.close()
    print(
        f"{total:,} bars, {len(SYMBOLS)} symbols: analytics {rate:,.0f} bars/s, raw relay {relay:,.0f} bars/s"
    )
    result = {
        "name": "analytics service bars -> insights",
        "value": rate,
        "unit": "bars/s",
        "reference": f"raw JetStream relay {relay:,.0f} bars/s",
        "ratio": rate / relay,
        "goal": "",
    }
    print("RESULT " + json.dumps(result))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(store_dir=Path(tmp) / "js", log_file=Path(tmp) / "nats.log").start()
        try:
            asyncio.run(run(server.url, Path(tmp)))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
