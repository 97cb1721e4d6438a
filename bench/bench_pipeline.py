"""The whole trading pipeline on one nats-server: analytics, strategy and execution as real processes.

* throughput: 4 symbols x 1,500 bars published to ``md.v1.bar.<SYM>`` after the services are up (the first bar
  of every symbol goes first, so the strategy worker has split the symbols); timed from the first bar
  published until every durable consumer of MARKETDATA, ANALYTICS, SIGNALS and EXECUTION is drained (bars ->
  insights -> signals -> decisions/orders). Reference in the same run: a raw nats-py relay chain with the same
  three JetStream hops (stream A -> B -> C -> D, one relay process per hop: durable pull consumer, batch 100,
  republish, ack) over the same bars.
* latency: bars paced at 1,000/s to the caught-up services; for every accepted order, its arrival at a
  subscriber minus the publish time of the bar that started its chain (the order's ``correlation_id`` is that
  bar's ``event_id``, see shared/contracts/envelope.py); p50 and p99. If the services fall behind, it says so
  and reports the rate they sustained.
* memory: peak RSS (``VmHWM``) of each service process at the end: the three above, and marketdata, auth and
  the dashboard running beside them (the dashboard watching the snapshots the others write all along).
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nats
import nats.errors
import yaml
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError

from bastion.natsd import free_port
from bench.support import (
    bar,
    cpu_seconds,
    durable_backlog,
    limits_off,
    nats_server,
    pct,
    peak_rss_mib,
    result,
    spawn,
    stop_all,
    stream_count,
)
from shared.contracts.market_data import OHLCVBar
from shared.contracts.subjects import STREAMS
from shared.runtime.bus import MSG_ID, Bus

SYMBOLS = ["PA", "PB", "PC", "PD"]
PER_SYMBOL = 1_500
LATENCY_BARS = 3_000  # paced, all symbols together
RATE = 1_000.0  # bars/s of the paced publisher
BATCH = 100
HOPS = 3  # bars -> analytics -> strategy -> execution
T0 = datetime(2026, 1, 5, 3, 45, tzinfo=UTC)
PIPELINE_STREAMS = ["MARKETDATA", "ANALYTICS", "SIGNALS", "EXECUTION"]
STRATEGIES = {
    "instances": [
        {"name": "sma_cross", "id": "sma", "params": {"fast": 3, "slow": 8, "allow_short": True}},
        {"name": "ehma_pivot", "id": "ehma", "params": {"period": 8, "pivot": 1, "allow_short": True}},
        {"name": "confluence_consumer", "id": "cc", "params": {"allow_short": True}},
    ]
}
EXECUTION = {
    "execution": {
        "limits": limits_off(),
        "sizing": {"quantity": 10, "allow_short": True},
        "bars_kept": 10_000,
    }
}


def make_bar(symbol: str, seed: int, i: int) -> OHLCVBar:
    close = 100 + 10 * math.sin((i + seed) / 9) + 3 * math.sin((i * 7 + seed) / 4)
    return bar(symbol, T0 + timedelta(minutes=i), close)


def bars(start: int, count: int) -> list[OHLCVBar]:
    """Bars ``start .. start+count-1`` of every symbol, in time order across the symbols."""
    return [make_bar(s, n, i) for i in range(start, start + count) for n, s in enumerate(SYMBOLS)]


async def wait(
    what: str,
    check: Callable[[], Awaitable[bool]],
    procs: list[subprocess.Popen[bytes]],
    timeout: float = 120,
) -> float:
    """Poll the coroutine function ``check`` until it is true; the perf_counter time it was seen true."""
    deadline = time.monotonic() + timeout
    while not await check():
        dead = [p.args for p in procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not reached (exited: {dead})")
        await asyncio.sleep(0.02)
    return time.perf_counter()


# -- the reference: a raw relay chain ------------------------------------------------------------------
def hop_stream(n: int) -> str:
    return "MARKETDATA" if n == 0 else f"HOP{n}"


async def relay(url: str, hop: int) -> None:
    """Relay of hop ``hop`` (1..HOPS): pull from the previous stream, republish to ``h<hop>.``, ack."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    durable = f"relay{hop}"
    config = ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT, max_ack_pending=BATCH * 10)
    await js.add_consumer(hop_stream(hop - 1), config)
    sub = await js.pull_subscribe_bind(durable=durable, stream=hop_stream(hop - 1))
    while True:
        try:
            msgs = await sub.fetch(BATCH, timeout=0.5)
        except nats.errors.TimeoutError:
            continue
        futs = [
            await js.publish_async(
                f"h{hop}.{m.subject}", m.data, headers={MSG_ID: f"{hop}:{m.headers[MSG_ID]}"}
            )
            for m in msgs
            if m.headers
        ]
        await asyncio.gather(*futs)
        for m in msgs:
            await m.ack()


