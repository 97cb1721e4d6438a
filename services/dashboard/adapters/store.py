"""The dashboard's in-memory copy of the ``SNAPSHOTS`` bucket: fed by a KV watch, fanned out to SSE."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from services.dashboard.domain.snapshots import Snap, Snapshots
from shared.contracts.subjects import SNAPSHOTS_BUCKET

log = structlog.get_logger()
DELETES = {"DEL", "PURGE"}


@dataclass(frozen=True)
class Change:
    key: str
    revision: int
    deleted: bool = False


@dataclass
class SnapshotStore:
    """Latest value per key, and one bounded queue per live SSE client."""

    snaps: Snapshots = field(default_factory=dict)
    queue_size: int = 256
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    _subscribers: set[asyncio.Queue[Change | None]] = field(default_factory=set)

    def apply(self, key: str, data: bytes | None, revision: int, put_at: datetime | None) -> None:
        if data is None:
            self.snaps.pop(key, None)
            self._fan_out(Change(key, revision, deleted=True))
            return
        try:
            value = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            log.warning("snapshot.undecodable", key=key)
            value = {}
        when = put_at or datetime.now(UTC)
        self.snaps[key] = Snap(key, value if isinstance(value, dict) else {}, when, revision)
        self._fan_out(Change(key, revision))

    def _fan_out(self, change: Change) -> None:
        for queue in self._subscribers:
            if queue.full():  # a slow client loses its oldest notices, never blocks the watch
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(change)

    def subscribe(self) -> asyncio.Queue[Change | None]:
        queue: asyncio.Queue[Change | None] = asyncio.Queue(self.queue_size)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Change | None]) -> None:
        self._subscribers.discard(queue)

    def close_subscribers(self) -> None:
        """Tell every SSE stream to end (shutdown)."""
        for queue in self._subscribers:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)


async def _bucket(js: JetStreamContext, stop: asyncio.Event) -> KeyValue | None:
    """The bucket, waiting for its first producer to create it."""
    while not stop.is_set():
        try:
            return await js.key_value(SNAPSHOTS_BUCKET)
        except NotFoundError:
            log.info("snapshots.bucket_missing")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
    return None


async def _follow(kv: KeyValue, store: SnapshotStore, stop: asyncio.Event) -> None:
    watcher = await kv.watchall()
    try:
        while not stop.is_set():
            try:
                entry = await watcher.updates(timeout=1.0)
            except Exception as exc:  # nats TimeoutError: nothing new this second
                if type(exc).__name__ != "TimeoutError":
                    raise
                continue
            if entry is None:  # the initial values have all arrived
                store.synced.set()
                continue
            deleted = entry.operation in DELETES
            created = entry.created if isinstance(entry.created, datetime) else None
            store.apply(entry.key, None if deleted else entry.value, entry.revision or 0, created)
    finally:
        with contextlib.suppress(Exception):
            await watcher.stop()


async def watch_snapshots(js: JetStreamContext, store: SnapshotStore, stop: asyncio.Event) -> None:
    """Keep ``store`` equal to the bucket until ``stop``; restarts the watch after errors."""
    while not stop.is_set():
        try:
            kv = await _bucket(js, stop)
            if kv is None:
                return
            await _follow(kv, store, stop)
        except Exception as exc:  # NATS down or the watch broke: the page shows stale data meanwhile
            log.warning("snapshots.watch_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    store.close_subscribers()
