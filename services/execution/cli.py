"""``bastion risk halt|resume|status`` (kill switch) and ``bastion audit verify|trace`` (the audit chain).

Kill-switch commands need an admin session token, taken from ``--token-file``, else ``$BASTION_TOKEN``, else a
login prompt (username and password sent to the auth service on ``auth.v1.login``). The command is
published on ``risk.v1.command``; the execution service verifies the token with ``auth.v1.verify`` and the
CLI waits until the ``execution.risk`` snapshot acknowledges it.

``bastion audit`` reads ``execution.duckdb`` read-only: DuckDB lets one process write a file, so run it while
the execution service is stopped, or on a copy (``--db copy.duckdb``). While the service runs, or where
the file is not at hand, they read what the service published on the AUDIT stream instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import duckdb
import nats
import nats.errors
import typer
from nats.aio.client import Client as NATS
from nats.js.errors import NoStreamResponseError, NotFoundError
from rich.console import Console

from services.execution.adapters.audit_stream import (
    PublishedChain,
    StreamUnreadable,
    read_published_chain,
    trace_published,
)
from services.execution.adapters.store import open_read_only, trace_rows
from services.execution.domain.audit import AuditRow, verify_chain
from shared.contracts import subjects
from shared.contracts.risk import RiskCommand
from shared.runtime.admin_session import SessionError, ask_credentials, login, token_from
from shared.runtime.bus import MSG_ID, NatsUnreachable, connect_once
from shared.runtime.duck import is_lock_error
from shared.runtime.settings import RuntimeSettings

risk_app = typer.Typer(help="Kill switch: halt, resume and inspect trading.", no_args_is_help=True)
audit_app = typer.Typer(help="The execution audit chain: verify it, trace an order.", no_args_is_help=True)
app = risk_app  # the module's default Typer app
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

TokenFile = Annotated[
    Path | None,
    typer.Option("--token-file", help="File holding an admin session token (else $BASTION_TOKEN)"),
]
Timeout = Annotated[float, typer.Option("--timeout", help="Seconds to wait for the service to acknowledge")]
DbPath = Annotated[
    Path | None,
    typer.Option("--db", help="execution.duckdb to read (default: $BASTION_DATA_DIR/execution.duckdb)"),
]
StreamOpt = Annotated[
    bool,
    typer.Option("--stream", help="Read what the service published on the AUDIT stream, not the file"),
]
T = TypeVar("T")


class CliError(Exception):
    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _fail(exc: CliError) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc}")
    return typer.Exit(exc.code)


def _settings() -> RuntimeSettings:
    return RuntimeSettings.from_env("cli", user="operator")


async def _connect(settings: RuntimeSettings) -> NATS:
    try:
        return await connect_once(settings)
    except NatsUnreachable as exc:
        raise CliError(str(exc)) from None


# -- kill switch ----------------------------------------------------------------------------------------
async def read_snapshot(nc: NATS, key: str) -> dict[str, Any] | None:
    """The ``SNAPSHOTS`` entry ``key``, or None when there is none yet."""
    try:
        kv = await nc.jetstream().key_value(subjects.SNAPSHOTS_BUCKET)
        entry = await kv.get(key)
    except (NotFoundError, nats.errors.TimeoutError):
        return None
    if entry.value is None:
        return None
    value: dict[str, Any] = json.loads(entry.value)
    return value


async def read_risk(nc: NATS) -> dict[str, Any] | None:
    return await read_snapshot(nc, "execution.risk")


async def send_command(
    nc: NATS,
    action: str,
    reason: str,
    token: str,
    timeout: float,
    cancel_orders: bool = True,
    flatten: bool = False,
) -> dict[str, Any]:
    """Publish a RiskCommand and wait for the service's acknowledgement in the ``execution.risk`` snapshot."""
    command = RiskCommand.model_validate(
        {
            "command_id": uuid.uuid4(),
            "action": action,
            "reason": reason,
            "session_token": token,
            "issued_at": datetime.now(UTC),
            "cancel_orders": cancel_orders,
            "flatten": flatten,
        }
    )
    try:
        await nc.jetstream().publish(
            subjects.RISK_COMMAND, command.to_json(), headers={MSG_ID: str(command.command_id)}, timeout=5
        )
    except (NoStreamResponseError, nats.errors.NoRespondersError, nats.errors.TimeoutError):
        raise CliError("no EXECUTION stream answered; has the execution service ever run?") from None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        risk = await read_risk(nc)
        last = (risk or {}).get("last_command") or {}
        if last.get("command_id") == str(command.command_id):
            return dict(last)
        await asyncio.sleep(0.1)
    raise CliError(f"the execution service did not acknowledge within {timeout:g}s (is it running?)", 1)


