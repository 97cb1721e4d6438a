"""Event in, effects out: bars, signals and risk commands drive the pure ``ExecutionCore``; each batch's
new state, outputs (outbox) and audit rows commit in one DuckDB transaction, then the outbox is published
with the outputs' deterministic event ids, and only then does the consumer loop ack the inputs.

Of the state, a batch writes the bars that changed (``BarsTracker``: the kept bars of each symbol as last
committed, compared with the core's) and the rest as JSON; both in the batch's transaction.

| consumer | contract | handler |
|---|---|---|
| ``execution-bars`` | ``OHLCVBar`` on ``md.v1.bar.>`` | ``on_bars`` (marks, fills pending orders, breakers) |
| ``execution-signals`` | ``SignalEvent`` on ``strategy.v1.signal.>`` | ``on_signals`` (decision, order) |
| ``execution-commands`` | ``RiskCommand`` on ``risk.v1.command`` | ``on_commands`` (verified kill switch) |
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import structlog

from services.execution.adapters.auth_client import Verdict
from services.execution.adapters.store import (
    BarsDelta,
    Batch,
    ExecutionStore,
    HistoryRow,
    OutboxRow,
    SeenDelta,
)
from services.execution.domain import audit
from services.execution.domain.broker import PRODUCER
from services.execution.domain.config import ExecutionConfig
from services.execution.domain.engine import BarRef, CoreState, ExecutionCore, book_key, book_of
from services.execution.domain.risk import RiskState
from shared.contracts import subjects
from shared.contracts.envelope import Event
from shared.contracts.orders import OrderEvent, TradeEvent
from shared.contracts.risk import RiskCommand, RiskDecision, RiskStateChanged
from shared.contracts.signals import SignalEvent
from shared.runtime.consumer import Delivery

AUDITED = (RiskDecision, OrderEvent, TradeEvent, RiskStateChanged)
log = structlog.get_logger()
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
Publish = Callable[[Sequence[OutboxRow]], Awaitable[None]]


class Verifier(Protocol):
    async def verify_admin(self, token: str) -> Verdict: ...


def subject_of(event: Event) -> str:
    if isinstance(event, RiskStateChanged):
        return subjects.RISK_STATE
    if isinstance(event, audit.AuditRecord):
        return subjects.AUDIT_EXEC
    return str(event.subject())  # type: ignore[attr-defined]


class ExecutionService:
    def __init__(
        self, store: ExecutionStore, config: ExecutionConfig, publish: Publish, verifier: Verifier
    ) -> None:
        self.store = store
        self.config = config
        self.publish = publish
        self.verifier = verifier
        self.bars = BarsTracker()
        self.seen = SeenTracker()
        self.core = ExecutionCore(config, self._load_state(), record_bars=True)
        self.lock = asyncio.Lock()  # the core and the store: one batch at a time
        self.publishing = asyncio.Lock()  # the outbox is published in seq order, by one flush at a time
        self.head = store.audit_head()
        self.audit_ok = audit.VerifyResult(True, 0, self.head.hash if self.head else audit.GENESIS)
        self.dirty = True
        self.last_command: dict[str, Any] | None = None
        limit = config.recent_limit
        self.recent: dict[str, deque[str]] = {
            kind: deque(store.recent(kind, limit), maxlen=limit)
            for kind in (OrderEvent.SCHEMA, TradeEvent.SCHEMA, RiskDecision.SCHEMA)
        }
        self.counts = {"decisions": 0, "orders": 0, "trades": 0}
        self.pruned = 0  # processed-input rows deleted since start (prune_processed)

    def _load_state(self) -> CoreState | None:
        raw = self.store.load_state()
        state = CoreState.model_validate_json(raw) if raw else None
        self.bars.reset(state.bars if state is not None and self.store.bars_in_table else {})
        self.seen.reset(state.risk if state is not None and self.store.seen_in_table else None)
        if state is not None and "books" not in state.model_fields_set:
            self._rebuild_books(state)
        return state

    def _rebuild_books(self, state: CoreState) -> None:
        """A state saved before books existed: each strategy's book is the sum of its trades (the outbox
        keeps every event). A position the trades do not add up to stays in no book, and is logged."""
        books: dict[str, Decimal] = {}
        for strategy_id, symbol, side, quantity in self.store.traded_by_strategy():
            key = book_key(strategy_id, symbol)
            signed = Decimal(quantity) if side == "buy" else -Decimal(quantity)
            books[key] = books.get(key, Decimal(0)) + signed
        state.books = {k: q for k, q in books.items() if q}
        booked: dict[str, Decimal] = {}
        for key, held in state.books.items():
            symbol = book_of(key)[1]
            booked[symbol] = booked.get(symbol, Decimal(0)) + held
        off = sorted(
            p.symbol for p in state.portfolio.positions.values() if p.quantity != booked.get(p.symbol, 0)
        )
        if off:
            log.warning("execution.books_incomplete", symbols=off)
        else:
            log.info("execution.books_rebuilt", books=len(state.books))

    # -- handlers -----------------------------------------------------------------------------------
    async def on_bars(self, deliveries: Sequence[Delivery]) -> None:
        await self._run("bars", deliveries, lambda bar: self.core.on_bar(bar).events)

    async def on_signals(self, deliveries: Sequence[Delivery]) -> None:
        def decide(sig: SignalEvent) -> list[Event]:
            return self.core.on_signal(sig, self._history(sig)).events

        await self._run("signals", deliveries, decide)

    def _history(self, signal: SignalEvent) -> list[BarRef]:
        """The stored bars a signal needs when its bar has left the kept window (else none)."""
        until = self.core.history_from(signal)
        if until is None:
            return []
        rows = self.store.bars_before(signal.symbol, _micros(signal.bar_timestamp), _micros(until))
        return [
            BarRef(timestamp=EPOCH + t * MICROSECOND, open=Decimal(o), close=Decimal(c), event_id=i, live=lv)
            for _symbol, t, o, c, i, lv in rows
        ]

    async def on_commands(self, deliveries: Sequence[Delivery]) -> None:
        verdicts: dict[uuid.UUID, Verdict] = {}
        for d in deliveries:  # outside the lock: auth answers over the network
            cmd: RiskCommand = d.event
            verdicts[cmd.command_id] = await self.verifier.verify_admin(cmd.session_token)

        def apply(cmd: RiskCommand) -> list[Event]:
            verdict = verdicts[cmd.command_id]
            events = self.core.on_command(cmd, verdict.username).events
            orders = [e for e in events if isinstance(e, OrderEvent)]
            self.last_command = {
                "command_id": str(cmd.command_id),
                "action": cmd.action,
                "outcome": verdict.outcome,
                "state": self.core.state.risk.state,
                "by": verdict.username,
                "flatten": [_order_brief(o) for o in orders if o.status == "accepted"],
                "cancelled": [_order_brief(o) for o in orders if o.status == "cancelled"],
            }
            return events

        await self._run("commands", deliveries, apply, verdicts)

    def handled(self, consumer: str) -> Callable[[Sequence[Any]], set[int]]:
        """For ``ConsumerSpec.handled``: which of these inputs of ``consumer`` are committed already."""

        def check(events: Sequence[Any]) -> set[int]:
            keys = [_input_key(e) for e in events]
            done = self.store.processed(consumer, keys)
            return {i for i, key in enumerate(keys) if key in done}

        return check

    # -- one batch, one transaction -------------------------------------------------------------------
    async def _run(
        self,
        consumer: str,
        deliveries: Sequence[Delivery],
        apply: Callable[[Any], list[Event]],
        verdicts: dict[uuid.UUID, Verdict] | None = None,
    ) -> None:
        async with self.lock:
            keys = [_input_key(d.event) for d in deliveries]
            done = self.store.processed(consumer, keys)
            builder = _BatchBuilder(consumer, self.store.next_outbox_seq(), self.head)
            try:
                for d, key in zip(deliveries, keys, strict=True):
                    if key in done:
                        continue
                    done.add(key)
                    builder.processed.append(key)
                    if isinstance(d.event, RiskCommand) and verdicts is not None:
                        verdict = verdicts[d.event.command_id]
                        builder.audit_command(d.event, verdict)
                    if isinstance(d.event, SignalEvent):
                        builder.signals.append(_signal_row(d.event))
                    for event in apply(d.event):
                        builder.add(event)
                if builder.processed:
                    state = self.core.state
                    deltas = self.bars.changes(state.bars)
                    history = _history_rows(self.core.new_bars or [])
                    batch = builder.build(state.model_dump_json(exclude=_IN_TABLES), deltas, history)
                    batch.seen = self.seen.changes(state.risk)
                    self.store.commit(batch)
                    if self.core.new_bars is not None:
                        self.core.new_bars.clear()
                    self.bars.committed(state.bars, deltas)
                    self.seen.reset(state.risk)  # as the table now holds it
            except Exception:
                # back to the last commit
                self.core = ExecutionCore(self.config, self._load_state(), record_bars=True)
                raise
            if builder.processed:
                self.head = builder.head
                self._remember(builder.events, builder.payloads)
                self.dirty = True
        # outside ``lock``: another consumer's batch is decided and committed while these acks are awaited;
        # this batch is still acked (by the caller) only after its rows are published
        await self.flush()

    async def flush(self) -> None:
        """Publish every outbox row not yet published, in order (after a crash, too)."""
        async with self.publishing:
            while rows := self.store.unsent():
                await self.publish(rows)
                self.store.mark_sent(rows[-1].seq)

    async def prune_processed(self, kept: dict[str, float]) -> int:
        """``ExecutionStore.prune_processed`` between batches; returns the rows deleted."""
        async with self.lock:
            deleted = self.store.prune_processed(kept)
        self.pruned += deleted
        return deleted

    async def save_sent(self) -> None:
        """Write the published mark if no commit has carried it yet (the snapshot task calls it when idle)."""
        async with self.lock:
            self.store.save_sent()

    def _remember(self, events: list[Event], payloads: list[str]) -> None:
        for event, payload in zip(events, payloads, strict=True):
            if isinstance(event, RiskDecision):
                self.counts["decisions"] += 1
            elif isinstance(event, OrderEvent):
                self.counts["orders"] += event.status == "accepted"
            elif isinstance(event, TradeEvent):
                self.counts["trades"] += 1
            queue = self.recent.get(event.SCHEMA)
            if queue is not None:
                queue.append(payload)  # its to_json, as in the outbox


class _BatchBuilder:
    def __init__(self, consumer: str, seq: int, head: audit.AuditRow | None) -> None:
        self.consumer = consumer
        self.seq = seq
        self.head = head
        self.processed: list[uuid.UUID] = []
        self.outbox: list[dict[str, Any]] = []
        self.audit: list[audit.AuditRow] = []
        self.signals: list[dict[str, Any]] = []
        self.events: list[Event] = []
        self.payloads: list[str] = []  # to_json of each of ``events``

    def add(self, event: Event) -> None:
        self.events.append(event)
        payload = self._outbox(event)
        self.payloads.append(payload)
        if isinstance(event, AUDITED):
            # == event.model_dump(mode="json", by_alias=True): the JSON values of the same serialiser
            data = json.loads(payload)
            self._audit(event.SCHEMA, event.event_id, data, event)

    def audit_command(self, cmd: RiskCommand, verdict: Verdict) -> None:
        data = audit.redacted_command(cmd, verdict.outcome, verdict.username)
        self._audit(RiskCommand.SCHEMA, cmd.command_id, data, None, cmd)

    def _audit(
        self,
        kind: str,
        ref: uuid.UUID,
        data: dict[str, Any],
        event: Event | None,
        cmd: RiskCommand | None = None,
    ) -> None:
        row = audit.next_row(self.head, kind, ref, data)
        self.audit.append(row)
        self.head = row
        at = event.occurred_at if event is not None else cmd.issued_at  # type: ignore[union-attr]
        # every field below is already of its type (ints, strs, UUIDs, a UTC datetime of a validated event)
        build = audit.AuditRecord.build_trusted if event is not None else audit.AuditRecord.build
        record = build(
            producer=PRODUCER,
            key=f"audit|{row.seq}|{row.hash}",
            occurred_at=at,
            correlation_id=event.correlation_id if event is not None else ref,
            causation_id=ref,
            seq=row.seq,
            kind=kind,
            ref_id=ref,
            payload=row.payload,
            prev_hash=row.prev_hash,
            hash=row.hash,
        )
        self._outbox(record)

    def _outbox(self, event: Event) -> str:
        payload = event.to_json().decode()
        order_id = getattr(event, "order_id", None)
        signal_id = getattr(event, "signal_id", None)
        self.outbox.append(
            {
                "seq": self.seq,
                "event_id": event.event_id,
                "kind": event.SCHEMA,
                "subject": subject_of(event),
                "order_id": order_id,
                "signal_id": signal_id,
                "occurred_at": event.occurred_at,
                "payload": payload,
            }
        )
        self.seq += 1
        return payload

    def build(self, state_json: str, bars: list[BarsDelta], history: list[HistoryRow]) -> Batch:
        return Batch(
            self.consumer, self.processed, state_json, self.outbox, self.audit, self.signals, bars, history
        )


def _history_rows(new_bars: Sequence[tuple[str, BarRef]]) -> list[HistoryRow]:
    return [(s, _micros(r.timestamp), str(r.open), str(r.close), r.event_id, r.live) for s, r in new_bars]


#: what the store keeps in tables of their own, not in the state's JSON
_IN_TABLES: dict[str, Any] = {"bars": True, "risk": {"seen_signals": True}}


def _micros(at: datetime) -> int:
    return (at - EPOCH) // MICROSECOND


class BarsTracker:
    """The kept bars of every symbol as last committed, to write only what a batch changed.

    ``changes`` compares the core's lists with copies taken at the last commit: an unchanged list is equal
    element by element (the same objects, so the comparison is a pointer walk); the usual change, some bars
    dropped at the front and new ones appended, becomes a delta of the dropped times and the new rows; any
    other change (an older bar sorted in, a symbol gone) rewrites that symbol's rows. It relies on a kept
    ``BarRef`` never being changed in place (the core makes a new one per bar), as the pointer walk would
    not see such a change."""

    def __init__(self) -> None:
        self.saved: dict[str, list[BarRef]] = {}

    def reset(self, bars: dict[str, list[BarRef]]) -> None:
        self.saved = {symbol: list(refs) for symbol, refs in bars.items()}

    def changes(self, bars: dict[str, list[BarRef]]) -> list[BarsDelta]:
        deltas = []
        for symbol, refs in bars.items():
            old = self.saved.get(symbol)
            if old is None:
                deltas.append(BarsDelta(symbol, replace=True, added=_rows(refs)))
            elif refs != old:
                deltas.append(_delta(symbol, old, refs))
        deltas += [BarsDelta(symbol, replace=True) for symbol in self.saved if symbol not in bars]
        return deltas

    def committed(self, bars: dict[str, list[BarRef]], deltas: list[BarsDelta]) -> None:
        for d in deltas:
            if d.symbol in bars:
                self.saved[d.symbol] = list(bars[d.symbol])
            else:
                del self.saved[d.symbol]


class SeenTracker:
    """The risk manager's seen signal keys as last committed, to write only the new ones: the keys only grow
    at the newest end and drop at the oldest (``RiskState.remember_signal``), so the change since a commit
    is the newest ``remembered`` keys since then, of those still kept. Another ``RiskState`` object (a state
    loaded again, or one whose keys are not in the table yet) is written whole."""

    def __init__(self) -> None:
        self.saved: RiskState | None = None
        self.remembered = 0

    def reset(self, risk: RiskState | None) -> None:
        """``risk`` as it is in the table (None: nothing of it is)."""
        self.saved, self.remembered = risk, risk.remembered if risk is not None else 0

    def changes(self, risk: RiskState) -> SeenDelta:
        seen = risk.seen_signals
        if risk is not self.saved:
            return SeenDelta(list(seen), len(seen), replace=True)
        new = min(risk.remembered - self.remembered, len(seen))
        return SeenDelta(list(itertools.islice(reversed(seen), new))[::-1], len(seen))  # not a 20k walk


def _rows(refs: Sequence[BarRef]) -> list[tuple[int, str]]:
    return [(_micros(r.timestamp), r.model_dump_json()) for r in refs]


def _delta(symbol: str, old: list[BarRef], new: list[BarRef]) -> BarsDelta:
    """``old[:gone]`` dropped and ``new[kept:]`` appended, if that is the change; else a rewrite."""
    if new:
        gone = bisect.bisect_left(old, new[0].timestamp, key=lambda r: r.timestamp)
        kept = len(old) - gone
        if kept <= len(new) and old[gone:] == new[:kept]:
            dropped = [_micros(r.timestamp) for r in old[:gone]]
            return BarsDelta(symbol, dropped=dropped, added=_rows(new[kept:]))
    return BarsDelta(symbol, replace=True, added=_rows(new))


def _input_key(event: Any) -> uuid.UUID:
    if isinstance(event, RiskCommand):
        return event.command_id
    key: uuid.UUID = event.event_id
    return key


def _signal_row(sig: SignalEvent) -> dict[str, Any]:
    return {
        "signal_id": sig.event_id,
        "symbol": sig.symbol,
        "strategy_id": sig.strategy_id,
        "target": sig.target,
        "bar_event_id": sig.bar_event_id,
        "insight_event_id": sig.insight_event_id,
        "bar_timestamp": sig.bar_timestamp,
        "occurred_at": sig.occurred_at,
    }


def _order_brief(order: OrderEvent) -> dict[str, str]:
    """An order as the command's acknowledgement lists it (``last_command.flatten`` and ``.cancelled``)."""
    return {
        "order_id": str(order.order_id),
        "symbol": order.symbol,
        "side": order.side,
        "quantity": str(order.quantity),
    }
