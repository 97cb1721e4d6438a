"""The NATS connection of one service: streams, KV snapshots, deduplicated publishing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import nats
import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, PubAck, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel

from shared.contracts import Event
from shared.contracts.subjects import ATTEMPTS_BUCKET, SNAPSHOTS_BUCKET, STREAMS
from shared.runtime.retention import DEDUPE_WINDOW_SECONDS, DEFAULT_MAX_AGE
from shared.runtime.settings import RuntimeSettings

log = structlog.get_logger()

#: Snapshot values are bounded so the dashboard stays fast.
SNAPSHOT_MAX_BYTES = 1024 * 1024
#: A consumer's attempts entry outlives any recovery; a stale one ages out.
ATTEMPTS_TTL_SECONDS = 7 * 86400.0
MSG_ID = "Nats-Msg-Id"


async def connect(settings: RuntimeSettings, *, name: str | None = None) -> NATS:
    """Connect and keep reconnecting forever (nats-py gives up after ~2 minutes by default)."""
    made: list[NATS] = []

    async def on_error(exc: Exception) -> None:
        log.warning("nats.error", error=str(exc))

    async def on_disconnect() -> None:
        # nats-py calls this on our own close too (the status is closed by then): no warning for that,
        # which a CLI command would print on every run
        if not (made and made[0].is_closed):
            log.warning("nats.disconnected")

    async def on_reconnect() -> None:
        log.info("nats.reconnected")

    options: dict[str, Any] = {
        "name": name or f"{settings.service}:{settings.instance}",
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "connect_timeout": 2,
        "allow_reconnect": True,
        "error_cb": on_error,
        "disconnected_cb": on_disconnect,
        "reconnected_cb": on_reconnect,
    }
    if settings.nats_user:
        options["user"] = settings.nats_user
        options["password"] = settings.nats_password or ""
    made.append(await nats.connect(settings.servers, **options))
    return made[0]


#: What a CLI command that cannot reach NATS adds to its error.
UNREACHABLE_HINT = "(is `bastion up` running? see BASTION_NATS_URL)"


class NatsUnreachable(Exception):
    """``connect_once`` found no server; the message names the URL."""


async def connect_once(settings: RuntimeSettings, errors: list[str] | None = None) -> NATS:
    """For a CLI command: give up after a few seconds instead of reconnecting for ever. Errors the server
    reports later (a permissions violation) go to ``errors`` rather than to nats-py's traceback."""

    async def collect(exc: Exception) -> None:
        if errors is not None:
            errors.append(str(exc))

    options: dict[str, Any] = {  # a refused connection is retried once, soon: not nats-py's 2 s later
        "connect_timeout": 3,
        "max_reconnect_attempts": 1,
        "reconnect_time_wait": 0.2,
        "error_cb": collect,
    }
    if settings.nats_user:
        options |= {"user": settings.nats_user, "password": settings.nats_password or ""}
    try:
        return await nats.connect(settings.servers, **options)
    except Exception as exc:
        raise NatsUnreachable(f"cannot reach NATS at {settings.nats_url}: {exc} {UNREACHABLE_HINT}") from None


