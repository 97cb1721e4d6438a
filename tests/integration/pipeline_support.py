"""Helpers for the whole-pipeline fault tests (no tests here): every service as a real
``python -m services.<svc>`` process on one nats-server, a bar feed, a drain probe and the figures each
run produced (stream counts and unique ids of insights, signals, decisions, orders and trades)."""

from __future__ import annotations

import asyncio
import json
import signal as os_signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NATS

from shared.contracts import subjects
from shared.contracts.market_data import OHLCVBar
from shared.runtime.bus import MSG_ID, Bus
from tests.integration.fault_support import count_subject, log_tail, read_subject, spawn, terminate
from tests.integration.test_execution_support import write_config
from tests.support.wait import eventually
from tests.unit.analytics.support import bars

SERVICES = ("analytics", "strategy", "execution", "marketdata", "auth")
#: sma_cross on three symbols (price only), confluence_consumer on the fourth (needs analytics' insights).
#: One strategy per symbol: with limits off, execution's output then cannot depend on arrival order.
PRICE_SYMBOLS = ("INFY", "TCS", "WIPRO")
INSIGHT_SYMBOLS = ("HDFC",)
SYMBOLS = PRICE_SYMBOLS + INSIGHT_SYMBOLS
STRATEGIES = f"""
instances:
  - {{name: sma_cross, id: sma-5-20, params: {{fast: 5, slow: 20, allow_short: false}},
     symbols: [{", ".join(PRICE_SYMBOLS)}]}}
  - {{name: confluence_consumer, id: cc-50, params: {{min_confidence: 0.5, exit_confidence: 0.3}},
     symbols: [{", ".join(INSIGHT_SYMBOLS)}]}}
"""
STREAMS = ["MARKETDATA", "ANALYTICS", "SIGNALS", "EXECUTION", "AUDIT", "DLQ"]
FIXED_CONSUMERS = {
    "analytics-bars": "MARKETDATA",
    "execution-bars": "MARKETDATA",
    "execution-signals": "SIGNALS",
    "execution-commands": "EXECUTION",
}


def consumers() -> list[tuple[str, str]]:
    """Every durable ``(name, stream)`` in pipeline order: upstream ones first (see ``drained``)."""
    strategy = [(f"strategy-bars-{s}", "MARKETDATA") for s in SYMBOLS]
    strategy += [(f"strategy-insights-{s}", "ANALYTICS") for s in INSIGHT_SYMBOLS]
    return [("analytics-bars", "MARKETDATA"), *strategy] + [
        (n, s) for n, s in FIXED_CONSUMERS.items() if n.startswith("execution")
    ]


def feed(per_symbol: int) -> list[OHLCVBar]:
    """``per_symbol`` synthetic bars of every symbol, interleaved in time order."""
    series = [bars(s, per_symbol, seed=40 + i) for i, s in enumerate(SYMBOLS)]
    return [b for step in zip(*series, strict=True) for b in step]


async def publish_bars(nc: NATS, items: Sequence[OHLCVBar], chunk: int = 500) -> None:
    """Publish with each bar's event id as ``Nats-Msg-Id``; a bounded number of acks in flight."""
    js = nc.jetstream()
    for start in range(0, len(items), chunk):
        futures = [
            await js.publish_async(b.subject(), b.to_json(), headers={MSG_ID: str(b.event_id)})
            for b in items[start : start + chunk]
        ]
        await asyncio.gather(*futures)


