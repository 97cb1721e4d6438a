"""``python -m services.strategy``: one strategy worker; run any number of identical ones.

Environment (besides the shared runtime's):

* ``BASTION_STRATEGY_CONFIG``: the strategies config (default deploy/strategies.yaml);
* ``BASTION_STRATEGY_WORKER``: the worker's name (default: the host name), which names its lease key,
  ``strategy-<worker>.duckdb`` and ``health.strategy.<worker>``;
* ``BASTION_STRATEGY_LEASE_SECONDS``: lease TTL (default 3) when this worker creates the
  ``STRATEGY_WORKERS`` bucket; an existing bucket keeps its own, and every worker ticks at a third of it.

Worker names are 1-64 characters of ``A-Z a-z 0-9 _ -``. Without ``BASTION_STRATEGY_WORKER`` the host name
is used, with every other character replaced by ``-``: each ``docker compose --scale`` container has its
own host name. Two live processes with the same name cannot both run: the second waits for the lease of the
name (a killed worker's lease expires after the TTL, so a restarted one gets it back).
"""

from __future__ import annotations

import os
import re
import socket
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

from services.strategy.adapters.nats_kv import (
    STATE_BUCKET,
    WORKERS_BUCKET,
    KvStates,
    Membership,
    bucket,
    discover_symbols,
    last_signal_id,
)
from services.strategy.adapters.store import SignalLog
from services.strategy.config import Instance, load_config
from services.strategy.domain.registry import StrategyConfigError
from services.strategy.handlers import StrategyEngine
from services.strategy.workers import Coordinator, Discover
from shared.contracts.signals import SignalEvent
from shared.runtime.bus import Bus
from shared.runtime.service import ServiceParts, ServiceRunner
from shared.runtime.settings import RuntimeSettings, SettingsError

STREAMS = ["MARKETDATA", "ANALYTICS", "SIGNALS", "DLQ"]
WORKER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def worker_name(environ: dict[str, str] | None = None, hostname: str | None = None) -> str:
    """The worker's name from ``BASTION_STRATEGY_WORKER``, else from the host name (see module doc)."""
    env = os.environ if environ is None else environ
    given = env.get("BASTION_STRATEGY_WORKER", "").strip()
    if given:
        if not WORKER_NAME.fullmatch(given):
            raise StrategyConfigError(
                f"BASTION_STRATEGY_WORKER={given!r}: use 1-64 characters of A-Z, a-z, 0-9, '_' or '-'"
            )
        return given
    host = re.sub(r"[^A-Za-z0-9_-]", "-", hostname if hostname is not None else socket.gethostname())
    return host[:64] or "worker"


def config_path() -> Path:
    return Path(os.environ.get("BASTION_STRATEGY_CONFIG", "").strip() or "deploy/strategies.yaml")


def lease_seconds() -> float:
    raw = os.environ.get("BASTION_STRATEGY_LEASE_SECONDS", "").strip() or "3"
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 1.0 <= value <= 60.0:
        raise StrategyConfigError(f"BASTION_STRATEGY_LEASE_SECONDS={raw!r}: a number of seconds in 1..60")
    return value


def symbol_source(bus: Bus, instances: Sequence[Instance]) -> Discover:
    """The symbols to run: every listed symbol, plus every symbol with bars when an instance says "*"."""
    listed = {s for i in instances if i.symbols != "*" for s in i.symbols}
    everything = any(i.symbols == "*" for i in instances)

    async def discover() -> set[str]:
        return listed | (await discover_symbols(bus.js) if everything else set())

    return discover


def make_runner(settings: RuntimeSettings, config: Path, worker: str, lease: float = 3.0) -> ServiceRunner:
    instances = load_config(config)  # a bad config fails before connecting, with a clear message

    async def setup(bus: Bus) -> ServiceParts:
        log = SignalLog.open(settings.db_path(f"strategy-{worker}"))
        members_kv = await bucket(bus.js, WORKERS_BUCKET, ttl=lease, replicas=bus.replicas)
        states_kv = await bucket(bus.js, STATE_BUCKET, replicas=bus.replicas)
        ttl = (await members_kv.status()).ttl or lease

        async def publish(signals: Sequence[SignalEvent]) -> None:
            await bus.publish_many([(s.subject(), s) for s in signals])

        async def last_published(symbol: str) -> str | None:
            return await last_signal_id(bus.js, symbol)

        def record(signals: Sequence[SignalEvent]) -> None:
            log.record(signals)
            coord.record(signals)

        membership = Membership(bus.js, members_kv, worker, uuid.uuid4().hex)
        engine = StrategyEngine(
            instances,
            KvStates(states_kv),
            publish,
            record=record,
            last_published=last_published,
            owner=membership.owner_id,
            on_lost=lambda symbol: coord.lost(symbol),
        )
        coord = Coordinator(bus, engine, membership, symbol_source(bus, instances), tick=ttl / 3)
        coord.recent.extend(log.recent())

        async def on_stop() -> None:
            log.close()

        return ServiceParts(tasks=[coord.run], on_stop=on_stop, detail=coord.detail, loops=coord.loops)

    return ServiceRunner(
        settings=settings, setup=setup, streams=STREAMS, heartbeat_key=f"health.strategy.{worker}"
    )


def main() -> int:
    try:
        worker = worker_name()
        runner = make_runner(RuntimeSettings.from_env("strategy"), config_path(), worker, lease_seconds())
    except (StrategyConfigError, SettingsError) as exc:
        print(f"strategy: {exc}", file=sys.stderr, flush=True)
        return 2
    return runner.main()


if __name__ == "__main__":
    raise SystemExit(main())
