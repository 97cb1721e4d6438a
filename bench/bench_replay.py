"""Replay throughput: a 100k-bar CSV through `bastion feed replay`'s code path (validate the whole file,
build contract events, store in DuckDB, publish to JetStream with dedupe ids, mark published), next to a raw
nats-py JetStream publish of the same count of the same payloads, measured in the same run on its own
nats-server. Goal: replay >= 50% of raw."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import nats
from nats.js.api import PubAck

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bastion.natsd import NatsServer
from services.marketdata.adapters.store import BarStore
from services.marketdata.domain.bars import SYNTHETIC, file_source, to_bars
from services.marketdata.domain.synthetic import generate
from services.marketdata.handlers import ingest
from shared.barfiles import load_bar_file
from shared.contracts.market_data import OHLCVBar
from shared.runtime.bus import Bus

BARS = 100_000
WINDOW = 2000  # acks in flight, as Bus.publish_many


def write_file(folder: Path) -> Path:
    path = folder / "bars.csv"
    frame = generate("BENCH", BARS, 1).drop(columns=["regime"])
    frame["timestamp"] = frame["timestamp"].map(lambda t: t.isoformat())
    frame.to_csv(path, index=False)
    return path


async def raw_publish(url: str, payloads: Sequence[tuple[str, bytes]]) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=10)
    await js.add_stream(name="RAW", subjects=["raw.>"], duplicate_window=3600)
    started = time.perf_counter()
    pending: list[asyncio.Future[PubAck]] = []
    for msg_id, payload in payloads:
        pending.append(await js.publish_async("raw.bar.BENCH", payload, headers={"Nats-Msg-Id": msg_id}))
        if len(pending) >= WINDOW:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    seconds = time.perf_counter() - started
    await nc.close()
    return seconds


async def replay(url: str, path: Path, db: Path) -> tuple[float, int]:
    nc = await nats.connect(url)
    bus = Bus(nc, "marketdata")
    await bus.ensure_stream("MARKETDATA")

    async def publish(chunk: Sequence[OHLCVBar]) -> int:
        return await bus.publish_many([(b.subject(), b) for b in chunk])

    started = time.perf_counter()
    frame = load_bar_file(path)
    validated = time.perf_counter()
    bars = to_bars(frame, "BENCH", "1m", file_source(path.name))
    gc.freeze()  # as `bastion feed replay` does before publishing (services/marketdata/cli.py)
    built = time.perf_counter()
    report = await ingest(bars, BarStore(db), publish)
    seconds = time.perf_counter() - started
    print(
        f"  read+validate {validated - started:.2f}s, build events {built - validated:.2f}s, "
        f"store+publish+mark {seconds - (built - started):.2f}s"
    )
    await bus.close()
    return seconds, report.published


async def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = write_file(folder)
        payload_bars = to_bars(generate("BENCH", BARS, 1), "BENCH", "1m", SYNTHETIC)
        payloads = [(str(b.event_id), b.to_json()) for b in payload_bars]
        server = NatsServer(store_dir=folder / "js").start()
        try:
            raw_seconds = await raw_publish(server.url, payloads)
            replay_seconds, published = await replay(server.url, path, folder / "marketdata.duckdb")
        finally:
            server.stop()
    if published != BARS:
        print(f"replay published {published} of {BARS} bars", file=sys.stderr)
        return 1
    raw_rate, replay_rate = BARS / raw_seconds, BARS / replay_seconds
    ratio = replay_rate / raw_rate
    print(f"raw nats-py JetStream publish: {BARS} msgs in {raw_seconds:.2f}s = {raw_rate:,.0f} msgs/s")
    print(
        f"feed replay (validate, store, publish): {BARS} bars in {replay_seconds:.2f}s = {replay_rate:,.0f}/s"
    )
    print(f"ratio {ratio:.2f} (goal >= 0.50)")
    result = {
        "name": "feed replay 100k bars",
        "value": round(replay_rate, 1),
        "unit": "bars/s",
        "reference": f"raw JetStream publish {raw_rate:,.0f} msgs/s",
        "ratio": round(ratio, 3),
        "goal": ">= 0.50",
    }
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