async def _kill_switch(
    action: str, reason: str, token_file: Path | None, timeout: float, flatten: bool
) -> dict[str, Any]:
    try:
        token = token_from(token_file)
        credentials = ask_credentials() if token is None else None
        nc = await _connect(_settings())
        try:
            if credentials is not None:
                token = await login(nc, *credentials, needed_for="the kill switch")
            assert token is not None
            return await send_command(nc, action, reason, token, timeout, flatten=flatten)
        finally:
            await nc.close()
    except SessionError as exc:
        raise CliError(str(exc), exc.code) from None


def _run_command(
    action: str, reason: str, token_file: Path | None, timeout: float, flatten: bool = False
) -> None:
    try:
        ack = asyncio.run(_kill_switch(action, reason, token_file, timeout, flatten))
    except CliError as exc:
        raise _fail(exc) from None
    if ack.get("outcome") != "accepted":
        err.print(f"[red]refused:[/red] {ack.get('outcome')} (trading state {ack.get('state')})")
        raise typer.Exit(1)
    out.print(f"{action} acknowledged by {ack.get('by')}: trading state is [bold]{ack.get('state')}[/bold]")
    for o in ack.get("cancelled") or []:
        out.print(f"cancelled working order {o['order_id']}: {o['side']} {o['quantity']} {o['symbol']}")
    if flatten:
        closing = ack.get("flatten") or []
        for o in closing:
            out.print(f"closing order {o['order_id']}: {o['side']} {o['quantity']} {o['symbol']}")
        if closing:
            out.print(
                f"{len(closing)} closing order(s) placed; paper orders fill at each symbol's next bar's open"
            )
        else:
            out.print("no open position to close")


@risk_app.command()
def halt(
    reason: Annotated[str, typer.Option("--reason", help="Why trading stops (audited)")],
    token_file: TokenFile = None,
    timeout: Timeout = 15.0,
    flatten: Annotated[
        bool,
        typer.Option(
            "--flatten",
            help="Also close every position at the market: one order per strategy book, filled at each "
            "symbol's next bar's open in paper mode",
        ),
    ] = False,
) -> None:
    """Stop all trading now: once this is acknowledged no order leaves the execution service, except the
    closing orders of --flatten. Working orders are cancelled."""
    if not reason.strip():
        raise typer.BadParameter("give a reason", param_hint="--reason")
    _run_command("halt", reason.strip(), token_file, timeout, flatten)


@risk_app.command()
def reduce(
    reason: Annotated[str, typer.Option("--reason", help="Why trading is reduced (audited)")],
    token_file: TokenFile = None,
    timeout: Timeout = 15.0,
) -> None:
    """Only orders that shrink a position without flipping it (REDUCING). Working orders that would grow
    or flip a position are cancelled; working orders that shrink one stay."""
    if not reason.strip():
        raise typer.BadParameter("give a reason", param_hint="--reason")
    _run_command("reduce", reason.strip(), token_file, timeout)


