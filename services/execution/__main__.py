"""``python -m services.execution``: risk manager, kill switch, paper broker, positions and the audit chain.

Reads the runtime settings (BASTION_NATS_URL, ...; see shared/runtime/settings.py) and the execution config
(BASTION_EXECUTION_CONFIG, default deploy/execution.yaml, else safe defaults). Exit code 2 on a bad config or
a ``live`` mode that cannot start.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import structlog
from nats.errors import Error as NatsError

from services.execution.adapters.auth_client import NatsVerifier
from services.execution.adapters.config_file import ConfigError, check_startable, load_config
from services.execution.adapters.store import ExecutionStore, OutboxRow
from services.execution.domain.audit import verify_chain
from services.execution.domain.config import ExecutionConfig
from services.execution.handlers import ExecutionService, Publish
from services.execution.snapshots import audit_snapshot, build_snapshots
from shared.contracts import subjects
from shared.contracts.market_data import OHLCVBar
from shared.contracts.risk import RiskCommand
from shared.contracts.signals import SignalEvent
from shared.runtime.bus import MSG_ID, Bus, acks_of
from shared.runtime.consumer import ConsumerSpec, decoder_for
from shared.runtime.service import ServiceParts, ServiceRunner, Task
from shared.runtime.settings import RuntimeSettings

STREAMS = ["EXECUTION", "AUDIT", "SIGNALS", "MARKETDATA"]
#: Snapshots (and the outbox's published mark, when no commit has carried it) at most this often.
SNAPSHOT_INTERVAL = 0.5
#: Unacked messages of a crashed process are redelivered after this; batches take well under a second.
ACK_WAIT = 5.0
#: Bars and signals per fetch and DuckDB transaction under a backlog (a trickle is still handled message
#: by message). A commit costs ~25 ms whatever its size, so at 100 the service spent most of a backlog
#: committing: 500 took the pipeline benchmark from ~940 to ~1,330 bars/s and its p99 at 1,000 bars/s from
#: ~1.9 s to ~0.9 s. A batch of 500 signals takes well under a second, far inside ``ACK_WAIT``.
BATCH = 500
log = structlog.get_logger()
#: Each consumer's inputs and the stream they come from: a processed input's row goes once that stream can
#: no longer deliver it again (``ExecutionStore.prune_processed``).
INPUT_STREAMS = {"bars": "MARKETDATA", "signals": "SIGNALS", "commands": "EXECUTION"}
#: How often the processed inputs are pruned (and once at start).
PRUNE_INTERVAL = 3600.0


#: Publishes in flight at once, well under nats-py's limit of pending acks (4,000), so that
#: ``publish_async`` never waits for a slot.
PUBLISH_WINDOW = 1000


def publisher(bus: Bus) -> Publish:
    """Outbox rows to JetStream with their event ids as ``Nats-Msg-Id``, returning once every one is acked.

    ``publish_async`` is called without ``wait_stall``: with a timeout, nats-py waits for its semaphore
    through ``asyncio.wait_for``, which yields to the event loop on every message, so its flusher wrote
    each message to the socket on its own (one ``send`` per message, most of the publish cost). Without
    it nothing yields while a window is queued, and the window goes out in one write; the semaphore never
    blocks because each window is fully acked (or failed) before the next one is queued."""

    async def publish(rows: Sequence[OutboxRow]) -> None:
        for start in range(0, len(rows), PUBLISH_WINDOW):
            futures = [
                await bus.js.publish_async(r.subject, r.payload, headers={MSG_ID: r.event_id})
                for r in rows[start : start + PUBLISH_WINDOW]
            ]
            await acks_of(futures)  # bounded: a lost ack fails the batch (retried) instead of hanging

    return publish


def consumers(svc: ExecutionService) -> list[ConsumerSpec]:
    return [
        ConsumerSpec(
            name="execution-commands",
            stream="EXECUTION",
            subjects=[subjects.RISK_COMMAND],
            decode=decoder_for(RiskCommand),  # type: ignore[arg-type]
            handler=svc.on_commands,
            handled=svc.handled("commands"),
            batch=10,
            ack_wait=ACK_WAIT,
        ),
        ConsumerSpec(
            name="execution-bars",
            stream="MARKETDATA",
            subjects=[subjects.ALL_BARS],
            decode=decoder_for(OHLCVBar),
            handler=svc.on_bars,
            handled=svc.handled("bars"),
            batch=BATCH,
            ack_wait=ACK_WAIT,
        ),
        ConsumerSpec(
            name="execution-signals",
            stream="SIGNALS",
            subjects=[subjects.ALL_SIGNALS],
            decode=decoder_for(SignalEvent),
            handler=svc.on_signals,
            handled=svc.handled("signals"),
            batch=BATCH,
            ack_wait=ACK_WAIT,
        ),
    ]


def snapshot_task(bus: Bus, svc: ExecutionService) -> Task:
    async def run(stop: asyncio.Event) -> None:
        while True:
            await svc.save_sent()
            if svc.dirty:
                svc.dirty = False
                await _write_snapshots(bus, svc)
            if stop.is_set():
                return
            try:
                await asyncio.wait_for(stop.wait(), timeout=SNAPSHOT_INTERVAL)
            except TimeoutError:
                pass

    return run


def prune_task(bus: Bus, svc: ExecutionService) -> Task:
    """At start and every ``PRUNE_INTERVAL``: delete the processed inputs that their streams, at the ages
    the server has for them now, no longer hold."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                kept = {
                    c: (await bus.js.stream_info(s)).config.max_age or 0.0 for c, s in INPUT_STREAMS.items()
                }
            except (NatsError, TimeoutError) as exc:  # NATS away: next round
                log.warning("execution.prune_skipped", error=repr(exc))
            else:
                deleted = await svc.prune_processed(kept)
                if deleted:
                    log.info("execution.processed_pruned", rows=deleted)
            try:
                await asyncio.wait_for(stop.wait(), timeout=PRUNE_INTERVAL)
            except TimeoutError:
                pass

    return run


