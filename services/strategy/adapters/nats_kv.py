"""The strategy workers' use of NATS primitives: leases, per-symbol state, symbol discovery.

* ``STRATEGY_WORKERS`` (KV, max age = the lease TTL): one key per live worker, refreshed every TTL/3 with
  compare-and-set on its own last revision. A worker that dies stops refreshing and its key ages out.
  The value lists the symbols the worker is running right now (``held``).
* ``STRATEGY_STATE`` (KV, no TTL): one key per symbol, the symbol's ``SymbolBook``, written with the
  revision it was read at (the fence: a worker that lost a symbol cannot overwrite its new owner's work).

Key rule: a KV key (and a durable consumer name) is the symbol with ``&`` written as ``=`` (``M&M`` ->
``M=M``); ``=`` never occurs in a symbol, so the mapping is one-to-one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import structlog
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, ConsumerInfo, DeliverPolicy, KeyValueConfig, StorageType
from nats.js.errors import BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from services.strategy.handlers import StateConflict
from shared.contracts.subjects import normalize_symbol, signal_subject, symbol_of
from shared.runtime.bus import Bus

log = structlog.get_logger()

WORKERS_BUCKET = "STRATEGY_WORKERS"
STATE_BUCKET = "STRATEGY_STATE"
MSG_ID = "Nats-Msg-Id"


def symbol_key(symbol: str) -> str:
    return symbol.replace("&", "=")


async def bucket(js: JetStreamContext, name: str, *, ttl: float | None = None, replicas: int = 1) -> KeyValue:
    """Bucket ``name``, created if missing (an existing bucket keeps its own settings)."""
    try:
        return await js.key_value(name)
    except NotFoundError:
        pass
    try:
        cfg = KeyValueConfig(bucket=name, history=1, ttl=ttl, storage=StorageType.FILE, replicas=replicas)
        return await js.create_key_value(cfg)
    except BadRequestError:  # created concurrently by another worker
        return await js.key_value(name)


class KvStates:
    """``StateStore`` over the ``STRATEGY_STATE`` bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def load(self, symbol: str) -> tuple[bytes | None, int]:
        try:
            entry = await self.kv.get(symbol_key(symbol))
        except KeyNotFoundError:
            return None, 0
        return entry.value, int(entry.revision or 0)

    async def save(self, symbol: str, value: bytes, revision: int) -> int:
        key = symbol_key(symbol)
        try:
            if revision == 0:
                return int(await self.kv.create(key, value))
            return int(await self.kv.update(key, value, last=revision))
        except KeyWrongLastSequenceError as exc:
            raise StateConflict(f"state of {symbol} changed since revision {revision}") from exc


@dataclass(frozen=True)
class Lease:
    worker: str
    token: str
    held: tuple[str, ...]


class Membership:
    """This worker's lease in ``STRATEGY_WORKERS`` and the view of every live lease."""

    def __init__(self, js: JetStreamContext, kv: KeyValue, worker: str, token: str) -> None:
        self.js = js
        self.kv = kv
        self.worker = worker
        self.token = token
        self.revision: int | None = None  # None: this worker holds no lease

    def _value(self, held: list[str]) -> bytes:
        doc = {"worker": self.worker, "token": self.token, "held": sorted(held)}
        return json.dumps(doc, separators=(",", ":")).encode()

    async def acquire(self) -> bool:
        """Take the lease of this worker's name; False while another live process holds it."""
        for _ in range(3):
            try:
                self.revision = int(await self.kv.create(self.worker, self._value([])))
            except KeyWrongLastSequenceError:
                return False
            except KeyNotFoundError:
                # nats-py's create saw the key, then found it gone: the old lease aged out between
                # its two reads. The name is free now; try again.
                continue
            return True
        return False

    async def refresh(self, held: list[str]) -> bool:
        """Extend the lease (and publish ``held``); False if it was lost (expired or taken)."""
        if self.revision is None:
            return False
        try:
            self.revision = int(await self.kv.update(self.worker, self._value(held), last=self.revision))
        except (KeyWrongLastSequenceError, KeyNotFoundError):
            self.revision = None
            return False
        return True

    async def release(self) -> None:
        if self.revision is not None:
            try:
                await self.kv.delete(self.worker, last=self.revision)
            except (KeyWrongLastSequenceError, KeyNotFoundError):
                pass
            self.revision = None

    @property
    def owner_id(self) -> str:
        """This process's id in a symbol's state (``worker/token``)."""
        return f"{self.worker}/{self.token}"

    async def holds(self, owner_id: str, symbol: str) -> bool:
        """Whether the live lease of ``owner_id`` (read now, not from a cached view) lists ``symbol``."""
        worker, _, token = owner_id.partition("/")
        try:
            entry = await self.kv.get(worker)
        except KeyNotFoundError:
            return False
        doc = json.loads(entry.value or b"{}")
        return bool(doc.get("token") == token and symbol in doc.get("held", ()))

    async def members(self) -> dict[str, Lease]:
        """Every live lease, by worker name."""
        prefix = f"$KV.{WORKERS_BUCKET}."
        info = await self.js.stream_info(f"KV_{WORKERS_BUCKET}", subjects_filter=f"{prefix}>")
        out: dict[str, Lease] = {}
        for subject in sorted(info.state.subjects or {}):
            name = subject.removeprefix(prefix)
            try:
                entry = await self.kv.get(name)
            except KeyNotFoundError:  # deleted, or aged out since the listing
                continue
            doc = json.loads(entry.value or b"{}")
            out[name] = Lease(name, str(doc.get("token", "")), tuple(doc.get("held", ())))
        return out


