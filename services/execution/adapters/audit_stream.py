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
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from services.execution.adapters.store import SIGNAL_COLUMNS
from services.execution.domain.audit import AUDIT_SUBJECT, GENESIS, AuditRow, ChainCheck, VerifyResult
from shared.contracts.audit import AuditRecord
from shared.contracts.orders import OrderEvent, TradeEvent
from shared.contracts.risk import RiskDecision
from shared.contracts.subjects import signal_subject

STREAM = "AUDIT"
BATCH = 1000
#: rows remembered to recognise a repeated one: far more than a crash can republish (about a second's rows)
REPEATS_KEPT = 100_000
#: decisions remembered while looking for an order's: it is audited just before the order's first event
RECENT_DECISIONS = 10_000
ORDER, TRADE, DECISION = OrderEvent.SCHEMA, TradeEvent.SCHEMA, RiskDecision.SCHEMA


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


Progress = Callable[[int, int], None]


async def stored(
    js: JetStreamContext, stream: str, subject: str, progress: Progress | None = None
) -> AsyncGenerator[list[Msg], None]:
    """The messages stored in ``stream`` on ``subject`` now, in stream order, a batch at a time, through an
    ephemeral consumer (nothing is acked or left behind). ``progress(done, total)`` after each batch."""
    try:
        info = await js.stream_info(stream, subjects_filter=subject)
    except NotFoundError:
        raise StreamUnreadable(f"there is no {stream} stream: has the execution service ever run?") from None
    total, done = sum((info.state.subjects or {}).values()), 0
    if total == 0:
        return
    config = ConsumerConfig(
        ack_policy=AckPolicy.NONE,
        deliver_policy=DeliverPolicy.ALL,
        filter_subject=subject,
        inactive_threshold=30,
    )
    sub = await js.pull_subscribe(subject, durable=None, stream=stream, config=config)
    try:
        while done < total:
            try:
                messages = await sub.fetch(min(BATCH, total - done), timeout=10)
            except Exception as exc:  # a timeout, no leader for a moment: the user runs it again
                raise StreamUnreadable(
                    f"reading the {stream} stream failed after {done:,} messages: {exc!r}"
                ) from None
            done += len(messages)
            yield messages
            if progress is not None:
                progress(done, total)
    finally:
        await sub.unsubscribe()


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
    first = last = repeats = 0
    at_head: str | None = None
    async with aclosing(stored(js, STREAM, AUDIT_SUBJECT, progress)) as batches:
        async for batch in batches:
            for msg in batch:
                record = _record(msg)
                if isinstance(record, str):
                    count = check.result().rows if check else 0
                    return PublishedChain(
                        VerifyResult(False, count, "", last + 1, record), first, last, repeats, at_head
                    )
                row = AuditRow(
                    record.seq, record.kind, record.ref_id, record.payload, record.prev_hash, record.hash
                )
                if check is None:  # the first record left: row 1, or the oldest one an age limit kept
                    first = row.seq
                    check = ChainCheck(first, GENESIS if first == 1 else None, repeats=REPEATS_KEPT)
                if row.seq <= last:
                    repeats += 1
                if (broken := check.take(row)) is not None:
                    return PublishedChain(broken, first, last, repeats, at_head)
                if row.seq > last:
                    last = row.seq
                if row.seq == head_seq:
                    at_head = row.hash
    return PublishedChain((check or ChainCheck()).result(), first, last, repeats, at_head)


async def trace_published(
    js: JetStreamContext, order_id: uuid.UUID, progress: Progress | None = None
) -> dict[str, Any]:
    """What ``store.trace_rows`` finds in the file, from the streams: the order's events and fills and its
    risk decision from the audit records (as audited: the events' JSON), its signal from the SIGNALS stream
    (``signal`` None and ``signal_id`` set when that stream no longer has it: it keeps 30 days by default).
    Empty when no record is of that order."""
    oid = str(order_id)
    found: dict[str, Any] = {"order_events": [], "trades": []}
    recent: OrderedDict[str, str] = (
        OrderedDict()
    )  # the last decisions' payloads: an order's comes just before
    decision_id, seen = None, 0
    async with aclosing(stored(js, STREAM, AUDIT_SUBJECT, progress)) as batches:
        async for batch in batches:
            for msg in batch:
                record = _record(msg)
                if isinstance(record, str) or record.seq <= seen:
                    continue  # not a record (verify names it), or one stored twice
                seen = record.seq
                if record.kind == DECISION and "decision" not in found:
                    recent[str(record.ref_id)] = record.payload
                    if len(recent) > RECENT_DECISIONS:
                        recent.popitem(last=False)
                elif record.kind in (ORDER, TRADE) and oid in record.payload:
                    data = json.loads(record.payload)
                    if data.get("order_id") != oid:
                        continue
                    found["order_events" if record.kind == ORDER else "trades"].append(record.payload)
                    if decision_id is None:
                        decision_id = str(data.get("decision_id"))
                        found["decision"] = recent.get(decision_id)
                        found["signal_id"], found["symbol"] = (
                            str(data.get("signal_id")),
                            str(data.get("symbol")),
                        )
    if not found["order_events"]:
        return {}
    found["signal"] = await _signal(js, found["symbol"], found["signal_id"])
    return found


async def _signal(js: JetStreamContext, symbol: str, signal_id: str) -> dict[str, Any] | None:
    """The signal as ``trace_rows`` gives it (``store.SIGNAL_COLUMNS``), from ``strategy.v1.signal.<SYM>``."""
    try:
        async with aclosing(stored(js, "SIGNALS", signal_subject(symbol))) as batches:
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
