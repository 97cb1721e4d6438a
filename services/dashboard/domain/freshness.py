"""Service health from ``health.*`` heartbeats, and whether a snapshot's data can be trusted as current."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from services.dashboard.domain.snapshots import Snap, Snapshots, as_dict, parse_time

#: The statuses of an instance that runs; any other (stopping, unknown) is stale whatever its age.
RUNNING = ("ok", "starting", "degraded")


class HealthRow(BaseModel):
    key: str
    service: str
    instance: str
    status: str
    last_beat: datetime | None
    age_seconds: float | None
    processed: int | None
    failed: int | None
    dead_lettered: int | None
    lag: int | None
    stale: bool


class Freshness(BaseModel):
    """A page section's data: whether it exists, its data time, when it was written, and if it is stale."""

    key: str
    present: bool
    producer: str | None = None
    updated_at: datetime | None = None
    written_at: datetime | None = None
    stale: bool = True


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def health_row(snap: Snap, now: datetime, stale_seconds: float) -> HealthRow:
    beat = snap.value
    last = parse_time(beat.get("occurred_at")) or snap.put_at
    age = max(0.0, (now - last).total_seconds())
    status = str(beat.get("status") or "unknown")
    return HealthRow(
        key=snap.key,
        service=str(beat.get("service") or snap.key.removeprefix("health.")),
        instance=str(beat.get("instance") or ""),
        status=status,
        last_beat=last,
        age_seconds=round(age, 1),
        processed=_int(beat.get("processed")),
        failed=_int(beat.get("failed")),
        dead_lettered=_int(beat.get("dead_lettered")),
        lag=_int(beat.get("lag")),
        stale=age > stale_seconds or status not in RUNNING,
    )


def health_rows(snaps: Snapshots, now: datetime, stale_seconds: float) -> list[HealthRow]:
    keys = sorted(k for k in snaps if k.startswith("health."))
    return [health_row(snaps[k], now, stale_seconds) for k in keys]


def producer_alive(producer: str, rows: list[HealthRow]) -> bool:
    """True when some instance of ``producer`` has a fresh heartbeat."""
    return any(
        not row.stale and (row.key == f"health.{producer}" or row.key.startswith(f"health.{producer}."))
        for row in rows
    )


def freshness(snaps: Snapshots, key: str, rows: list[HealthRow]) -> Freshness:
    snap = snaps.get(key)
    if snap is None:
        return Freshness(key=key, present=False)
    value = as_dict(snap.value)
    producer = str(value.get("producer") or key.split(".", 1)[0])
    return Freshness(
        key=key,
        present=True,
        producer=producer,
        updated_at=parse_time(value.get("updated_at")),
        written_at=snap.put_at,
        stale=not producer_alive(producer, rows),
    )