async def discover_symbols(js: JetStreamContext) -> set[str]:
    """Every symbol that has bars in the MARKETDATA stream (its subjects, not its messages)."""
    info = await js.stream_info("MARKETDATA", subjects_filter="md.v1.bar.*")
    out: set[str] = set()
    for subject in info.state.subjects or {}:
        try:
            out.add(normalize_symbol(symbol_of(subject)))
        except ValueError:
            continue  # not a symbol under the rule: nothing to run on it
    return out


async def last_signal_id(js: JetStreamContext, symbol: str) -> str | None:
    """The event id of the last signal of ``symbol`` in the SIGNALS stream, if any."""
    try:
        msg = await js.get_last_msg("SIGNALS", signal_subject(symbol))
    except NotFoundError:
        return None
    return (msg.headers or {}).get(MSG_ID)


#: the consumer metadata key that records the ack floor a consumer was last rewound to
REWOUND_AT = "bastion_rewound_at_floor"


async def prepare_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> bool:
    """Create a shared per-symbol consumer, or rewind one that a dead worker left with unacked messages to
    just after its ack floor; True when it was rewound.

    Without the rewind the server would hand the new owner the newer messages at once and the dead worker's
    batch only after ``ack_wait``: the new owner would run later bars first and then skip the earlier ones
    as redeliveries. Only called for a symbol that no live worker holds, so nobody else is using it.

    A rewind makes a new consumer, whose messages count their deliveries from 1 again. So a consumer is
    rewound at most once to the same ack floor (the floor is kept in its metadata): a worker that died again
    without acking anything leaves the consumer as it is, for the loop to take the dead batch back after
    ``ack_wait`` with its delivery counts; and the loop of a rewound consumer handles its first batch one
    message at a time (``ConsumerLoop(suspect=True)``). A bar that kills every worker that runs it is then
    dead-lettered alone after ``max_deliver`` starts (``shared.runtime.consumer``) instead of killing the
    workers for ever.
    """
    name = config.durable_name or ""
    try:
        info = await js.consumer_info(stream, name)
    except NotFoundError:
        await js.add_consumer(stream, config)
        return False
    if not info.num_ack_pending:
        return False
    floor = info.ack_floor.stream_seq if info.ack_floor else 0
    if (info.config.metadata or {}).get(REWOUND_AT) == str(floor):
        log.warning("strategy.consumer_not_rewound", consumer=name, floor=floor, pending=info.num_ack_pending)
        return False
    await js.delete_consumer(stream, name)
    rewound = replace(
        config,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=floor + 1,
        metadata={**(config.metadata or {}), REWOUND_AT: str(floor)},
    )
    await js.add_consumer(stream, rewound)
    return True


class PreparedConsumers(JetStreamContext):
    """The JetStream context of the per-symbol loops: ``add_consumer`` keeps an existing consumer as it is.

    The shared ``ConsumerLoop`` (re)creates its consumer with ``DeliverPolicy.ALL`` when it starts, which the
    server refuses for a consumer ``prepare_consumer`` rewound to a start sequence.
    """

    async def add_consumer(
        self,
        stream: str,
        config: ConsumerConfig | None = None,
        timeout: float | None = None,
        **params: Any,
    ) -> ConsumerInfo:
        name = config.durable_name if config is not None else params.get("durable_name")
        if name:
            try:
                return await self.consumer_info(stream, name)
            except NotFoundError:
                pass
        return await super().add_consumer(stream, config, timeout, **params)


def loop_bus(bus: Bus) -> Bus:
    """``bus`` for the per-symbol loops: the same connection, with ``PreparedConsumers``."""
    view = Bus(bus.nc, bus.service, replicas=bus.replicas, max_age=bus.max_age)
    view.js = PreparedConsumers(bus.nc, timeout=10)
    return view