@dataclass
class Pipeline:
    """The five services as subprocesses sharing one data dir; ``kill`` SIGKILLs and restarts one."""

    nats_url: str
    tmp: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.tmp / "data"

    def env(self, name: str) -> dict[str, str]:
        if name == "analytics":
            return {"BASTION_ANALYTICS_BATCH": "100", "BASTION_ANALYTICS_ACK_WAIT": "2"}
        if name == "strategy":
            config = self.tmp / "strategies.yaml"
            config.write_text(STRATEGIES)
            return {
                "BASTION_STRATEGY_CONFIG": str(config),
                "BASTION_STRATEGY_WORKER": "w1",
                "BASTION_STRATEGY_LEASE_SECONDS": "1",
            }
        if name == "execution":
            # every limit off (rate, exposure and position limits depend on the order in which signals of
            # different symbols arrive); the default bars_kept: a signal arriving after all its symbol's
            # bars is priced from the bar history
            return {"BASTION_EXECUTION_CONFIG": str(write_config(self.tmp))}
        if name == "auth":
            return {"BASTION_AUTH_ROUNDS": "4"}
        return {}

    def start(self, name: str) -> None:
        self.procs[name] = spawn(name, self.nats_url, self.data, **self.env(name))

    def start_all(self) -> None:
        for name in SERVICES:
            self.start(name)

    def alive(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"{name} died:\n{log_tail(self.data, name)}"

    async def kill_and_restart(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(os_signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 10)
        self.start(name)

    async def stop(self) -> dict[str, int | str]:
        codes = await asyncio.gather(*(terminate(proc, 15) for proc in self.procs.values()))
        return dict(zip(self.procs, codes, strict=True))

    def logs(self) -> dict[str, str]:
        return {name: log_tail(self.data, name) for name in self.procs}


async def consumer_state(bus: Bus, stream: str, name: str) -> tuple[int, int] | None:
    """``(pending, unacked)`` of a durable consumer, None while it does not exist."""
    try:
        info = await bus.js.consumer_info(stream, name)
    except Exception:  # not created yet (a strategy worker makes its per-symbol consumers on discovery)
        return None
    return int(info.num_pending or 0), int(info.num_ack_pending or 0)


async def drained(bus: Bus, total_bars: int, state: dict[str, Any]) -> bool:
    """Every bar has its insight and every durable consumer is empty, checked upstream first: once an
    upstream consumer is empty its outputs are published, so a downstream one checked later has them."""
    state["insights"] = await count_subject(bus.nc, "ANALYTICS", subjects.ALL_INSIGHTS)
    if state["insights"] != total_bars:
        return False
    for name, stream in consumers():
        state[name] = await consumer_state(bus, stream, name)
        if state[name] != (0, 0):
            return False
    return True


async def wait_drained(bus: Bus, pipeline: Pipeline, total_bars: int, timeout: float) -> None:
    state: dict[str, Any] = {}

    async def probe() -> bool:
        pipeline.alive()
        return await drained(bus, total_bars, state)

    try:
        await eventually(probe, timeout=timeout, interval=0.2, what="every consumer drained")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; state: {state}") from None


@dataclass(frozen=True)
class Figures:
    """What one run left in the streams: message counts and unique ids per kind."""

    counts: dict[str, int]
    unique: dict[str, int]
    keys: dict[str, frozenset[str]]
    dead: int

    def line(self) -> str:
        return " ".join(f"{k} {self.counts[k]} (unique {self.unique[k]})" for k in self.counts)


#: kind -> (stream, subject, the field that names the cause, the field that names the output)
KINDS: dict[str, tuple[str, str, str, str]] = {
    "insights": ("ANALYTICS", subjects.ALL_INSIGHTS, "bar_event_id", "event_id"),
    "signals": ("SIGNALS", subjects.ALL_SIGNALS, "causation_id", "event_id"),
    "decisions": ("EXECUTION", "risk.v1.decision.>", "signal_id", "event_id"),
    "orders": ("EXECUTION", subjects.ALL_ORDERS, "order_id", "event_id"),
    "trades": ("EXECUTION", subjects.ALL_TRADES, "order_id", "event_id"),
}


async def figures(nc: NATS) -> Figures:
    counts: dict[str, int] = {}
    unique: dict[str, int] = {}
    keys: dict[str, frozenset[str]] = {}
    for kind, (stream, subject, cause, own) in KINDS.items():
        docs = [json.loads(d) for _, d in await read_subject(nc, stream, subject)]
        counts[kind] = await count_subject(nc, stream, subject)
        ids = {str(d[own]) for d in docs}
        causes = frozenset(f"{d[cause]}|{d.get('status', d.get('approved', ''))}" for d in docs)
        assert len(docs) == counts[kind], f"{kind}: read {len(docs)} of {counts[kind]}"
        unique[kind] = min(len(ids), len(causes))
        keys[kind] = causes
    dead = await count_subject(nc, "DLQ", "dlq.>")
    return Figures(counts, unique, keys, dead)