async def relay_case(url: str, tmp: Path, feed: list[OHLCVBar]) -> float:
    bus = Bus(await nats.connect(url), "bench")
    await bus.ensure_streams(["MARKETDATA"])
    for hop in range(1, HOPS + 1):
        await bus.ensure_stream(hop_stream(hop), [f"h{hop}.>"])
    procs = [
        spawn([str(Path(__file__)), "--relay", url, str(hop)], {}, tmp / f"relay{hop}.log")
        for hop in range(1, HOPS + 1)
    ]
    try:

        async def ready() -> bool:
            return all([await bus.js.consumers_info(hop_stream(h - 1)) for h in range(1, HOPS + 1)])

        await wait("relay consumers", ready, procs)
        started = time.perf_counter()
        await bus.publish_many([(b.subject(), b) for b in feed])

        async def done() -> bool:
            return await stream_count(bus.js, hop_stream(HOPS)) >= len(feed)

        finished = await wait("relay chain", done, procs)
    finally:
        stop_all(procs)
        await bus.close()
    return len(feed) / (finished - started)


# -- the services --------------------------------------------------------------------------------------
def service_env(url: str, tmp: Path) -> dict[str, str]:
    (tmp / "strategies.yaml").write_text(yaml.safe_dump(STRATEGIES))
    (tmp / "execution.yaml").write_text(yaml.safe_dump(EXECUTION))
    return {
        "BASTION_NATS_URL": url,
        "BASTION_DATA_DIR": str(tmp / "data"),
        "BASTION_HOME": str(tmp / "home"),
        "BASTION_LOG_LEVEL": "warning",
        "BASTION_METRICS_PORT": "0",
        "BASTION_STRATEGY_WORKER": "bench1",
        "BASTION_STRATEGY_CONFIG": str(tmp / "strategies.yaml"),
        "BASTION_EXECUTION_CONFIG": str(tmp / "execution.yaml"),
        "BASTION_MD_LIVE_SECONDS": "0",
        "BASTION_AUTH_ROUNDS": "1000",
        "BASTION_DASHBOARD_HOST": "127.0.0.1",
        "BASTION_DASHBOARD_PORT": str(free_port("127.0.0.1")),
    }


def expected_durables() -> set[str]:
    per_symbol = {f"strategy-{kind}-{s}" for s in SYMBOLS for kind in ("bars", "insights")}
    return {"analytics-bars", "execution-bars", "execution-signals", *per_symbol}


@dataclass
class Orders:
    """Arrival time of the first accepted ``OrderEvent`` of every order, with the bar that started it."""

    arrived: dict[str, tuple[str, float]] = field(default_factory=dict)

    async def on_msg(self, msg: Msg) -> None:
        now = time.perf_counter()
        data = json.loads(msg.data)
        if data.get("status") == "accepted":
            self.arrived.setdefault(data["order_id"], (data["correlation_id"], now))


@dataclass
class Pipeline:
    bus: Bus
    procs: dict[str, subprocess.Popen[bytes]]
    published: int = 0

    async def drained(self) -> bool:
        if await stream_count(self.bus.js, "ANALYTICS") < self.published:
            return False
        backlog = await durable_backlog(self.bus.js, PIPELINE_STREAMS)
        return expected_durables() <= set(backlog) and not any(backlog.values())

    async def publish(self, feed: list[OHLCVBar]) -> None:
        await self.bus.publish_many([(b.subject(), b) for b in feed])
        self.published += len(feed)

    async def wait_drained(self, what: str, timeout: float = 180) -> float:
        return await wait(what, self.drained, list(self.procs.values()), timeout)

    async def split_done(self) -> bool:
        try:
            doc = json.loads((await (await self.bus.snapshots()).get("strategy.workers")).value or b"{}")
        except NotFoundError:
            return False
        return sorted(s for w in doc["workers"].values() for s in w["symbols"]) == SYMBOLS


async def paced(pipeline: Pipeline, feed: list[OHLCVBar]) -> tuple[dict[str, float], float]:
    """Publish ``feed`` at RATE bars/s on an absolute schedule; (bar id -> publish time, achieved rate)."""
    js, sent = pipeline.bus.js, {}
    futs = []
    started = time.perf_counter()
    for k, b in enumerate(feed):
        delay = started + k / RATE - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[str(b.event_id)] = time.perf_counter()
        futs.append(await js.publish_async(b.subject(), b.to_json(), headers={MSG_ID: str(b.event_id)}))
        if len(futs) >= 500:
            await asyncio.gather(*futs)
            futs = []
    await asyncio.gather(*futs)
    pipeline.published += len(feed)
    return sent, len(feed) / (time.perf_counter() - started)


@dataclass
class Figures:
    throughput: float = 0.0
    latencies: list[float] = field(default_factory=list)
    offered: float = 0.0
    sustained: float = 0.0
    lag: float = 0.0
    rss: dict[str, float | None] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per service during the throughput run


