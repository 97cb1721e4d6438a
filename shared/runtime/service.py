"""Runs a service: connect, create streams and KV, start consumers and tasks, heartbeat, drain on signal.

A service's ``__main__`` builds a ``ServiceRunner`` with a ``setup`` coroutine that receives the
connected ``Bus`` and returns the service's ``ServiceParts`` (its consumers and background tasks).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from nats.errors import Error as NatsError

from shared.contracts import Heartbeat
from shared.runtime.bus import Bus
from shared.runtime.consumer import ConsumerLoop, ConsumerSpec
from shared.runtime.duck import DatabaseUnusable
from shared.runtime.logging import configure_logging
from shared.runtime.metrics import serve_metrics
from shared.runtime.retention import age_differs, describe_age
from shared.runtime.settings import RuntimeSettings

Task = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
#: How long the "stopping" heartbeat may take before the stop goes on without it.
LAST_BEAT_SECONDS = 1.0


@dataclass
class ServiceParts:
    consumers: Sequence[ConsumerSpec] = ()
    tasks: Sequence[Task] = ()
    on_stop: Callable[[], Awaitable[None]] | None = None
    detail: Callable[[], dict[str, str]] | None = None
    #: consumer loops the service starts and stops itself (strategy: one pair per symbol it owns), counted
    #: in the heartbeat with those of ``consumers``
    loops: Callable[[], Sequence[ConsumerLoop]] | None = None


@dataclass
class ServiceRunner:
    settings: RuntimeSettings
    setup: Callable[[Bus], Awaitable[ServiceParts]]
    streams: Sequence[str] = ()
    heartbeat_key: str | None = None
    heartbeat_interval: float = 2.0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def main(self) -> int:
        """Entry point for ``python -m services.<svc>``; returns the process exit code."""
        try:
            return asyncio.run(self.run())
        except KeyboardInterrupt:
            return 130

    async def run(self) -> int:
        log = configure_logging(self.settings.service, self.settings.log_level)
        serve_metrics(self.settings.metrics_port)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        bus = await Bus.connect(self.settings, replicas=self.settings.stream_replicas)
        started_at = datetime.now(UTC)
        for cfg in await bus.ensure_streams(self.streams):
            wanted = bus.max_age.get(cfg.name or "", 0.0)
            if age_differs(cfg.max_age, wanted):  # set at creation only: an operator applies it
                log.warning(
                    "stream.max_age_differs",
                    stream=cfg.name,
                    keeps=describe_age(cfg.max_age),
                    configured=describe_age(wanted),
                    fix="bastion streams apply",
                )
        await bus.snapshots()
        try:
            parts = await self.setup(bus)
        except DatabaseUnusable as exc:  # one line a person can act on, not a traceback
            log.error("service.database_unusable", error=str(exc))
            await bus.close()
            return 2
        loops = [ConsumerLoop(bus, spec, self.stop) for spec in parts.consumers]
        running = [asyncio.create_task(c.run(), name=c.spec.name) for c in loops]
        running += [asyncio.create_task(task(self.stop)) for task in parts.tasks]
        beat = asyncio.create_task(self._heartbeat(bus, loops, parts, started_at))
        log.info("service.started", instance=self.settings.instance, consumers=len(loops))
        stopper = asyncio.create_task(self.stop.wait())
        done, _ = await asyncio.wait([stopper, *running], return_when=asyncio.FIRST_COMPLETED)
        code = 0
        for task in done:
            failure = None if task is stopper else task.exception()
            if isinstance(failure, DatabaseUnusable):  # as from setup: the file, and what to do
                log.error("service.database_unusable", error=str(failure))
                code = 2
            elif failure is not None:
                log.error("service.task_failed", task=task.get_name(), error=repr(failure))
                code = 1
        self.stop.set()
        await asyncio.gather(*running, return_exceptions=True)
        beat.cancel()
        await self._last_beat(bus, loops, parts, started_at)
        if parts.on_stop is not None:
            await parts.on_stop()
        await bus.close()
        log.info("service.stopped", code=code)
        return code

    async def _heartbeat(
        self, bus: Bus, loops: list[ConsumerLoop], parts: ServiceParts, started_at: datetime
    ) -> None:
        while not self.stop.is_set():
            try:
                await self._beat(bus, loops, parts, started_at, "ok")
            except Exception as exc:  # NATS down: keep running, beat again later
                structlog.get_logger().warning("heartbeat.failed", error=repr(exc))
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=self.heartbeat_interval)
            except TimeoutError:
                pass

    async def _last_beat(
        self, bus: Bus, loops: list[ConsumerLoop], parts: ServiceParts, started_at: datetime
    ) -> None:
        """The "stopping" heartbeat, if NATS takes it within a second: without NATS (its server stopped
        with this service, say) the stop goes on, the state stays committed, and the heartbeat ages out."""
        if not bus.nc.is_connected:
            structlog.get_logger().warning("service.stopping_unannounced", reason="not connected to NATS")
            return
        try:
            await asyncio.wait_for(self._beat(bus, loops, parts, started_at, "stopping"), LAST_BEAT_SECONDS)
        except (TimeoutError, NatsError) as exc:
            structlog.get_logger().warning(
                "service.stopping_unannounced", reason=str(exc) or type(exc).__name__
            )

    async def _beat(
        self, bus: Bus, loops: list[ConsumerLoop], parts: ServiceParts, started_at: datetime, status: str
    ) -> None:
        now = datetime.now(UTC)
        loops = [*loops, *(parts.loops() if parts.loops else ())]
        beat = Heartbeat.build(
            producer=self.settings.service,
            key=f"{self.settings.instance}|{now.isoformat()}",
            occurred_at=now,
            service=self.settings.service,
            instance=self.settings.instance,
            status=status,
            started_at=started_at,
            processed=sum(c.stats.processed for c in loops),
            failed=sum(c.stats.failed for c in loops),
            dead_lettered=sum(c.stats.dead_lettered for c in loops),
            lag=sum(c.stats.lag for c in loops),
            detail=parts.detail() if parts.detail else {},
        )
        await bus.put_snapshot(self.heartbeat_key or f"health.{self.settings.service}", beat)
