"""The audit chain as the execution service published it: the ``audit.v1.exec`` records of the AUDIT stream.

``bastion audit verify`` and ``trace`` read it when ``execution.duckdb`` is out of reach: held by the
running service (DuckDB lets one process open a file that another one writes), or on another host (a docker
volume). The records are the file's audit rows, so the same chain rule applies (``domain.audit``), with two
things only a stream has: a record published again after a crash, later than the stream's dedupe window,
is stored twice (the same row: skipped), and an age limit on AUDIT drops the oldest records (the chain is
then checked from the first one left, anchored on its ``prev_hash``).
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from services.execution.adapters.store import SIGNAL_COLUMNS
from services.execution.domain.audit import AUDIT_SUBJECT, GENESIS, AuditRow, ChainCheck, VerifyResult
from shared.contracts.audit import AuditRecord
from shared.contracts.orders import OrderEvent, TradeEvent
from shared.contracts.risk import RiskCommand, RiskDecision
from shared.contracts.subjects import signal_subject
from shared.runtime.stored import Progress, stored_batches

STREAM = "AUDIT"
BATCH = 1000
#: rows remembered to recognise a repeated one: far more than a crash can republish (about a second's rows)
REPEATS_KEPT = 100_000
#: decisions remembered while looking for an order's: it is audited just before the order's first event
RECENT_DECISIONS = 10_000
ORDER, TRADE, DECISION = OrderEvent.SCHEMA, TradeEvent.SCHEMA, RiskDecision.SCHEMA
COMMAND = RiskCommand.SCHEMA


@dataclass(frozen=True)
class PublishedChain:
    """What the stream's copy of the chain says. ``first``: its first row (1 unless an age limit dropped the
    ones before; 0 when it holds none); ``repeats``: rows stored twice and skipped; ``at_head``: the hash of
    row ``head_seq`` in the stream, when it got that far (compared with the service's head)."""

    result: VerifyResult
    first: int
    last: int
    repeats: int
    at_head: str | None


class StreamUnreadable(Exception):
    """The AUDIT stream could not be read (missing, or a fetch failed)."""


async def _batches(
    js: JetStreamContext, stream: str, subject: str, progress: Progress | None = None
) -> AsyncGenerator[list[Msg], None]:
    """``stored_batches``, its failures as ``StreamUnreadable`` (the CLI prints one line)."""
    try:
        async with aclosing(stored_batches(js, stream, subject, batch=BATCH, progress=progress)) as batches:
            async for batch in batches:
                yield batch
    except NotFoundError:
        raise StreamUnreadable(f"there is no {stream} stream: has the execution service ever run?") from None
    except (NatsError, TimeoutError) as exc:  # a timeout, no leader for a moment: the user runs it again
        raise StreamUnreadable(f"reading the {stream} stream failed: {exc!r}") from None


def _record(msg: Msg) -> AuditRecord | str:
    """The audit record of ``msg``, or why it is none."""
    try:
        return AuditRecord.model_validate_json(msg.data)
    except ValidationError as exc:
        return (
            f"stream message {msg.metadata.sequence.stream} is not an audit record: "
            + str(exc).splitlines()[0]
        )


async def read_published_chain(
    js: JetStreamContext, head_seq: int | None = None, progress: Progress | None = None
) -> PublishedChain:
    """Check every ``audit.v1.exec`` record stored in AUDIT now, in stream order, batch by batch (none kept).

    ``head_seq``: a row whose hash to report (the service's head from its ``execution.audit`` snapshot)."""
    check: ChainCheck | None = None
    at_head: str | None = None

    def outcome(result: VerifyResult) -> PublishedChain:
        if check is None:
            return PublishedChain(result, 0, 0, 0, None)
        return PublishedChain(result, check.first, check.last, check.skipped, at_head)

    async with aclosing(_batches(js, STREAM, AUDIT_SUBJECT, progress)) as batches:
        async for batch in batches:
            for msg in batch:
                record = _record(msg)
                if isinstance(record, str):
                    last = check.last if check else 0
                    return outcome(
                        VerifyResult(False, check.result().rows if check else 0, "", last + 1, record)
                    )
                row = AuditRow(
                    record.seq, record.kind, record.ref_id, record.payload, record.prev_hash, record.hash
                )
                if check is None:  # the first record left: row 1, or the oldest one an age limit kept
                    check = ChainCheck(row.seq, GENESIS if row.seq == 1 else None, repeats=REPEATS_KEPT)
                if (broken := check.take(row)) is not None:
                    return outcome(broken)
                if row.seq == head_seq:
                    at_head = row.hash
    return outcome((check or ChainCheck()).result())


async def trace_published(
    js: JetStreamContext, order_id: uuid.UUID, progress: Progress | None = None
) -> dict[str, Any]:
    """What ``store.trace_rows`` finds in the file, from the streams: the order's events and fills and its
    risk decision from the audit records (as audited: the events' JSON), its signal from the SIGNALS stream
    (``signal`` None and ``signal_id`` set when that stream no longer has it: it keeps 30 days by default).
    A flatten order's cause is the kill-switch command instead (``command``, as audited: token redacted).
    Empty when no record is of that order."""
    oid = str(order_id)
    found: dict[str, Any] = {"order_events": [], "trades": []}
    # the last decisions' and commands' kinds and payloads: an order's comes just before it
    recent: OrderedDict[str, tuple[str, str]] = OrderedDict()
    decision_id, seen = None, 0
    async with aclosing(_batches(js, STREAM, AUDIT_SUBJECT, progress)) as batches:
        async for batch in batches:
            for msg in batch:
                record = _record(msg)
                if isinstance(record, str) or record.seq <= seen:
                    continue  # not a record (verify names it), or one stored twice
                seen = record.seq
                if record.kind in (DECISION, COMMAND) and decision_id is None:
                    recent[str(record.ref_id)] = (record.kind, record.payload)
                    if len(recent) > RECENT_DECISIONS:
                        recent.popitem(last=False)
                elif record.kind in (ORDER, TRADE) and oid in record.payload:
                    data = json.loads(record.payload)
                    if data.get("order_id") != oid:
                        continue
                    found["order_events" if record.kind == ORDER else "trades"].append(record.payload)
                    if decision_id is None:
                        decision_id = str(data.get("decision_id"))
                        kind, payload = recent.get(decision_id, (DECISION, None))
                        found["command" if kind == COMMAND else "decision"] = payload
                        found["signal_id"] = str(data.get("signal_id"))
                        found["symbol"] = str(data.get("symbol"))
    if not found["order_events"]:
        return {}
    if found.get("command"):
        found["signal"] = None
        del found["signal_id"]  # the command's id: no signal to look for
    else:
        found["signal"] = await _signal(js, found["symbol"], found["signal_id"])
    return found


async def _signal(js: JetStreamContext, symbol: str, signal_id: str) -> dict[str, Any] | None:
    """The signal as ``trace_rows`` gives it (``store.SIGNAL_COLUMNS``), from ``strategy.v1.signal.<SYM>``."""
    try:
        async with aclosing(_batches(js, "SIGNALS", signal_subject(symbol))) as batches:
            async for batch in batches:
                for msg in batch:
                    if signal_id.encode() not in msg.data:
                        continue
                    event = json.loads(msg.data)
                    if event.get("event_id") == signal_id:
                        return {"signal_id": signal_id} | {k: event.get(k) for k in SIGNAL_COLUMNS[1:]}
    except (StreamUnreadable, ValueError):  # no SIGNALS stream here, or not a symbol a subject can carry
        return None
    return None