async def pipeline_case(url: str, tmp: Path, feed: list[OHLCVBar], latency_feed: list[OHLCVBar]) -> Figures:
    nc: NATS = await nats.connect(url)
    bus = Bus(nc, "bench")
    await bus.ensure_streams(list(STREAMS))
    env = service_env(url, tmp)
    procs = {
        svc: spawn(["-m", f"services.{svc}"], env, tmp / f"{svc}.log")
        for svc in ("execution", "analytics", "strategy", "marketdata", "auth", "dashboard")
    }
    pipeline, figures, orders = Pipeline(bus, procs), Figures(), Orders()
    try:
        await pipeline.publish(feed[: len(SYMBOLS)])  # one bar per symbol: the worker takes the symbols
        await wait("strategy split", pipeline.split_done, list(procs.values()))
        await pipeline.wait_drained("warm-up")
        cpu_before = {svc: cpu_seconds(p.pid) or 0.0 for svc, p in procs.items()}
        started = time.perf_counter()
        await pipeline.publish(feed[len(SYMBOLS) :])
        finished = await pipeline.wait_drained("throughput")
        figures.cpu = {svc: (cpu_seconds(p.pid) or 0.0) - cpu_before[svc] for svc, p in procs.items()}
        figures.throughput = (len(feed) - len(SYMBOLS)) / (finished - started)
        sub = await nc.subscribe("exec.v1.order.>", cb=orders.on_msg)
        sent, figures.offered = await paced(pipeline, latency_feed)
        published = time.perf_counter()
        drained = await pipeline.wait_drained("latency")
        await nc.flush()
        await sub.unsubscribe()
        first = min(sent.values())
        figures.lag, figures.sustained = drained - published, len(latency_feed) / (drained - first)
        figures.latencies = [(at - sent[bar]) * 1000 for bar, at in orders.arrived.values() if bar in sent]
        figures.rss = {svc: peak_rss_mib(p.pid) for svc, p in procs.items()}
    except RuntimeError:
        for svc in procs:
            sys.stderr.write(f"--- {svc}\n" + (tmp / f"{svc}.log").read_text()[-2000:])
        raise
    finally:
        stop_all(list(procs.values()))
        await bus.close()
    return figures


def report(figures: Figures, relay_rate: float, total: int) -> None:
    tp, ratio = figures.throughput, figures.throughput / relay_rate
    p50, p99 = pct(figures.latencies, 50), pct(figures.latencies, 99)
    print(f"pipeline: {total:,} bars, {len(SYMBOLS)} symbols, {HOPS} services")
    print(f"  throughput {tp:,.0f} bars/s; raw {HOPS}-hop relay chain {relay_rate:,.0f} bars/s")
    print(f"  ratio pipeline / relay {ratio:.2f} (goal >= 0.6)")
    kept_up = figures.offered >= 0.95 * RATE and figures.lag < 1.0
    print(
        f"  bar -> order latency at {figures.offered:,.0f} bars/s offered: p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms (goal <= 20 ms; {len(figures.latencies)} orders); "
        f"drained {figures.lag * 1000:,.0f} ms after the last bar"
    )
    if not kept_up:
        print(
            f"  NOTE: the pipeline did not keep up with {RATE:,.0f} bars/s; "
            f"it sustained {figures.sustained:,.0f} bars/s (the latencies include the queueing)"
        )
    cpu = ", ".join(f"{svc} {sec:.1f} s" for svc, sec in figures.cpu.items())
    print(f"  CPU time during the throughput run: {cpu}")
    for svc, mib in figures.rss.items():
        print(f"  peak RSS {svc}: {mib:,.1f} MiB" if mib is not None else f"  peak RSS {svc}: unknown")
    relay_ref = f"raw {HOPS}-hop JetStream relay {relay_rate:,.0f} bars/s"
    result("pipeline bars -> orders", tp, "bars/s", reference=relay_ref, ratio=ratio, goal="ratio >= 0.6")
    load = f"at {figures.offered:,.0f} bars/s" + ("" if kept_up else f", sustained {figures.sustained:,.0f}")
    result("pipeline bar->order p50", p50, "ms", reference=load)
    result("pipeline bar->order p99", p99, "ms", reference=load, goal="<= 20 ms")
    for svc, mib in figures.rss.items():
        if mib is not None:
            result(f"peak RSS {svc}", mib, "MiB", reference="VmHWM at the end")


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--relay":
        asyncio.run(relay(sys.argv[2], int(sys.argv[3])))
        return 0
    feed, latency_feed = bars(0, PER_SYMBOL), bars(PER_SYMBOL, LATENCY_BARS // len(SYMBOLS))
    with nats_server() as (server, tmp):
        relay_rate = asyncio.run(relay_case(server.url, tmp, feed[len(SYMBOLS) :]))
    with nats_server() as (server, tmp):
        figures = asyncio.run(pipeline_case(server.url, tmp, feed, latency_feed))
    report(figures, relay_rate, len(feed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