class Bus:
    """One service's handle on NATS and JetStream."""

    def __init__(
        self, nc: NATS, service: str, *, replicas: int = 1, max_age: Mapping[str, float] | None = None
    ) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=10)
        self.service = service
        self.replicas = replicas
        #: seconds each stream keeps its messages (0: forever), ``shared.runtime.retention``
        self.max_age: Mapping[str, float] = DEFAULT_MAX_AGE if max_age is None else max_age
        self._kv: KeyValue | None = None
        self._attempts: KeyValue | None = None

    @classmethod
    async def connect(cls, settings: RuntimeSettings, *, replicas: int = 1) -> Bus:
        return cls(
            await connect(settings), settings.service, replicas=replicas, max_age=settings.stream_max_age
        )

    async def close(self) -> None:
        if not self.nc.is_closed:
            try:
                await self.nc.drain()
            except Exception as exc:  # draining a dead connection must not block shutdown
                log.warning("nats.drain_failed", error=str(exc))
                try:
                    await self.nc.close()
                except asyncio.CancelledError:
                    # nats-py's close of a connection in the middle of reconnecting can let the
                    # cancellation of its own reconnect task escape; only ours may propagate.
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise
                    log.warning("nats.close_interrupted")

    # -- streams and KV ---------------------------------------------------------------------------
    async def ensure_stream(
        self, name: str, subjects: Sequence[str] | None = None, **config: Any
    ) -> StreamConfig:
        """Create stream ``name`` (subjects from ``STREAMS``, age from ``max_age`` by default) or leave an
        existing one alone; returns the stream's configuration on the server."""
        cfg = StreamConfig(
            name=name,
            subjects=list(subjects if subjects is not None else STREAMS[name]),
            storage=StorageType.FILE,
            duplicate_window=config.pop("duplicate_window", DEDUPE_WINDOW_SECONDS),
            num_replicas=config.pop("num_replicas", self.replicas),
            max_age=config.pop("max_age", self.max_age.get(name, 0.0)),
            **config,
        )
        try:
            return (await self.js.stream_info(name)).config
        except NotFoundError:
            try:
                return (await self.js.add_stream(cfg)).config
            except BadRequestError as exc:  # created concurrently by another instance
                if "already in use" not in str(exc) and getattr(exc, "err_code", None) != 10058:
                    raise
                return (await self.js.stream_info(name)).config

    async def ensure_streams(self, names: Iterable[str]) -> list[StreamConfig]:
        return [await self.ensure_stream(name) for name in names]

    async def attempts(self) -> KeyValue:
        """The ``CONSUMER_ATTEMPTS`` key-value bucket, created if missing."""
        if self._attempts is None:
            try:
                self._attempts = await self.js.key_value(ATTEMPTS_BUCKET)
            except NotFoundError:
                config = KeyValueConfig(
                    bucket=ATTEMPTS_BUCKET,
                    history=1,
                    ttl=ATTEMPTS_TTL_SECONDS,
                    storage=StorageType.FILE,
                    replicas=self.replicas,
                )
                try:
                    self._attempts = await self.js.create_key_value(config)
                except BadRequestError:
                    self._attempts = await self.js.key_value(ATTEMPTS_BUCKET)
        return self._attempts

    async def snapshots(self) -> KeyValue:
        """The ``SNAPSHOTS`` key-value bucket, created if missing."""
        if self._kv is None:
            try:
                self._kv = await self.js.key_value(SNAPSHOTS_BUCKET)
            except NotFoundError:
                try:
                    self._kv = await self.js.create_key_value(
                        KeyValueConfig(
                            bucket=SNAPSHOTS_BUCKET,
                            history=1,
                            max_value_size=SNAPSHOT_MAX_BYTES,
                            storage=StorageType.FILE,
                            replicas=self.replicas,
                        )
                    )
                except BadRequestError:
                    self._kv = await self.js.key_value(SNAPSHOTS_BUCKET)
        return self._kv

    async def put_snapshot(self, key: str, value: BaseModel | dict[str, Any] | list[Any] | bytes) -> None:
        """Write a dashboard snapshot. Values larger than ``SNAPSHOT_MAX_BYTES`` are refused."""
        if isinstance(value, BaseModel):
            data = value.model_dump_json(by_alias=True).encode()
        elif isinstance(value, bytes):
            data = value
        else:
            data = json.dumps(value, separators=(",", ":"), default=str).encode()
        if len(data) > SNAPSHOT_MAX_BYTES:
            raise ValueError(f"snapshot {key} is {len(data)} bytes, over {SNAPSHOT_MAX_BYTES}")
        kv = await self.snapshots()
        await kv.put(key, data)

    # -- publishing -------------------------------------------------------------------------------
    async def publish(self, event: Event, subject: str | None = None) -> PubAck:
        """Publish ``event`` to JetStream with ``Nats-Msg-Id = event_id`` and wait for the server's ack."""
        target = subject or event.subject()  # type: ignore[attr-defined]
        return await self.js.publish(target, event.to_json(), headers={MSG_ID: str(event.event_id)})

    async def publish_many(self, events: Iterable[tuple[str, Event]], *, window: int = 2000) -> int:
        """Publish many events, keeping up to ``window`` acks in flight; returns how many were new
        (not dropped as duplicates). Raises if any publish failed: callers must not ack their input."""
        return await self.publish_encoded(
            ((target, event.to_json(), str(event.event_id)) for target, event in events), window=window
        )

    async def publish_encoded(self, items: Iterable[tuple[str, bytes, str]], *, window: int = 2000) -> int:
        """``publish_many`` of events already encoded: ``(subject, event.to_json(), str(event.event_id))``."""
        pending: list[asyncio.Future[PubAck]] = []
        new = 0
        for target, payload, msg_id in items:
            fut = await self.js.publish_async(target, payload, headers={MSG_ID: msg_id})
            pending.append(fut)
            if len(pending) >= window:
                new += _count_new(await acks_of(pending))
                pending.clear()
        if pending:
            new += _count_new(await acks_of(pending))
        return new

    async def publish_raw(self, subject: str, payload: bytes, msg_id: str | None = None) -> PubAck:
        headers = {MSG_ID: msg_id} if msg_id else None
        return await self.js.publish(subject, payload, headers=headers)


#: How long a batch of publish acks may take. An ack lost in a broker restart would otherwise be awaited
#: forever (nats-py's async publish futures have no deadline): the handler would never finish, ack or retry.
ACK_TIMEOUT = 10.0


async def acks_of(futures: Sequence[asyncio.Future[PubAck]], timeout: float = ACK_TIMEOUT) -> list[PubAck]:
    """The acks of ``futures``; on timeout the rest are cancelled and ``TimeoutError`` is raised, so the
    caller fails its batch as a transient error and republishes (same ids: JetStream drops duplicates)."""
    try:
        return list(await asyncio.wait_for(asyncio.gather(*futures), timeout))
    except TimeoutError:
        for fut in futures:
            fut.cancel()
        raise TimeoutError(f"no ack for {len(futures)} published messages within {timeout}s") from None


def _count_new(acks: Sequence[PubAck]) -> int:
    return sum(1 for ack in acks if not ack.duplicate)