@risk_app.command()
def resume(
    reason: Annotated[
        str, typer.Option("--reason", help="Why trading restarts (audited)")
    ] = "resumed by admin",
    token_file: TokenFile = None,
    timeout: Timeout = 15.0,
) -> None:
    """Resume trading (ACTIVE); circuit breakers re-arm from the equity now."""
    _run_command("resume", reason.strip() or "resumed by admin", token_file, timeout)


def _fetch_snapshot(key: str) -> dict[str, Any]:
    async def fetch() -> dict[str, Any] | None:
        nc = await _connect(_settings())
        try:
            return await read_snapshot(nc, key)
        finally:
            await nc.close()

    try:
        value = asyncio.run(fetch())
    except CliError as exc:
        raise _fail(exc) from None
    if value is None:
        raise _fail(CliError(f"no {key} snapshot yet; is the execution service running?", 1))
    return value


@risk_app.command()
def status() -> None:
    """Trading state, mode, breakers and limit usage from the execution.risk snapshot."""
    risk = _fetch_snapshot("execution.risk")
    out.print(f"state [bold]{risk['state']}[/bold] ({risk.get('reason')}, by {risk.get('changed_by')})")
    out.print(f"mode {risk.get('mode')}, data time {_data_time(risk)}")
    for name, b in (risk.get("breakers") or {}).items():
        mark = "[red]TRIPPED[/red]" if b.get("tripped") else "ok"
        out.print(f"breaker {name}: {_used_of(b, PERCENT.get(name, ''))} {mark}")
    for name, u in (risk.get("usage") or {}).items():
        out.print(f"usage {name}: {_used_of(u, '')}")


def _data_time(snapshot: dict[str, Any]) -> str:
    """The snapshot's data time; execution's snapshots say 1970-01-01 before its first bar."""
    at = str(snapshot.get("updated_at"))
    return "none yet (no bar seen)" if at.startswith("1970-01-01") else at


#: the execution.risk snapshot's figures in percent (the others are money or counts)
PERCENT = {"drawdown": " %"}


def _used_of(figure: dict[str, Any], unit: str) -> str:
    """``3 of 5``, ``0.02 % of 10 %`` or ``3 (no limit)`` for a snapshot's ``{"used", "limit"}``."""
    used, limit = figure.get("used"), figure.get("limit")
    if isinstance(used, float) and unit:
        used = round(used, 2)
    if limit is None:
        return f"{used}{unit} (no limit)"
    return f"{used}{unit} of {limit}{unit}"


@risk_app.command()
def positions() -> None:
    """Positions, P&L and each strategy's book of them, from the execution.positions snapshot."""
    snap = _fetch_snapshot("execution.positions")
    out.print(
        f"equity {snap.get('equity')}, cash {snap.get('cash')}, P&L today {snap.get('pnl_today')},"
        f" total {snap.get('pnl_total')} (data time {_data_time(snap)})"
    )
    rows = snap.get("positions") or []
    for p in rows:
        books = ", ".join(f"{k} {v}" for k, v in (p.get("books") or {}).items()) or "none"
        out.print(
            f"position {p.get('symbol')}: {p.get('quantity')} at {p.get('avg_price')},"
            f" last {p.get('last_price')}, realised {p.get('realised_pnl')},"
            f" unrealised {p.get('unrealised_pnl')}; by strategy: {books}"
        )
    if not rows:
        out.print("no positions")


# -- audit ----------------------------------------------------------------------------------------------
def _db_path(given: Path | None) -> Path:
    if given is not None:
        return given
    home = Path(os.environ.get("BASTION_HOME") or ".bastion")
    return Path(os.environ.get("BASTION_DATA_DIR") or home / "data") / "execution.duckdb"


