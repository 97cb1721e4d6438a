"""Scaling per symbol: identical workers split the symbols between them with no coordinator.

Every tick (a third of the lease TTL) a worker:

1. holds (or waits to take) its lease in ``STRATEGY_WORKERS``; losing it stops every symbol at once;
2. reads the live leases and the symbols (the config's lists, or for ``"*"`` the bar subjects in the
   MARKETDATA stream) and computes the owner of every symbol by rendezvous hashing over the live worker
   names: every worker gets the same split;
3. stops the symbols it no longer owns (their loops finish and ack the batch in hand; the symbols stay
   listed as held for one more tick, longer than a stopped loop's pull request can linger on the server),
   then starts the ones it owns that no other live lease lists as held: the old owner stops before the
   new one starts;
4. refreshes its lease with the symbols it now runs, and (the first worker by name) writes the
   ``strategy.workers`` snapshot.

A symbol runs on two durable pull consumers shared by all workers (``strategy-bars-<SYM>`` and, when an
instance on it needs insights, ``strategy-insights-<SYM>``), so progress belongs to the symbol: the new
owner goes on from the last ack. A worker starts a symbol only after claiming it in the symbol's state
(``StrategyEngine.claim``), so two workers with briefly different views never pull the same consumer at
once (they would split its messages between them); the state's compare-and-set keeps a stale owner from
writing. A consumer left with delivered but unacked messages (a killed worker's batch, or what a stopped
loop's last pull had received) is rewound to its ack floor before the new owner starts it, once per floor,
and its loop handles the first batch one bar at a time (``ConsumerLoop(suspect=True)``: the rewound
consumer's delivery counts start from 1 again): a bar that kills every worker that runs it is then
dead-lettered alone after ``max_deliver`` starts.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from services.strategy.adapters.nats_kv import Lease, Membership, loop_bus, prepare_consumer, symbol_key
from services.strategy.domain.partition import assign
from services.strategy.handlers import StrategyEngine
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import SignalEvent
from shared.contracts.subjects import bar_subject, insight_subject
from shared.runtime.bus import Bus
from shared.runtime.consumer import ConsumerLoop, ConsumerSpec, Delivery, consumer_config, decoder_for

log = structlog.get_logger()

Discover = Callable[[], Awaitable[set[str]]]
SIGNALS_KEPT = 200
ACK_WAIT = 5.0  # a dead worker's batch in hand is redelivered to the new owner after this


@dataclass
class Running:
    stop: asyncio.Event
    loops: list[ConsumerLoop]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class Coordinator:
    def __init__(
        self,
        bus: Bus,
        engine: StrategyEngine,
        membership: Membership,
        discover: Discover,
        *,
        tick: float = 1.0,
        batch: int = 100,
    ) -> None:
        self.bus = bus
        self.loop_bus = loop_bus(bus)
        self.engine = engine
        self.membership = membership
        self.worker = membership.worker
        self.discover = discover
        self.tick_seconds = tick
        self.batch = batch
        self.running: dict[str, Running] = {}
        # Stopped this tick, still listed as held until the next refresh: a pull request of a stopped
        # loop may linger on the server for ``fetch_timeout`` and take a message for nobody.
        self._draining: set[str] = set()
        self.recent: deque[SignalEvent] = deque(maxlen=SIGNALS_KEPT)
        self._signals_dirty = False
        self._last_view: Any = None
        self._waiting_logged = False

    # -- the loop -------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                except Exception as exc:  # NATS restarting and such: try again next tick
                    log.warning("strategy.tick_failed", worker=self.worker, error=repr(exc))
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.tick_seconds)
                except TimeoutError:
                    pass
        finally:
            await self.stop_symbols(list(self.running))
            await self.membership.release()

    async def tick(self) -> None:
        if self.membership.revision is None and not await self._acquire():
            return
        members = await self.membership.members()
        mine = members.get(self.worker)
        if mine is None or mine.token != self.membership.token:
            await self._lost()
            return
        owned = set(assign(await self.discover(), members)[self.worker])
        released = sorted({s for s in self.running if s not in owned} | set(self._failed()))
        await self.stop_symbols(released)
        held_elsewhere = {s for m in members.values() if m.worker != self.worker for s in m.held}
        if not await self._start(sorted(owned - set(self.running) - held_elsewhere)):
            await self._lost()
            return
        held = sorted(set(self.running) | self._draining)
        self._draining = set(released)
        if not await self.membership.refresh(held):
            await self._lost()
            return
        members[self.worker] = Lease(self.worker, self.membership.token, tuple(held))
        if min(members) == self.worker:
            await self._put_workers(members)
        await self._put_signals()

    async def _start(self, symbols: list[str]) -> bool:
        """Announce ``symbols`` as held, then claim and start each; False if the lease was lost.

        Announcing first closes the gap a cached view leaves: a worker that finds our claim in a symbol's
        state reads our lease afresh and sees the symbol held."""
        if not symbols:
            return True
        if not await self.membership.refresh(sorted({*self.running, *self._draining, *symbols})):
            return False
        for symbol in symbols:
            try:
                await self.start_symbol(symbol)
            except Exception as exc:  # retried next tick; the lease must still be refreshed
                log.warning("strategy.symbol_start_failed", symbol=symbol, error=repr(exc))
        return True

    async def _acquire(self) -> bool:
        if await self.membership.acquire():
            log.info("strategy.lease_acquired", worker=self.worker)
            self._waiting_logged = False
            return True
        if not self._waiting_logged:
            log.warning(
                "strategy.lease_busy",
                worker=self.worker,
                hint="another live process uses this worker name, or a killed one's lease has not expired",
            )
            self._waiting_logged = True
        return False

    async def _lost(self) -> None:
        log.warning("strategy.lease_lost", worker=self.worker, symbols=len(self.running))
        await self.stop_symbols(list(self.running))
        self.membership.revision = None

    # -- symbols --------------------------------------------------------------------------------------
    def specs(self, symbol: str) -> list[ConsumerSpec]:
        key = symbol_key(symbol)
        engine = self.engine

        async def on_bars(batch: Sequence[Delivery]) -> None:
            await engine.on_bars(symbol, [d.event for d in batch])

        async def on_insights(batch: Sequence[Delivery]) -> None:
            await engine.on_insights(symbol, [d.event for d in batch])

        common: dict[str, Any] = {"batch": self.batch, "ack_wait": ACK_WAIT, "fetch_timeout": 0.5}
        out = [
            ConsumerSpec(
                f"strategy-bars-{key}",
                "MARKETDATA",
                [bar_subject(symbol)],
                decoder_for(OHLCVBar),
                on_bars,
                **common,
            )
        ]
        if engine.needs_insights(symbol):
            out.append(
                ConsumerSpec(
                    f"strategy-insights-{key}",
                    "ANALYTICS",
                    [insight_subject(symbol)],
                    decoder_for(InsightEvent),
                    on_insights,
                    **common,
                )
            )
        return out

    async def start_symbol(self, symbol: str) -> None:
        if not self.engine.strategies(symbol):
            return  # no instance runs on it
        if not await self.engine.claim(symbol, self.membership.holds):
            log.info("strategy.symbol_claimed_elsewhere", worker=self.worker, symbol=symbol)
            return
        specs = self.specs(symbol)
        rewound = set()
        for spec in specs:
            if await prepare_consumer(self.bus.js, spec.stream, consumer_config(spec)):
                log.info("strategy.consumer_rewound", worker=self.worker, consumer=spec.name)
                rewound.add(spec.name)
        stop = asyncio.Event()
        loops = [ConsumerLoop(self.loop_bus, spec, stop, suspect=spec.name in rewound) for spec in specs]
        running = Running(stop, loops)
        running.tasks = [asyncio.create_task(loop.run(), name=loop.spec.name) for loop in loops]
        for task in running.tasks:
            task.add_done_callback(self._loop_ended)
        self.running[symbol] = running
        log.info("strategy.symbol_started", worker=self.worker, symbol=symbol)

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("strategy.loop_failed", loop=task.get_name(), error=repr(task.exception()))

    def lost(self, symbol: str) -> None:
        """The engine found another worker's claim on ``symbol``: stop its loops without acking more."""
        running = self.running.get(symbol)
        if running is not None:
            log.warning("strategy.symbol_lost", worker=self.worker, symbol=symbol)
            running.stop.set()

    def _failed(self) -> list[str]:
        """Symbols lost to another claim or with a loop that ended by itself (cleaned up this tick)."""
        return [s for s, r in self.running.items() if r.stop.is_set() or any(t.done() for t in r.tasks)]

    async def stop_symbols(self, symbols: list[str]) -> None:
        stopping = [self.running.pop(s) for s in symbols if s in self.running]
        for r in stopping:
            r.stop.set()
        await asyncio.gather(*(t for r in stopping for t in r.tasks), return_exceptions=True)
        for symbol in symbols:
            self.engine.release(symbol)
            log.info("strategy.symbol_stopped", worker=self.worker, symbol=symbol)

    # -- snapshots ------------------------------------------------------------------------------------
    def record(self, signals: Sequence[SignalEvent]) -> None:
        self.recent.extend(signals)
        self._signals_dirty = True

    async def _put_workers(self, members: dict[str, Lease]) -> None:
        view = {m: sorted(lease.held) for m, lease in sorted(members.items())}
        if view == self._last_view:
            return
        owners = {s: m for m, held in view.items() for s in held}
        await self.bus.put_snapshot(
            "strategy.workers",
            {
                "kind": "strategy.workers",
                "version": 1,
                "producer": "strategy",
                "updated_at": datetime.now(UTC).isoformat(),
                "workers": {m: {"symbols": held} for m, held in view.items()},
                "symbols": dict(sorted(owners.items())),
            },
        )
        self._last_view = view

    async def _put_signals(self) -> None:
        if not self._signals_dirty:
            return
        signals = list(self.recent)
        await self.bus.put_snapshot(
            f"strategy.signals.{self.worker}",
            {
                "kind": "strategy.signals",
                "version": 1,
                "producer": "strategy",
                "updated_at": max(s.bar_timestamp for s in signals).isoformat(),
                "worker": self.worker,
                "signals": [s.model_dump(mode="json") for s in signals],
            },
        )
        self._signals_dirty = False

    def loops(self) -> list[ConsumerLoop]:
        """The consumer loops of the symbols this worker runs now (the heartbeat counts theirs)."""
        return [loop for r in self.running.values() for loop in r.loops]

    def detail(self) -> dict[str, str]:
        loops = self.loops()
        return {
            "worker": self.worker,
            "symbols": str(len(self.running)),
            "processed": str(sum(loop.stats.processed for loop in loops)),
            "lag": str(sum(loop.stats.lag for loop in loops)),
            "dead_lettered": str(sum(loop.stats.dead_lettered for loop in loops)),
        }
