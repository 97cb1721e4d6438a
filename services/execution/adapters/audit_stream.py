"""The audit chain as the execution service published it: the ``audit.v1.exec`` records of the AUDIT stream.

``bastion audit verify`` reads it when ``execution.duckdb`` is out of reach: held by the running service
(DuckDB lets one process open a file that another one writes), or on another host (a docker volume). The
records are the file's audit rows, so the same chain rule applies (``domain.audit``), with two things only a
stream has: a record published again after a crash, later than the stream's dedupe window, is stored twice
(the same row: skipped), and an age limit on AUDIT drops the oldest records (the chain is then checked from
the first one left, anchored on its ``prev_hash``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from services.execution.domain.audit import AUDIT_SUBJECT, GENESIS, AuditRow, ChainCheck, VerifyResult
from shared.contracts.audit import AuditRecord

STREAM = "AUDIT"
BATCH = 1000
#: rows remembered to recognise a repeated one: far more than a crash can republish (about a second's rows)
REPEATS_KEPT = 100_000


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


async def read_published_chain(
    js: JetStreamContext,
    head_seq: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PublishedChain:
    """Check every ``audit.v1.exec`` record stored in AUDIT now, in stream order, batch by batch (none kept).

    ``head_seq``: a row whose hash to report (the service's head from its ``execution.audit`` snapshot).
    ``progress(done, total)`` after each batch."""
    try:
        info = await js.stream_info(STREAM, subjects_filter=AUDIT_SUBJECT)
    except NotFoundError:
        raise StreamUnreadable(f"there is no {STREAM} stream: has the execution service ever run?") from None
    total = sum((info.state.subjects or {}).values())
    check: ChainCheck | None = None
    first = last = repeats = done = 0
    at_head: str | None = None
    if total == 0:
        return PublishedChain(ChainCheck().result(), 0, 0, 0, None)
    config = ConsumerConfig(
        ack_policy=AckPolicy.NONE,
        deliver_policy=DeliverPolicy.ALL,
        filter_subject=AUDIT_SUBJECT,
        inactive_threshold=30,
    )
    sub = await js.pull_subscribe(AUDIT_SUBJECT, durable=None, stream=STREAM, config=config)
    try:
        while done < total:
            try:
                messages = await sub.fetch(min(BATCH, total - done), timeout=10)
            except Exception as exc:  # a timeout, no leader for a moment: the user runs it again
                raise StreamUnreadable(
                    f"reading the {STREAM} stream failed after {done:,} records: {exc!r}"
                ) from None
            for msg in messages:
                done += 1
                try:
                    record = AuditRecord.model_validate_json(msg.data)
                except ValidationError as exc:
                    problem = f"stream message {msg.metadata.sequence.stream} is not an audit record: {exc}"
                    count = check.result().rows if check else 0
                    result = VerifyResult(False, count, "", last + 1, problem.splitlines()[0])
                    return PublishedChain(result, first, last, repeats, at_head)
                row = AuditRow(
                    record.seq, record.kind, record.ref_id, record.payload, record.prev_hash, record.hash
                )
                if check is None:  # the first record left: row 1, or the oldest one an age limit kept
                    first = row.seq
                    anchor = GENESIS if first == 1 else None
                    check = ChainCheck(first, anchor, repeats=REPEATS_KEPT)
                if row.seq <= last:
                    repeats += 1
                if (broken := check.take(row)) is not None:
                    return PublishedChain(broken, first, last, repeats, at_head)
                if row.seq > last:
                    last = row.seq
                if row.seq == head_seq:
                    at_head = row.hash
            if progress is not None:
                progress(done, total)
    finally:
        await sub.unsubscribe()
    assert check is not None  # total > 0 and every record was taken
    return PublishedChain(check.result(), first, last, repeats, at_head)