def _file_or_stream(db: Path | None, stream: bool) -> tuple[duckdb.DuckDBPyConnection | None, str]:
    """The file read-only; or None and why the AUDIT stream is read instead: ``--stream``, or (no ``--db``
    given) the file is missing here (a docker volume) or held by the running execution service."""
    if stream and db is not None:
        raise typer.BadParameter(
            "--stream reads the AUDIT stream, not a file: give one of them", param_hint="--db"
        )
    if stream:
        return None, "--stream"
    path = _db_path(db)
    if not path.exists():
        if db is None:
            return None, f"there is no {path} here"
        raise _fail(CliError(f"{path} does not exist"))
    try:
        return open_read_only(path), ""
    except duckdb.Error as exc:
        if db is None and is_lock_error(exc):
            return None, f"the running execution service holds {path}"
        hint = "stop the execution service, or copy the file and pass --db COPY"
        raise _fail(CliError(f"cannot open {path} read-only ({exc}); {hint}")) from None


def _from_streams(work: Coroutine[Any, Any, T]) -> T:
    """Run a read of the streams; its failures as one line, exit 1 (2 when NATS is unreachable)."""
    try:
        return asyncio.run(work)
    except CliError as exc:
        raise _fail(exc) from None
    except StreamUnreadable as exc:
        raise _fail(CliError(str(exc), 1)) from None
    except (nats.errors.Error, TimeoutError) as exc:  # the broker went away or did not answer in time
        raise _fail(CliError(f"reading the streams failed: {exc!r}", 1)) from None