async def _write_snapshots(bus: Bus, svc: ExecutionService) -> None:
    items = dict(build_snapshots(svc))
    head = svc.head
    items["execution.audit"] = audit_snapshot(
        svc.audit_ok, head.seq if head else 0, head.hash if head else "", datetime.now(UTC)
    )
    for key, value in items.items():
        try:
            await bus.put_snapshot(key, value)
        except Exception as exc:  # NATS down or a value too large: keep trading, retry next round
            svc.dirty = True
            log.warning("snapshot.failed", key=key, error=repr(exc))


def make_runner(settings: RuntimeSettings, config: ExecutionConfig | None = None) -> ServiceRunner:
    cfg = config or load_config()
    check_startable(cfg, broker_adapter=None)

    async def setup(bus: Bus) -> ServiceParts:
        store = ExecutionStore.open(settings.db_path("execution"))
        svc = ExecutionService(store, cfg, publisher(bus), NatsVerifier(bus.nc))
        svc.audit_ok = verify_chain(store.audit_rows())
        if not svc.audit_ok.ok:
            log.error("audit.chain_broken", row=svc.audit_ok.bad_seq, problem=svc.audit_ok.problem)
        await svc.flush()  # outputs committed before a crash but not yet published

        async def on_stop() -> None:
            await _write_snapshots(bus, svc)
            await svc.save_sent()
            store.close()

        def detail() -> dict[str, str]:
            return {"state": svc.core.state.risk.state, "mode": cfg.mode, "pruned": str(svc.pruned)} | {
                k: str(v) for k, v in svc.counts.items()
            }

        return ServiceParts(
            consumers=consumers(svc),
            tasks=[snapshot_task(bus, svc), prune_task(bus, svc)],
            on_stop=on_stop,
            detail=detail,
        )

    return ServiceRunner(settings=settings, setup=setup, streams=STREAMS, heartbeat_key="health.execution")


def main() -> int:
    try:
        runner = make_runner(RuntimeSettings.from_env("execution"))
    except (ConfigError, ValueError) as exc:
        print(f"execution: {exc}", file=sys.stderr)
        return 2
    return runner.main()


if __name__ == "__main__":
    raise SystemExit(main())
