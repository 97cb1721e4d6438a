"""Execution service throughput and latency on a real nats-server, next to a raw NATS relay in the same run.

* decisions/s: 3,000 signals (20 symbols x 150 bars, bars already stored) drained by
  ``python -m services.execution`` (paper mode, limits off, every signal makes an order), timed from the first
  to the last decision seen on ``risk.v1.decision.>``.
* signal -> order latency: 100 signals published one at a time (50 ms apart) to the caught-up service, from
  publish to the ``exec.v1.order`` (accepted) arriving at a subscriber; p50 and p99.
* the reference: a relay subprocess with the same durable pull consumer (batch 100) that republishes each
  signal to JetStream and acks, i.e. the NATS floor without risk checks, DuckDB, outbox or audit.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nats
import nats.errors
import yaml
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig

from bastion.natsd import NatsServer
from bench.support import bar, limits_off
from shared.contracts.envelope import Event
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import SignalEvent
from shared.runtime.bus import MSG_ID, Bus

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = [f"B{i:02d}" for i in range(20)]
BARS = 150
LATENCY_SIGNALS = 100
T0 = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)


def make_bar(symbol: str, i: int) -> OHLCVBar:
    return bar(symbol, T0 + timedelta(minutes=i), 100.0 + i % 3, open_=100.0, wick=1.0)


def make_signal(b: OHLCVBar, i: int) -> SignalEvent:
    return SignalEvent.build(
        producer="bench",
        key=f"{b.event_id}|bench",
        occurred_at=b.timestamp,
        correlation_id=b.event_id,
        causation_id=b.event_id,
        symbol=b.symbol,
        interval="1m",
        strategy="bench",
        strategy_id="bench",
        target="long" if i % 2 == 0 else "flat",
        strength=1.0,
        reason="bench",
        bar_timestamp=b.timestamp,
        bar_event_id=b.event_id,
    )


async def publish_all(nc: NATS, events: list[Event]) -> None:
    js = nc.jetstream()
    for start in range(0, len(events), 2000):
        futs = [
            await js.publish_async(e.subject(), e.to_json(), headers={MSG_ID: str(e.event_id)})  # type: ignore[attr-defined]
            for e in events[start : start + 2000]
        ]
        await asyncio.gather(*futs)


class Watch:
    """Arrival times of messages on a subject, keyed by a field of their JSON."""

    def __init__(self, field: str, only: tuple[str, str] | None = None) -> None:
        self.field, self.only = field, only
        self.times: dict[str, float] = {}

    async def on_msg(self, msg: Msg) -> None:
        data = json.loads(msg.data)
        if self.only is None or data.get(self.only[0]) == self.only[1]:
            self.times.setdefault(str(data[self.field]), time.perf_counter())


async def wait_for(watch: Watch, n: int, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(watch.times) < n:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"only {len(watch.times)} of {n} arrived (process rc={proc.poll()})")
        await asyncio.sleep(0.01)


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=os.environ | env, stderr=sink)


async def measure(
    nc: NATS, proc: subprocess.Popen[bytes], out_subject: str, field: str, only: tuple[str, str] | None
) -> tuple[float, list[float]]:
    """Throughput over the backlog, then paced latency; returns (per second, latencies in ms)."""
    total = len(SYMBOLS) * BARS
    backlog = Watch(field, only)
    sub = await nc.subscribe(out_subject, cb=backlog.on_msg)
    await wait_for(backlog, total, proc)
    first, last = min(backlog.times.values()), max(backlog.times.values())
    await sub.unsubscribe()
    rate = (total - 1) / (last - first)
    lat = Watch(field, only)
    sub = await nc.subscribe(out_subject, cb=lat.on_msg)
    js = nc.jetstream()
    sent: dict[str, float] = {}
    for i in range(LATENCY_SIGNALS):  # the service keeps 64 bars per symbol: send each bar just before
        b = make_bar("LAT", i)
        sig = make_signal(b, i)
        await js.publish(b.subject(), b.to_json(), headers={MSG_ID: str(b.event_id)})
        sent[str(sig.event_id)] = time.perf_counter()
        await js.publish(sig.subject(), sig.to_json(), headers={MSG_ID: str(sig.event_id)})
        await asyncio.sleep(0.05)
    await wait_for(lat, LATENCY_SIGNALS, proc)
    await sub.unsubscribe()
    latencies = [(lat.times[k] - t) * 1000 for k, t in sent.items() if k in lat.times]
    return rate, latencies


async def run_case(url: str, tmp: Path, case: str) -> tuple[float, list[float]]:
    nc = await nats.connect(url)
    bus = Bus(nc, "bench")
    await bus.ensure_streams(["MARKETDATA", "SIGNALS", "EXECUTION", "AUDIT"])
    await bus.ensure_stream("RELAY", ["relay.>"])
    events: list[Event] = []
    for i in range(BARS):
        for sym in SYMBOLS:
            b = make_bar(sym, i)
            events += [b, make_signal(b, i)]
    await publish_all(nc, events)
    log = tmp / "service.log"
    if case == "execution":
        cfg = tmp / "execution.yaml"
        cfg.write_text(yaml.safe_dump({"execution": {"limits": limits_off(), "sizing": {"quantity": 10}}}))
        env = {
            "BASTION_NATS_URL": url,
            "BASTION_DATA_DIR": str(tmp / "data"),
            "BASTION_EXECUTION_CONFIG": str(cfg),
            "BASTION_LOG_LEVEL": "warning",
            "BASTION_HOME": str(tmp / "home"),
        }
        proc, subject, field = spawn(["-m", "services.execution"], env, log), "exec.v1.order.>", "signal_id"
    else:
        proc, subject, field = spawn([str(Path(__file__)), "--relay", url], {}, log), "relay.>", "event_id"
    try:
        only = ("status", "accepted") if case == "execution" else None
        result = await measure(nc, proc, subject, field, only)
    except RuntimeError:
        sys.stderr.write(log.read_text()[-3000:])
        raise
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    await nc.close()
    return result


async def relay(url: str) -> None:
    """The reference: durable pull consumer on the signals, republish each to JetStream, then ack."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    config = ConsumerConfig(durable_name="relay", ack_policy=AckPolicy.EXPLICIT, max_ack_pending=100)
    await js.add_consumer("SIGNALS", config)
    sub = await js.pull_subscribe_bind(durable="relay", stream="SIGNALS")
    while True:
        try:
            msgs = await sub.fetch(100, timeout=0.5)
        except nats.errors.TimeoutError:
            continue
        futs = [await js.publish_async("relay." + m.subject, m.data) for m in msgs]
        await asyncio.gather(*futs)
        for m in msgs:
            await m.ack()


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else float("nan")


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--relay":
        asyncio.run(relay(sys.argv[2]))
        return 0
    results = {}
    for case in ("relay", "execution"):
        with tempfile.TemporaryDirectory() as tmp:
            server = NatsServer(store_dir=Path(tmp) / "js", log_file=Path(tmp) / "nats.log").start()
            try:
                results[case] = asyncio.run(run_case(server.url, Path(tmp), case))
            finally:
                server.stop()
    (rate, lat), (ref_rate, ref_lat) = results["execution"], results["relay"]
    p50, p99, r50, r99 = pct(lat, 50), pct(lat, 99), pct(ref_lat, 50), pct(ref_lat, 99)
    print(f"raw relay: {ref_rate:,.0f} msgs/s, latency p50 {r50:.1f} ms, p99 {r99:.1f} ms")
    print(f"execution: {rate:,.0f} decisions/s, signal->order p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    rows = [
        {"name": "execution decisions", "value": rate, "unit": "decisions/s", "ratio": rate / ref_rate,
         "reference": f"raw relay {ref_rate:,.0f} msgs/s", "goal": ""},
        {"name": "execution signal->order p50", "value": p50, "unit": "ms", "ratio": p50 / r50,
         "reference": f"raw relay p50 {r50:.1f} ms", "goal": ""},
        {"name": "execution signal->order p99", "value": p99, "unit": "ms", "ratio": p99 / r99,
         "reference": f"raw relay p99 {r99:.1f} ms", "goal": ""},
    ]  # fmt: skip
    for row in rows:
        print("RESULT " + json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