@audit_app.command()
def verify(db: DbPath = None, stream: StreamOpt = False) -> None:
    """Recompute the hash chain; exit 1 naming the first edited, deleted or reordered row.

    Reads execution.duckdb. While the execution service runs (it holds that file), or where the file is
    not at hand, it checks the copy of the chain the service published on the AUDIT stream instead, and that
    it ends at the service's own head."""
    conn, why = _file_or_stream(db, stream)
    if conn is None:
        _verify_published(why)
        return
    try:
        rows = conn.execute("SELECT seq, kind, ref_id, payload, prev_hash, hash FROM audit ORDER BY seq")
        result = verify_chain(AuditRow(int(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows.fetchall())
    finally:
        conn.close()
    if not result.ok:
        err.print(f"[red]audit chain BROKEN at row {result.bad_seq}:[/red] {result.problem}")
        raise typer.Exit(1)
    out.print(f"audit chain ok: {result.rows} rows, head {result.head}")


def _verify_published(why: str) -> None:
    """``verify`` on the AUDIT stream's copy of the chain, compared with the ``execution.audit`` snapshot."""
    if why != "--stream":
        err.print(f"{why}: checking the chain the execution service published on the AUDIT stream instead")

    async def read() -> tuple[dict[str, Any] | None, PublishedChain]:
        nc = await _connect(_settings())
        try:
            snap = await read_snapshot(nc, "execution.audit")
            head_seq = int(snap["rows"]) if snap and snap.get("rows") else None
            with err.status("reading the AUDIT stream ...") as status:

                def progress(done: int, total: int) -> None:
                    status.update(f"reading the AUDIT stream: {done:,} of {total:,} records")

                return snap, await read_published_chain(nc.jetstream(), head_seq, progress)
        finally:
            await nc.close()

    snap, chain = _from_streams(read())
    result = chain.result
    if not result.ok:
        err.print(f"[red]audit chain BROKEN at row {result.bad_seq} (AUDIT stream):[/red] {result.problem}")
        raise typer.Exit(1)
    notes = []
    if chain.first > 1:
        notes.append(
            f"rows before {chain.first:,} are no longer in the stream (its age limit): checked from row"
            f" {chain.first:,} on"
        )
    if chain.repeats:
        notes.append(f"{chain.repeats:,} record(s) stored twice (republished after a crash) skipped")
    if snap is not None and snap.get("ok") is False:
        err.print(
            f"[red]audit chain BROKEN:[/red] the execution service found its own chain broken at row"
            f" {snap.get('bad_row')}: {snap.get('problem')}"
        )
        raise typer.Exit(1)
    head_seq, head = (int(snap.get("rows") or 0), str(snap.get("head"))) if snap else (0, "")
    if chain.at_head is not None and chain.at_head != head:
        err.print(
            f"[red]audit chain BROKEN at row {head_seq}:[/red] the AUDIT stream's row differs from the"
            f" execution service's ({chain.at_head} here, {head} in execution.audit)"
        )
        raise typer.Exit(1)
    if chain.at_head is not None:
        notes.append(f"row {head_seq:,} is the execution service's head")
    elif head_seq > chain.last:
        notes.append(f"the service is at row {head_seq:,}: the rest is still being published")
    elif not snap:
        notes.append("no execution.audit snapshot to compare the head with")
    out.print(f"audit chain ok: {result.rows} rows, head {result.head} (AUDIT stream)")
    for note in notes:
        out.print(f"  {note}")


@audit_app.command()
def trace(
    order_id: Annotated[str, typer.Argument(help="The order id (a UUID)")],
    db: DbPath = None,
    stream: StreamOpt = False,
) -> None:
    """Print bar -> insight -> signal -> decision -> order -> fill for one order, with ids and times.

    Reads execution.duckdb; while the execution service runs (it holds that file), or where the file is not
    at hand, the audit records it published on the AUDIT stream and the signal on the SIGNALS stream."""
    try:
        oid = uuid.UUID(order_id)
    except ValueError:
        raise typer.BadParameter(f"{order_id!r} is not a UUID", param_hint="ORDER_ID") from None
    conn, why = _file_or_stream(db, stream)
    if conn is None:
        found = _trace_published(oid, why)
        where = "the AUDIT stream"
    else:
        try:
            found = trace_rows(conn, oid)
        finally:
            conn.close()
        where = "the audit store"
    if not found:
        raise _fail(CliError(f"no order {oid} in {where}", 1))
    for line in trace_lines(found):
        typer.echo(line)


def _trace_published(order_id: uuid.UUID, why: str) -> dict[str, Any]:
    if why != "--stream":
        err.print(f"{why}: tracing from what the execution service published on the AUDIT stream instead")

    async def read() -> dict[str, Any]:
        nc = await _connect(_settings())
        try:
            with err.status("reading the AUDIT stream ...") as status:

                def progress(done: int, total: int) -> None:
                    status.update(f"reading the AUDIT stream: {done:,} of {total:,} records")

                return await trace_published(nc.jetstream(), order_id, progress)
        finally:
            await nc.close()

    return _from_streams(read())


def trace_lines(found: dict[str, Any]) -> list[str]:
    lines = []
    sig = found.get("signal")
    if sig:
        lines.append(f"bar       {sig['bar_event_id']}  {sig['bar_timestamp']}  {sig['symbol']}")
        lines.append(f"insight   {sig['insight_event_id'] or '-'}")
        lines.append(
            f"signal    {sig['signal_id']}  {sig['occurred_at']}  {sig['strategy_id']} {sig['target']}"
        )
    elif found.get("command"):  # a flatten order's cause
        c = json.loads(found["command"])
        flatten = " --flatten" if c.get("flatten") else ""
        lines.append(
            f"command   {c['command_id']}  {c['issued_at']}  {c['action']}{flatten} by {c.get('username')}:"
            f" {c['reason']}"
        )
    elif found.get("signal_id"):  # traced from the streams: SIGNALS no longer holds it (its age limit)
        lines.append(f"signal    {found['signal_id']}  (no longer in the SIGNALS stream)")
    if found.get("decision"):
        d = json.loads(found["decision"])
        verdict = "approved" if d["approved"] else "rejected"
        lines.append(f"decision  {d['event_id']}  {d['occurred_at']}  {verdict} ({d['state']})")
    for raw in found.get("order_events", []):
        o = json.loads(raw)
        lines.append(
            f"order     {o['order_id']}  {o['occurred_at']}  {o['status']} {o['side']} {o['quantity']}"
        )
    for raw in found.get("trades", []):
        t = json.loads(raw)
        lines.append(f"fill      {t['trade_id']}  {t['filled_at']}  {t['quantity']} @ {t['price']}")
    return lines
