"""``bastion status``: is every service running? One row per heartbeat in the ``SNAPSHOTS`` bucket.

Each service writes its ``Heartbeat`` to ``health.<service>`` every two seconds (strategy workers to
``health.strategy.<worker>``), with its status and counters. A heartbeat older than ``--stale-seconds`` (as
the dashboard judges them: ``BASTION_DASHBOARD_STALE_SECONDS``, 15) or with a status other than ok, starting
or degraded means that instance is not running; a service without any heartbeat has never run here, or its
key was removed. The exit code says it for scripts and cron: 0 when every service has a fresh instance,
1 when one has not, 2 when NATS cannot be reached. Connects as the ``operator`` NATS user, as the other
operator commands do.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js.errors import NoKeysError, NotFoundError
from rich.console import Console
from rich.markup import escape

from bastion import tables
from services.dashboard.domain.freshness import RUNNING, HealthRow, health_row, producer_alive
from services.dashboard.domain.snapshots import Snap
from shared.contracts.subjects import SNAPSHOTS_BUCKET
from shared.runtime.bus import NatsUnreachable, connect_once
from shared.runtime.settings import RuntimeSettings

#: The services of a whole platform, in the order data flows through them.
SERVICES = ("marketdata", "analytics", "strategy", "execution", "auth", "dashboard")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


async def read_heartbeats(nc: NATS) -> list[Snap]:
    """Every ``health.*`` entry of the ``SNAPSHOTS`` bucket (none when the bucket does not exist yet)."""
    try:
        kv = await nc.jetstream(timeout=5).key_value(SNAPSHOTS_BUCKET)
        keys = await kv.keys()
    except (NotFoundError, NoKeysError):
        return []
    snaps = []
    for key in sorted(k for k in keys if k.startswith("health.")):
        try:
            entry = await kv.get(key)
        except NotFoundError:  # removed since it was listed
            continue
        try:
            value = json.loads(entry.value or b"{}")
        except ValueError:
            value = {}
        snaps.append(Snap(key, value if isinstance(value, dict) else {}, EPOCH, entry.revision or 0))
    return snaps


def _ago(row: HealthRow) -> str:
    if row.age_seconds is None:
        return "-"
    seconds = row.age_seconds
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.0f}h ago"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _flow_order(row: HealthRow) -> tuple[int, str]:
    return (SERVICES.index(row.service) if row.service in SERVICES else len(SERVICES), row.key)


async def _read() -> list[Snap]:
    settings = RuntimeSettings.from_env("cli", user="operator")
    try:
        nc = await connect_once(settings)
    except NatsUnreachable as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    try:
        return await read_heartbeats(nc)
    finally:
        await nc.close()


def status(
    stale_seconds: Annotated[
        float, typer.Option(min=1, help="A heartbeat older than this means its instance is not running")
    ] = 15.0,
) -> None:
    """Whether every service is running: each instance's last heartbeat, status and counters.

    Exit code 0 when every service has an instance with a fresh heartbeat, 1 when one has not (for scripts
    and cron), 2 when NATS cannot be reached."""
    try:
        snaps = asyncio.run(_read())
    except (TimeoutError, NatsError) as exc:
        err.print(f"[red]error:[/red] NATS did not answer: {escape(str(exc) or type(exc).__name__)}")
        raise typer.Exit(1) from None
    now = datetime.now(UTC)
    rows = sorted((health_row(s, now, stale_seconds) for s in snaps), key=_flow_order)
    table = tables.table(
        "service", "instance", "status", "last beat", "processed", "failed", "dead-lettered", "lag"
    )
    for row in rows:
        running = row.status in RUNNING
        late = row.stale and running  # stale for its age alone
        table.add_row(
            row.service,
            escape(row.instance),
            escape(row.status) if running else f"[red]{escape(row.status)}[/red]",
            f"[red]{_ago(row)}, stale[/red]" if late else _ago(row),
            _count(row.processed),
            _count(row.failed),
            _count(row.dead_lettered),
            _count(row.lag),
        )
    if rows:
        tables.show(out, table)
    down = [s for s in SERVICES if not producer_alive(s, rows)]
    extra = sorted({r.service for r in rows} - set(SERVICES))
    if not down:
        more = f" (and {', '.join(extra)})" if extra else ""
        out.print(f"[green]all {len(SERVICES)} services are running[/green]{more}")
        return
    why = {s: "no heartbeat" for s in down}
    for row in rows:
        if why.get(row.service) == "no heartbeat":
            why[row.service] = f"last beat {_ago(row)}, {row.status}"
    listed = "; ".join(f"{s} ({why[s]})" for s in down)
    out.print(f"[red]not running: {listed}[/red]")
    raise typer.Exit(1)
