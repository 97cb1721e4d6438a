"""Bars and insights in, signals out, one symbol at a time.

HANDLERS: ``OHLCVBar -> on_bars``, ``InsightEvent -> on_insights`` (both per symbol).

For every batch of one symbol: the symbol's ``SymbolBook`` (the join, see ``domain.book``) takes the new
inputs; the new book is written to the state store with the revision it was read at (compare-and-set:
a worker that lost the symbol cannot overwrite its new owner's progress); the new signals are published
with their deterministic ids (JetStream drops a repeat); then the caller acks the input. The book keeps
the last change's signals as its outbox: a worker that takes a symbol over (``claim``: its id written into
the book by compare-and-set, refused while the recorded owner's live lease still holds the symbol)
republishes the part of the outbox that is not in the SIGNALS stream yet, so a crash between the state
write and the publish loses nothing and repeats nothing. A worker that finds another owner's claim when it
reloads a book stops the symbol (``on_lost``) and raises ``NotOwner``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from services.strategy.config import Instance, instances_for
from services.strategy.domain.base import BaseStrategy
from services.strategy.domain.book import SymbolBook
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import SignalEvent

Publish = Callable[[Sequence[SignalEvent]], Awaitable[None]]
Record = Callable[[Sequence[SignalEvent]], None]
LastPublished = Callable[[str], Awaitable[str | None]]


class StateConflict(Exception):
    """The symbol's state changed since it was read: another worker wrote it."""


class NotOwner(Exception):
    """Another worker has claimed the symbol: this one must stop running it."""


#: Whether the worker ``owner`` (``name/token``) holds ``symbol`` right now (its live lease lists it).
HeldBy = Callable[[str, str], Awaitable[bool]]


class StateStore(Protocol):
    """Per-symbol state with optimistic concurrency."""

    async def load(self, symbol: str) -> tuple[bytes | None, int]:
        """The stored value (None if none) and its revision (0 if none)."""

    async def save(self, symbol: str, value: bytes, revision: int) -> int:
        """Write ``value`` if the stored revision is still ``revision``; the new revision, else
        ``StateConflict``."""


@dataclass
class _Held:
    book: SymbolBook
    revision: int
    unpublished: bool = False


class StrategyEngine:
    def __init__(
        self,
        instances: Sequence[Instance],
        states: StateStore,
        publish: Publish,
        *,
        record: Record | None = None,
        last_published: LastPublished | None = None,
        owner: str | None = None,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.instances = list(instances)
        self.states = states
        self.publish = publish
        self.record = record or (lambda _signals: None)
        self.last_published = last_published
        self.owner = owner  # None: a single engine, no claims (tests, benchmarks)
        self.on_lost = on_lost or (lambda _symbol: None)
        self._held: dict[str, _Held] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def strategies(self, symbol: str) -> list[BaseStrategy[Any]]:
        return [i.strategy for i in instances_for(self.instances, symbol)]

    def needs_insights(self, symbol: str) -> bool:
        return any(s.requires_insights for s in self.strategies(symbol))

    def lock(self, symbol: str) -> asyncio.Lock:
        return self._locks.setdefault(symbol, asyncio.Lock())

    async def acquire(self, symbol: str) -> None:
        """Load ``symbol``'s state and republish what its last owner may not have published."""
        async with self.lock(symbol):
            await self._get(symbol)

    async def claim(self, symbol: str, held_by: HeldBy) -> bool:
        """Make this worker the symbol's owner in the state (compare-and-set); False when another worker
        holds it or claimed it first. Republishes what the last owner may not have published."""
        async with self.lock(symbol):
            self._held.pop(symbol, None)
            value, revision = await self.states.load(symbol)
            book = SymbolBook.from_json(value) if value is not None else SymbolBook(symbol)
            if book.owner not in (None, self.owner) and await held_by(book.owner or "", symbol):
                return False
            await self.publish_tail(symbol, book.outbox)
            book.owner = self.owner
            try:
                revision = await self.states.save(symbol, book.to_json(), revision)
            except StateConflict:
                return False
            self._held[symbol] = _Held(book, revision)
            return True

    def release(self, symbol: str) -> None:
        """Forget ``symbol`` (its state stays in the store for the next owner)."""
        self._held.pop(symbol, None)

    async def on_bars(self, symbol: str, bars: Sequence[OHLCVBar]) -> None:
        await self._apply(symbol, bars, ())

    async def on_insights(self, symbol: str, insights: Sequence[InsightEvent]) -> None:
        await self._apply(symbol, (), insights)

    async def _apply(self, symbol: str, bars: Sequence[OHLCVBar], insights: Sequence[InsightEvent]) -> None:
        async with self.lock(symbol):
            held = await self._get(symbol)
            if held.unpublished:  # an earlier publish failed after its state was written
                await self._publish(held, held.book.outbox)
            try:
                signals = held.book.apply(self.strategies(symbol), bars, insights)
            except BaseException:
                # A strategy raised part-way: the book already holds the new bars and the cursors of the
                # instances run before it. Kept, the retry would find "only redeliveries" and the batch
                # would be acked with those instances' signals never published. Reload instead, so the
                # retry runs the whole batch again (and a bar that always fails ends in the DLQ).
                self._held.pop(symbol, None)
                raise
            if signals is None:
                return  # only redeliveries
            held.book.outbox = signals
            try:
                held.revision = await self.states.save(symbol, held.book.to_json(), held.revision)
            except BaseException:
                self._held.pop(symbol, None)  # memory must not run ahead of the store: reload next time
                raise
            held.unpublished = bool(signals)
            await self._publish(held, signals)

    async def _get(self, symbol: str) -> _Held:
        held = self._held.get(symbol)
        if held is None:
            value, revision = await self.states.load(symbol)
            book = SymbolBook.from_json(value) if value is not None else SymbolBook(symbol)
            if self.owner is not None and book.owner != self.owner:
                self.on_lost(symbol)
                raise NotOwner(f"{symbol} is now run by {book.owner}")
            held = _Held(book, revision)
            await self.publish_tail(symbol, book.outbox)
            self._held[symbol] = held
        return held

    async def publish_tail(self, symbol: str, outbox: list[SignalEvent]) -> None:
        tail = await self._unpublished_tail(symbol, outbox)
        if tail:
            await self.publish(tail)
            self.record(tail)

    async def _unpublished_tail(self, symbol: str, outbox: list[SignalEvent]) -> list[SignalEvent]:
        """The outbox signals after the last one found in the SIGNALS stream (all of them if unknown)."""
        if not outbox or self.last_published is None:
            return outbox
        last = await self.last_published(symbol)
        ids = [str(s.event_id) for s in outbox]
        return outbox[ids.index(last) + 1 :] if last in ids else outbox

    async def _publish(self, held: _Held, signals: Sequence[SignalEvent]) -> None:
        if signals:
            await self.publish(signals)
            self.record(signals)
        held.unpublished = False
